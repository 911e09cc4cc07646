"""Submissions uploaded to an LMS (students in Colab upload their .ipynb to Canvas) and
downloaded by the instructor as one zip, collected with ``nbgrader zip_collect``.

File names the course expects inside the zip (Canvas's "Download Submissions" naming, plus an
optional submission-time field that Canvas does not write)::

    <lastfirst>[_LATE]_<userid>_<submissionid>[_<YYYYMMDDTHHMMSSZ>]_<original file name>
    e.g. doejane_LATE_4242_998877_20300112T093000Z_L2A2_gradcam-1.ipynb

- the student id in nbgrader is the LMS user id (``4242``): unique and stable, unlike names;
  students unknown to the gradebook are added by ``nbgrader autograde``
  (``Autograde.create_student``, True by default; ``zip_collect`` never consults the gradebook);
- the notebook name is the original file name, normalized by :func:`notebook_name` (Canvas's
  resubmission suffix ``-1``, a browser's `` (1)``, Colab's ``Copy of`` are dropped when that
  gives a released notebook's name);
- ``_LATE`` (Canvas's marker) is informational only: lateness is computed by nbgrader from the
  submission time and the gradebook's due date (:mod:`grading.late_policy`);
- the submission time, UTC, basic ISO 8601 (``20300112T093000Z``: no colons, safe in file names),
  becomes ``timestamp.txt`` in ``submitted/<student>/<assignment>/``. Canvas's download has no
  times; add them from the LMS's submission list (Canvas API ``submitted_at``, a CSV export)
  with ``python -m grading.lms stamp ZIP TIMES.csv`` (:func:`stamp_archive`). Without a time
  there is no ``timestamp.txt`` and no late penalty.

Instructor, from the course root::

    mkdir -p downloaded/L2A2_gradcam/archive
    cp ~/Downloads/submissions.zip downloaded/L2A2_gradcam/archive/
    .venv/bin/python -m grading.lms stamp downloaded/L2A2_gradcam/archive/submissions.zip times.csv
    nbgrader zip_collect L2A2_gradcam --force
    nbgrader autograde L2A2_gradcam

``nbgrader_config.py`` selects :class:`LmsCollector` (``ZipCollectApp.collector_plugin``); its
``named_regexp`` defaults to :data:`CANVAS_REGEXP` and can be set there for another LMS (it must
provide the ``student_id`` and ``file_id`` groups, optionally ``timestamp``).
"""
from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbgrader.plugins import FileNameCollectorPlugin
from nbgrader.utils import find_all_notebooks
from traitlets import Unicode

from grading.course import COURSE_ROOT, nbgrader

#: Canvas bulk-download names with the course's optional time field (see the module docstring).
#: ``lastfirst`` is matched lazily so that a name with underscores still parses.
CANVAS_REGEXP = (
    r"^(?P<lastfirst>.+?)(?P<late>_LATE)?_(?P<student_id>\d+)_(?P<submission_id>\d+)"
    r"(?:_(?P<timestamp>\d{8}T\d{6}Z))?_(?P<file_id>.+)$"
)

#: The time field's format: UTC, basic ISO 8601 (dateutil, hence nbgrader, parses it).
TIME_FORMAT = "%Y%m%dT%H%M%SZ"

# Suffixes that uploading or downloading adds to a file name: Canvas's "-1" on a resubmitted
# file, a browser's " (1)" on a repeated download; and Colab's "Copy of " prefix.
_SUFFIX = re.compile(r"(?:-\d+|[ _]?\(\d+\))$")
_COPY_OF = re.compile(r"^copy[ _]of[ _]+", re.IGNORECASE)


