"""Run nbgrader on the course from Python.

Every nbgrader command runs as a subprocess with the course root as working directory (so the
course's ``nbgrader_config.py`` is the one loaded) and with this interpreter's ``bin/`` first on
``PATH`` (nbgrader calls ``alembic`` from ``PATH`` when it creates a gradebook).

``nbgrader autograde`` exits 0 even when cells fail or the notebook cannot import anything: a
zero exit status says nothing about scores. Read them from the gradebook
(:mod:`grading.scores`).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import nbformat

#: The course root: the repository root (the folder holding ``nbgrader_config.py``).
COURSE_ROOT = Path(__file__).resolve().parent.parent

#: nbgrader's format for ``timestamp.txt`` in a submission folder.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"

#: What a course needs, copied by :func:`copy_course` when present.
COURSE_ITEMS = (
    "nbgrader_config.py", "requirements.txt", "source", "release", "interpkit", "witness",
    "solutions", "autograder", "grading", "examples",
)
#: Never copied: caches, the environment, and nbgrader's per-student data and gradebook.
COPY_IGNORE = (
    "__pycache__", "*.pyc", ".ipynb_checkpoints", ".venv", "submitted", "autograded",
    "feedback", "gradebook.db", "nbgrader.log", ".grading-cache", ".grade-all",
)

_BIN = Path(sys.executable).parent


def nbgrader(*args: str, root: Path | str = COURSE_ROOT,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``nbgrader *args`` in ``root``; raise ``RuntimeError`` if it exits non-zero.

    ``env`` entries are added to (and override) this process's environment. Output is captured
    and returned. A zero exit status is no statement about scores (see the module docstring).
    """
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    full_env["PATH"] = os.pathsep.join(p for p in (str(_BIN), full_env.get("PATH", "")) if p)
    cmd = [str(_BIN / "nbgrader"), *map(str, args)]
    proc = subprocess.run(cmd, cwd=str(root), env=full_env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-30:])
        raise RuntimeError(
            f"`nbgrader {' '.join(map(str, args))}` failed in {root} "
            f"(exit {proc.returncode}):\n{tail}"
        )
    return proc


def copy_course(dest: Path | str, source: Path | str = COURSE_ROOT) -> Path:
    """Copy what a course needs (config, source, release, packages, examples) from ``source``
    (default: this course) into ``dest``.

    Meant for tests and benchmarks: grading in a scratch copy never touches the real course's
    submissions or gradebook. Items missing from the course are skipped.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns(*COPY_IGNORE)
    for name in COURSE_ITEMS:
        src = Path(source) / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore, dirs_exist_ok=True)
        elif src.is_file():
            shutil.copy2(src, dest / name)
    return dest


def generate_release(assignment: str, root: Path | str = COURSE_ROOT) -> subprocess.CompletedProcess:
    """``nbgrader generate_assignment ASSIGNMENT --force``: regenerate ``release/ASSIGNMENT``."""
    return nbgrader("generate_assignment", assignment, "--force", root=root)


def submit(root: Path | str, student: str, assignment: str, notebook: nbformat.NotebookNode,
           filename: str, timestamp: str | None = None) -> Path:
    """Write ``notebook`` as ``submitted/<student>/<assignment>/<filename>`` with a timestamp.

    ``timestamp`` is in nbgrader's format (:data:`TIMESTAMP_FORMAT`); default: now (UTC).
    Returns the path of the written notebook.
    """
    folder = Path(root) / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    nbformat.write(notebook, str(path), version=4)
    if timestamp is None:
        timestamp = datetime.now(timezone.utc).strftime(TIMESTAMP_FORMAT)
    (folder / "timestamp.txt").write_text(timestamp)
    return path


def autograde(root: Path | str, assignment: str,
              students: list[str] | None = None) -> list[subprocess.CompletedProcess]:
    """``nbgrader autograde ASSIGNMENT --force``: one call for all students when ``students`` is
    None, else one call per student. Returns the completed processes (exit status 0 means
    nbgrader ran, not that anything passed)."""
    if students is None:
        return [nbgrader("autograde", assignment, "--force", root=root)]
    return [nbgrader("autograde", assignment, "--force", f"--student={s}", root=root)
            for s in students]


def generate_feedback(root: Path | str, assignment: str,
                      students: list[str] | None = None) -> list[subprocess.CompletedProcess]:
    """``nbgrader generate_feedback ASSIGNMENT --force``: HTML in ``feedback/<student>/<a>/``.

    One call for every autograded student when ``students`` is None, else one call per student
    (so that other students' feedback is left alone)."""
    if students is None:
        return [nbgrader("generate_feedback", assignment, "--force", root=root)]
    return [nbgrader("generate_feedback", assignment, "--force", f"--student={s}", root=root)
            for s in students]
