"""Student names and ids from an LMS roster export, into the gradebook (nbgrader's student API).

``python -m grading.roster EXPORT.csv [--format auto|canvas|moodle] [--id-column NAME]
[--dry-run] [--root PATH]`` (``make roster R=EXPORT.csv``) reads the class list and creates or
updates each student with nbgrader's ``Gradebook.update_or_create_student`` (id, first and last
name, email, LMS user id), so that the formgrader and the exports show names instead of
"None, None". Students already in the gradebook keep their submissions and grades; students of
the gradebook missing from the export are listed, never removed.

Accepted exports (UTF-8, with or without a byte-order mark):

- **Canvas**, Grades > Export > "Export Entire Gradebook" (CSV). Columns used: ``Student``
  (``Last, First``), ``ID`` (Canvas user id: the nbgrader student id, as in Canvas's
  submission zips, :mod:`grading.lms`, and the LMS user id), ``SIS Login ID`` (the email when it
  is one), ``SIS User ID``. The "Points Possible" row, rows without an ``ID`` and Canvas's
  "Test Student" are skipped.
- **Moodle**, the participants page's "Download table data as" CSV or Grades > Export > "Plain
  text file" (comma, semicolon, tab or colon separated). Columns used: ``First name``,
  ``Last name`` (or ``Surname``), ``Email address``, and ``ID number`` as the student id
  (``--id-column`` picks another column, e.g. ``Username`` or ``Email address``). Moodle
  exports carry no LMS user id.

The format is recognized from the header row (``--format`` forces it). A row without a student
id, or two rows with the same id, stop the import with the row numbers: nothing is written.
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path

from grading import gradebook
from grading.course import COURSE_ROOT

FORMATS = ("canvas", "moodle")
CANVAS_REQUIRED = ("Student", "ID")
MOODLE_FIRST = "First name"
MOODLE_LAST = ("Last name", "Surname")
MOODLE_EMAIL = "Email address"
MOODLE_ID = "ID number"
CANVAS_TEST_STUDENTS = {"Student, Test", "Test Student"}


@dataclass(frozen=True)
class RosterStudent:
    """One student of the export, as nbgrader stores a student."""
    id: str
    first_name: str | None
    last_name: str | None
    email: str | None
    lms_user_id: str | None


class RosterError(ValueError):
    """The export cannot be imported as it is (the message says which rows and why)."""


def _rows(text: str) -> list[dict[str, str]]:
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t:")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    rows = []
    for row in reader:
        rows.append({(k or "").strip(): (v or "").strip() for k, v in row.items()
                     if not isinstance(v, list)})
    if reader.fieldnames is None:
        raise RosterError("the file is empty")
    return rows


def detect(header: list[str]) -> str:
    """``canvas`` or ``moodle`` from the header row; ``RosterError`` when neither fits."""
    names = {h.strip() for h in header}
    if all(c in names for c in CANVAS_REQUIRED):
        return "canvas"
    if MOODLE_FIRST in names and any(c in names for c in MOODLE_LAST):
        return "moodle"
    raise RosterError(
        f"not a Canvas or Moodle roster export: header {sorted(names)[:8]}; Canvas needs "
        f"{' and '.join(CANVAS_REQUIRED)}, Moodle needs '{MOODLE_FIRST}' and "
        f"'{MOODLE_LAST[0]}' (or '{MOODLE_LAST[1]}')")


def _split_name(name: str) -> tuple[str | None, str | None]:
    """Canvas's sortable ``Last, First`` (or ``First Last`` without a comma)."""
    if "," in name:
        last, first = (p.strip() for p in name.split(",", 1))
    else:
        first, _, last = name.strip().rpartition(" ")
        if not first:
            first, last = last, ""
    return first or None, last or None


def _canvas(rows: list[dict[str, str]], id_column: str | None) -> list[tuple[int, RosterStudent | None]]:
    key = id_column or "ID"
    out = []
    for number, row in enumerate(rows, start=2):
        name = row.get("Student", "")
        if "Points Possible" in name or name in CANVAS_TEST_STUDENTS or (
                not row.get("ID") and not name):
            continue  # Canvas's points row, its test student, blank lines
        first, last = _split_name(name)
        login = row.get("SIS Login ID", "")
        sid = row.get(key, "")
        out.append((number, RosterStudent(sid, first, last, login if "@" in login else None,
                                          row.get("ID") or None) if sid else None))
    return out