def notebook_name(original: str, released: Collection[str] = ()) -> str:
    """The assignment notebook a submitted file name stands for.

    Candidates, in order: ``original`` itself, then ``original`` with one more suffix or prefix
    removed (``-<n>``, `` (<n>)``, ``Copy of ``), until nothing changes. The first candidate in
    ``released`` (released notebook file names) wins; if none is, the most normalized candidate
    (``nbgrader zip_collect`` then warns "Invalid submission notebook name" and the notebook is
    graded as missing: visible, never silently renamed to something else).
    """
    stem, ext = os.path.splitext(original)
    candidates = [stem]
    while True:
        shorter = _SUFFIX.sub("", candidates[-1])
        if shorter == candidates[-1]:
            shorter = _COPY_OF.sub("", shorter)
        if shorter == candidates[-1] or not shorter:
            break
        candidates.append(shorter)
    names = [c + ext for c in candidates]
    return next((n for n in names if n in released), names[-1])


class LmsCollector(FileNameCollectorPlugin):
    """``nbgrader zip_collect`` file-name collector for LMS downloads.

    Unlike nbgrader's :class:`~nbgrader.plugins.FileNameCollectorPlugin` it matches
    ``named_regexp`` against the file's *base name* (nbgrader passes the absolute path, so the
    folders the zip was extracted into would otherwise have to be part of the expression) and
    maps the matched ``file_id`` to a released notebook with :func:`notebook_name`.
    """

    named_regexp = Unicode(
        CANVAS_REGEXP,
        help="Regular expression matched against each file's base name; groups `student_id` "
             "and `file_id` required, `timestamp` optional (see grading.lms).",
    ).tag(config=True)

    _released: list[str] | None = None

    def released_notebooks(self) -> list[str]:
        """Notebook file names in ``release/<assignment>/`` of the running ``zip_collect``
        (empty when not run by ``zip_collect``)."""
        if self._released is None:
            coursedir = getattr(self.parent, "coursedir", None)
            if coursedir is None or not coursedir.assignment_id:
                self._released = []
            else:
                path = coursedir.format_path(coursedir.release_directory, ".",
                                             coursedir.assignment_id)
                self._released = find_all_notebooks(path) if os.path.isdir(path) else []
        return self._released

    def collect(self, submitted_file: str) -> dict | None:
        """``{student_id, file_id[, timestamp], ...}`` for a submitted file, or None to skip it
        (wrong extension, name not matching ``named_regexp``)."""
        if os.path.splitext(submitted_file)[1] not in self.valid_ext:
            self.log.info("Skipping %s: not one of %s", submitted_file, self.valid_ext)
            return None
        info = self._match(os.path.basename(submitted_file))
        if not info:
            return None
        info["file_id"] = notebook_name(info["file_id"], self.released_notebooks())
        if not info.get("timestamp"):
            info.pop("timestamp", None)  # nbgrader then writes no timestamp.txt: never late
            if info.get("late"):
                self.log.warning(
                    "%s is marked late by the LMS but has no submission time: no late penalty "
                    "can be computed (add times with `python -m grading.lms stamp`)",
                    os.path.basename(submitted_file))
        return info


def canvas_filename(lastfirst: str, user_id: str | int, submission_id: str | int,
                    original: str, late: bool = False,
                    submitted_at: datetime | None = None) -> str:
    """The name Canvas gives a submitted file in its bulk download, with the course's time field
    when ``submitted_at`` is given (naive datetimes are taken as UTC)."""
    parts = [lastfirst] + (["LATE"] if late else []) + [str(user_id), str(submission_id)]
    if submitted_at is not None:
        parts.append(format_time(submitted_at))
    return "_".join(parts + [original])


def format_time(when: datetime) -> str:
    """``when`` in :data:`TIME_FORMAT` (UTC; a naive datetime is taken as UTC, as nbgrader does)."""
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return when.strftime(TIME_FORMAT)


