"""Roster import (grading/roster.py) from Canvas's and Moodle's CSV exports into nbgrader's
gradebook (SQLite, and the real PostgreSQL server)."""
from __future__ import annotations

import pytest

from grading import gradebook, roster
from support_pg import postgres_url  # noqa: F401 (fixture)

# Canvas: Grades > Export > Export Entire Gradebook (UTF-8 with a byte-order mark).
CANVAS = """\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,L2A2 Grad-CAM (3344),Current Score,Unposted Current Score,Final Score,Unposted Final Score
    Points Possible,,,,,32.00,(read only),(read only),(read only),(read only)
"Lovelace, Ada",104857,S0001,ada.lovelace@uni.example,Interpretability - Section A,28.00,87.5,87.5,87.5,87.5
"Turing, Alan",104858,S0002,aturing,Interpretability - Section A,,,,,
"Hopper, Grace Brewster",104859,S0003,grace.hopper@uni.example,Interpretability - Section B,30.00,93.75,93.75,93.75,93.75
"Student, Test",104999,,,Interpretability - Section A,,,,,
"""

# Moodle: participants page, "Download table data as" CSV, semicolon-separated.
MOODLE = """First name;Last name;ID number;Email address;Roles;Groups;Last access to course
Émilie;du Châtelet;20231;emilie.duchatelet@uni.example;Student;Group 1;Never
Sophie;Germain;20232;sophie.germain@uni.example;Student;Group 2;2 days 3 hours
"""

# Moodle: Grades > Export > Plain text file (comma-separated, older "Surname" header).
MOODLE_GRADES = """First name,Surname,ID number,Institution,Department,Email address,Assignment: L2A2 Grad-CAM (Real),Last downloaded from this course
Mary,Somerville,,Uni,Physics,mary.somerville@uni.example,28.00,1767225600
"""


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_canvas_export(tmp_path):
    students = roster.read_roster(_write(tmp_path, "canvas.csv", CANVAS))
    assert students == [
        roster.RosterStudent("104857", "Ada", "Lovelace", "ada.lovelace@uni.example", "104857"),
        roster.RosterStudent("104858", "Alan", "Turing", None, "104858"),
        roster.RosterStudent("104859", "Grace Brewster", "Hopper", "grace.hopper@uni.example", "104859"),
    ]
    by_sis = roster.read_roster(tmp_path / "canvas.csv", id_column="SIS User ID")
    assert [s.id for s in by_sis] == ["S0001", "S0002", "S0003"]
    assert by_sis[0].lms_user_id == "104857"


def test_moodle_exports(tmp_path):
    students = roster.read_roster(_write(tmp_path, "moodle.csv", MOODLE))
    assert students == [
        roster.RosterStudent("20231", "Émilie", "du Châtelet", "emilie.duchatelet@uni.example", None),
        roster.RosterStudent("20232", "Sophie", "Germain", "sophie.germain@uni.example", None),
    ]
    path = _write(tmp_path, "grades.csv", MOODLE_GRADES)
    with pytest.raises(roster.RosterError, match=r"rows 2 have no 'ID number'.*--id-column"):
        roster.read_roster(path)
    (mary,) = roster.read_roster(path, id_column="Email address")
    assert (mary.id, mary.first_name, mary.last_name) == (
        "mary.somerville@uni.example", "Mary", "Somerville")


def test_bad_exports_say_why(tmp_path):
    with pytest.raises(roster.RosterError, match="not a Canvas or Moodle"):
        roster.read_roster(_write(tmp_path, "x.csv", "name,score\nAda,3\n"))
    with pytest.raises(roster.RosterError, match="duplicate student ids: '20231' \\(rows 2 and 3\\)"):
        roster.read_roster(_write(tmp_path, "dup.csv", MOODLE.replace("20232", "20231")))
    with pytest.raises(roster.RosterError, match="no column 'Login'"):
        roster.read_roster(_write(tmp_path, "c.csv", CANVAS), id_column="Login")
    with pytest.raises(roster.RosterError, match="empty"):
        roster.read_roster(_write(tmp_path, "e.csv", ""))


def _import_and_check(url: str, tmp_path):
    with gradebook.open_gradebook(url) as gb:
        gb.update_or_create_student("104857")     # added at autograde (zip_collect): no name
        gb.update_or_create_student("dropped")    # left the course
    result = roster.import_roster(roster.read_roster(_write(tmp_path, "canvas.csv", CANVAS)), url)
    assert result == {"created": ["104858", "104859"], "updated": ["104857"],
                      "not_in_roster": ["dropped"]}
    with gradebook.open_gradebook(url) as gb:
        ada = gb.find_student("104857")
        assert (ada.first_name, ada.last_name, ada.email, ada.lms_user_id) == (
            "Ada", "Lovelace", "ada.lovelace@uni.example", "104857")
        assert {s.id for s in gb.students} == {"104857", "104858", "104859", "dropped"}


def test_import_into_sqlite_gradebook(tmp_path, capsys, monkeypatch):
    url = gradebook.default_url(tmp_path)
    _import_and_check(url, tmp_path)
    # The command line: --dry-run writes nothing; a run updates (idempotent).
    monkeypatch.delenv(gradebook.DB_URL_ENV, raising=False)
    path = _write(tmp_path, "moodle.csv", MOODLE)
    assert roster.main([str(path), "--root", str(tmp_path), "--dry-run"]) == 0
    assert "nothing written" in capsys.readouterr().out
    assert roster.main([str(path), "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 created, 0 updated" in out and "not in the export" in out
    assert roster.main([str(path), "--root", str(tmp_path)]) == 0
    assert "0 created, 2 updated" in capsys.readouterr().out
    assert roster.main([str(tmp_path / "missing.csv"), "--root", str(tmp_path)]) == 2


def test_import_into_postgres_gradebook(tmp_path, postgres_url):
    _import_and_check(postgres_url, tmp_path)