def _moodle(rows: list[dict[str, str]], id_column: str | None) -> list[tuple[int, RosterStudent | None]]:
    key = id_column or MOODLE_ID
    last_col = next((c for c in MOODLE_LAST if rows and c in rows[0]), MOODLE_LAST[0])
    out = []
    for number, row in enumerate(rows, start=2):
        if not any(row.values()):
            continue
        sid = row.get(key, "")
        out.append((number, RosterStudent(sid, row.get(MOODLE_FIRST) or None,
                                          row.get(last_col) or None,
                                          row.get(MOODLE_EMAIL) or None, None) if sid else None))
    return out


def read_roster(path: Path | str, fmt: str = "auto", id_column: str | None = None) -> list[RosterStudent]:
    """The students of the export at ``path`` (see the module docstring), in file order.

    ``RosterError`` for an unknown format, an id column that is not there, rows without an id
    or duplicate ids."""
    text = Path(path).read_text(encoding="utf-8-sig")
    rows = _rows(text)
    header = list(rows[0]) if rows else next(csv.reader(io.StringIO(text)), [])
    fmt = detect(header) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise RosterError(f"format must be one of {FORMATS} or auto, not {fmt!r}")
    if id_column is not None and id_column not in header:
        raise RosterError(f"no column {id_column!r} in the export (columns: {', '.join(header)})")
    parsed = (_canvas if fmt == "canvas" else _moodle)(rows, id_column)
    missing = [n for n, s in parsed if s is None]
    if missing:
        column = id_column or ("ID" if fmt == "canvas" else MOODLE_ID)
        raise RosterError(f"rows {', '.join(map(str, missing[:10]))} have no {column!r}: fill it "
                          "in the LMS or choose the id with --id-column")
    seen: dict[str, int] = {}
    duplicates = []
    for number, student in parsed:
        if student.id in seen:
            duplicates.append(f"{student.id!r} (rows {seen[student.id]} and {number})")
        seen.setdefault(student.id, number)
    if duplicates:
        raise RosterError("duplicate student ids: " + ", ".join(duplicates[:10]))
    return [s for _, s in parsed]


def import_roster(students: list[RosterStudent], url: str) -> dict[str, list[str]]:
    """Create or update every student in the gradebook at ``url`` with nbgrader's
    ``update_or_create_student``. Returns ``{"created": [...], "updated": [...],
    "not_in_roster": [...]}`` (ids; the last are gradebook students the export lacks)."""
    with gradebook.open_gradebook(url) as gb:
        known = {s.id for s in gb.students}
        for s in students:
            gb.update_or_create_student(s.id, first_name=s.first_name, last_name=s.last_name,
                                        email=s.email, lms_user_id=s.lms_user_id)
    ids = [s.id for s in students]
    return {"created": [i for i in ids if i not in known],
            "updated": [i for i in ids if i in known],
            "not_in_roster": sorted(known - set(ids))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grading.roster",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("export", type=Path, help="the LMS's CSV export")
    parser.add_argument("--format", choices=("auto", *FORMATS), default="auto")
    parser.add_argument("--id-column", default=None,
                        help="column holding nbgrader's student id (default: Canvas ID, Moodle "
                             "ID number)")
    parser.add_argument("--dry-run", action="store_true", help="read and list, write nothing")
    parser.add_argument("--root", type=Path, default=COURSE_ROOT, help="course root")
    args = parser.parse_args(argv)
    try:
        students = read_roster(args.export, args.format, args.id_column)
    except (OSError, RosterError) as err:
        print(f"roster: {err}", file=sys.stderr)
        return 2
    width = max([len("id"), *(len(s.id) for s in students)])
    for s in students:
        line = f"{s.id:<{width}}  {s.last_name or '-'}, {s.first_name or '-'}  {s.email or ''}"
        print(line.rstrip()[:100])
    if args.dry_run:
        print(f"{len(students)} student(s) read; nothing written (--dry-run)")
        return 0
    url = gradebook.db_url(args.root)
    result = import_roster(students, url)
    print(f"{len(result['created'])} created, {len(result['updated'])} updated in "
          f"{gradebook.redact(url)}"[:100])
    if result["not_in_roster"]:
        print("in the gradebook but not in the export (left as they are): "
              + ", ".join(result["not_in_roster"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