def write_archive(path: Path | str,
                  files: Mapping[str, NotebookNode | bytes | str]) -> Path:
    """Write a zip at ``path`` holding ``files`` (name -> notebook, bytes or text), as an LMS
    bulk download would. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            if isinstance(content, NotebookNode):
                content = nbformat.writes(content, version=4)
            zf.writestr(name, content)
    return path


def stamp_archive(archive: Path | str, submitted_at: Mapping[str, datetime],
                  regexp: str = CANVAS_REGEXP) -> list[str]:
    """Insert submission times into the names of a downloaded zip, in place.

    ``submitted_at`` maps LMS user ids to submission times. Each entry whose name matches
    ``regexp``, has no time yet and whose ``student_id`` is in ``submitted_at`` gets
    ``_<YYYYMMDDTHHMMSSZ>`` after its ``submission_id`` (Canvas naming; ``regexp`` must have
    that group). Other entries are kept as they are. Returns the user ids that were in the
    archive but not in ``submitted_at`` (left without a time), sorted.
    """
    archive = Path(archive)
    pattern = re.compile(regexp)
    missing: set[str] = set()
    fd, tmp = tempfile.mkstemp(suffix=".zip", dir=archive.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(archive) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
            for item in src.infolist():
                name = item.filename
                folder, base = os.path.split(name)
                m = pattern.match(base)
                if m and not m.group("timestamp"):
                    user = m.group("student_id")
                    if user in submitted_at:
                        cut = m.end("submission_id")
                        base = f"{base[:cut]}_{format_time(submitted_at[user])}{base[cut:]}"
                        name = f"{folder}/{base}" if folder else base
                    else:
                        missing.add(user)
                dst.writestr(name, src.read(item))
        os.replace(tmp, archive)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return sorted(missing)


def read_times(path: Path | str) -> dict[str, datetime]:
    """``{user_id: submitted_at}`` from a CSV with columns ``user_id`` and ``submitted_at``
    (ISO 8601, e.g. Canvas API's ``2030-01-12T09:30:00Z``; no zone means UTC). Rows with an
    empty time (nothing submitted) are left out."""
    from dateutil.parser import isoparse

    with open(path, newline="") as fh:
        return {row["user_id"].strip(): isoparse(row["submitted_at"].strip())
                for row in csv.DictReader(fh) if row.get("submitted_at", "").strip()}


def zip_collect(assignment: str, root: Path | str = COURSE_ROOT,
                archives: Iterable[Path | str] = ()) -> subprocess.CompletedProcess:
    """Instructor: copy ``archives`` (zips or single files) into
    ``downloaded/ASSIGNMENT/archive/``, then ``nbgrader zip_collect ASSIGNMENT --force``.

    ``--force`` replaces ``downloaded/ASSIGNMENT/extracted/`` and, for every student in the
    archives, ``submitted/<student>/ASSIGNMENT/`` (a fresh download supersedes the last one;
    students not in it keep their submission). Every archive already in that folder is
    collected again too: for a student in several, the newest submission time wins, and
    nbgrader fails ("Duplicate submission file") when there are no times to compare. Exit
    status 0 says nothing about which files matched: nbgrader logs and skips the others; look
    in ``submitted/``.
    """
    folder = Path(root) / "downloaded" / assignment / "archive"
    folder.mkdir(parents=True, exist_ok=True)
    for archive in archives:
        shutil.copy2(archive, folder / Path(archive).name)
    return nbgrader("zip_collect", assignment, "--force", root=root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grading.lms",
        description="Add submission times (CSV: user_id,submitted_at) to an LMS download zip.")
    sub = parser.add_subparsers(dest="command", required=True)
    stamp = sub.add_parser("stamp", help="insert submission times into the zip's file names")
    stamp.add_argument("archive", type=Path)
    stamp.add_argument("times", type=Path, help="CSV with columns user_id, submitted_at")
    args = parser.parse_args(argv)
    missing = stamp_archive(args.archive, read_times(args.times))
    if missing:
        print(f"no submission time for user(s) {', '.join(missing)}: "
              "they get no timestamp.txt and no late penalty", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
