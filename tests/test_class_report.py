"""The class report (``python -m grading.class_report``, ``make report``) on a hand-built gradebook.

A scratch course gets L2A2 through ``nbgrader generate_assignment`` (so the gradebook knows the
assignment and its grade cells exactly as in production), then three submissions whose grades
are written with nbgrader's ``Gradebook`` API, the way ``nbgrader autograde`` and the formgrader
record them: ``auto_score`` for test cells and blank answers, ``manual_score`` for a human's
grade, neither for a written answer awaiting a grader. Every number of the report is compared
with values computed by hand from those grades. ``make report`` itself is run in the scratch
course: nbgrader's CSV export and the class report.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy.exc import SAWarning

from grading import class_report, course, scores

ROOT = Path(__file__).resolve().parents[1]
A = "L2A2_gradcam"
NOTEBOOK = A  # one notebook per assignment, named like it
MANUAL = ["q_model_differences", "q_threshold", "q_counterfactual", "q_limitations"]
PENDING = None  # a written answer nobody has graded yet

# Hand-set grades: anything not listed is full marks (auto) or pending (manual).
GRADES = {
    "alice": {"q_model_differences": ("manual", 3.0)},
    "bob": {"test_grad_cam_hidden": ("auto", 3.0), "test_target_layers_hidden": ("auto", 0.0),
            "test_localization_box_visible": ("auto", 0.0), "q_model_differences": ("manual", 1.5),
            "q_threshold": ("manual", 2.0)},
    # carol submitted the blank release: nbgrader scores blank answers 0 automatically, except
    # q_limitations, which she did write (pending).
    "carol": "blank",
}


def _write_grades(root: Path) -> dict[str, dict[str, float | None]]:
    """Record the submissions of GRADES; return ``{student: {grade_id: score or None}}``."""
    from nbgrader.api import Gradebook

    parts = scores.graded_parts(root, A)
    expected: dict[str, dict[str, float | None]] = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb, warnings.catch_warnings():
        # nbgrader's own add_submission (the call autograde makes) trips SQLAlchemy's autoflush
        # warnings; they say nothing about the grades written.
        warnings.simplefilter("ignore", SAWarning)
        for student, grades in GRADES.items():
            gb.update_or_create_student(student)
            gb.add_submission(A, student)
            expected[student] = {}
            for part in parts:
                grade = gb.find_grade(part.grade_id, NOTEBOOK, A, student)
                if grades == "blank":
                    kind, value = (("manual", PENDING) if part.grade_id == "q_limitations"
                                   else ("auto", 0.0))
                else:
                    kind, value = grades.get(
                        part.grade_id, ("manual", PENDING) if part.manual else ("auto", part.points))
                if value is not None:
                    setattr(grade, f"{kind}_score", value)
                expected[student][part.grade_id] = value
            gb.db.commit()
    return expected


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory):
    root = course.copy_course(tmp_path_factory.mktemp("report") / "course")
    course.generate_release(A, root)
    expected = _write_grades(root)
    return root, expected


def test_the_gradebook_holds_the_hand_set_grades(graded_course):
    # The fixture itself is checked through grading.scores, the reader the report is built on.
    root, expected = graded_course
    for student, grades in expected.items():
        assert {k: v[0] for k, v in scores.cell_scores(root, A, student).items()} == grades


def test_table_numbers_equal_hand_computed_values(graded_course):
    root, _ = graded_course
    stats, csv_path, png_path = class_report.write_report(root, A, root / "reports")
    rows = {r["grade_id"]: r for r in csv.DictReader(csv_path.open())}
    parts = scores.graded_parts(root, A)
    assert list(rows) == [p.grade_id for p in parts], "parts in notebook order, all of them"
    assert list(next(iter(rows.values()))) == list(class_report.CSV_COLUMNS)

    # Hand-computed from GRADES. test_grad_cam_hidden (6 points): alice 6, bob 3, carol 0.
    assert rows["test_grad_cam_hidden"] == {
        "notebook": A, "grade_id": "test_grad_cam_hidden", "kind": "auto", "max_points": "6",
        "students": "3", "graded": "3", "pending": "0", "missing": "0", "full_marks": "1",
        "partial": "1", "zero": "1", "pass_rate": "0.3333", "mean_fraction": "0.5",
        "distribution": "0:1 3:1 6:1"}
    # test_target_layers_hidden (3 points): 3, 0, 0.
    r = rows["test_target_layers_hidden"]
    assert (r["pass_rate"], r["mean_fraction"], r["distribution"]) == ("0.3333", "0.3333", "0:2 3:1")
    # A visible test everyone but carol passed: 1, 1, 0.
    r = rows["test_grad_cam_visible"]
    assert (r["full_marks"], r["zero"], r["pass_rate"], r["mean_fraction"]) == ("2", "1", "0.6667", "0.6667")
    # test_localization_box_visible: alice 1, bob 0, carol 0.
    r = rows["test_localization_box_visible"]
    assert (r["pass_rate"], r["mean_fraction"], r["distribution"]) == ("0.3333", "0.3333", "0:2 1:1")

    # Manual parts: pending answers are counted apart, never as zeros.
    r = rows["q_model_differences"]  # 3 points: alice 3, bob 1.5, carol blank 0
    assert (r["kind"], r["graded"], r["pending"], r["full_marks"], r["partial"], r["zero"],
            r["pass_rate"], r["mean_fraction"], r["distribution"]) == \
        ("manual", "3", "0", "1", "1", "1", "0.3333", "0.5", "0:1 1.5:1 3:1")
    r = rows["q_threshold"]  # 2 points: alice pending, bob 2, carol blank 0
    assert (r["graded"], r["pending"], r["pass_rate"], r["mean_fraction"], r["distribution"]) == \
        ("2", "1", "0.5", "0.5", "0:1 2:1")
    r = rows["q_counterfactual"]  # alice and bob pending, carol blank 0
    assert (r["graded"], r["pending"], r["pass_rate"], r["mean_fraction"], r["distribution"]) == \
        ("1", "2", "0", "0", "0:1")
    r = rows["q_limitations"]  # nobody graded yet: no rate, no mean (not 0)
    assert (r["graded"], r["pending"], r["full_marks"], r["zero"], r["pass_rate"],
            r["mean_fraction"], r["distribution"]) == ("0", "3", "0", "0", "", "", "")

    # Every row against a generic hand computation from the grades written.
    _, expected = graded_course
    for part in parts:
        values = [expected[s][part.grade_id] for s in GRADES]
        graded = [v for v in values if v is not None]
        row = rows[part.grade_id]
        assert row["kind"] == ("manual" if part.manual else "auto")
        assert int(row["pending"]) == values.count(None)
        assert int(row["full_marks"]) == sum(v == part.points for v in graded)
        if graded:
            assert float(row["mean_fraction"]) == pytest.approx(
                sum(graded) / part.points / len(graded), abs=1e-4)

    # The text table says the same, with "pending" where nothing is graded.
    text = class_report.text_table(stats, A)
    line = next(l for l in text.splitlines() if l.startswith("q_limitations "))
    assert line.split()[1:7] == ["manual", "4", "0", "3", "pending", "pending"]
    line = next(l for l in text.splitlines() if l.startswith("test_grad_cam_hidden "))
    assert line.split() == ["test_grad_cam_hidden", "auto", "6", "3", "0", "33%", "50%",
                            "0:1", "3:1", "6:1"]
    assert "Hardest autograded parts (lowest mean): test_target_layers_hidden (33%)" in text

    with Image.open(png_path) as image:
        assert image.format == "PNG"
        image.verify()
    with Image.open(png_path) as image:
        width, height = image.size
    assert width > 800 and height > 600, "one row per part: a tall figure"


def test_make_report_exports_grades_and_writes_the_report(graded_course):
    """``make report A=...`` in the scratch course: nbgrader's CSV (a row per student, scores as
    nbgrader computes them) and the class report files, printed table included."""
    root, expected = graded_course
    venv = Path(sys.prefix)
    env = dict(os.environ, PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}")
    # -o: treat the environment as up to date (it is the one running this test); never pip here.
    proc = subprocess.run(
        ["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), "-C", str(root),
         "-o", f"{venv}/.installed", f"VENV={venv}", "report", f"A={A}"],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_grad_cam_hidden" in proc.stdout and "pending" in proc.stdout

    export = root / "reports" / f"{A}_grades.csv"
    rows = list(csv.DictReader(export.open()))
    assert sorted(r["student_id"] for r in rows) == sorted(GRADES)
    assert all(r["assignment"] == A for r in rows)
    for r in rows:
        # nbgrader's total: every recorded score, pending answers adding nothing.
        total = sum(v for v in expected[r["student_id"]].values() if v is not None)
        assert float(r["score"]) == pytest.approx(total), r
        assert float(r["max_score"]) == 32
    assert (root / "reports" / f"{A}_parts.csv").is_file()
    assert (root / "reports" / f"{A}_parts.png").stat().st_size > 10_000


def test_cli_without_submissions_says_so(tmp_path, capsys):
    root = course.copy_course(tmp_path / "course")
    course.generate_release(A, root)  # a gradebook with the assignment but no submission
    assert class_report.main([A, "--root", str(root), "--out", str(tmp_path / "out")]) == 1
    assert "no autograded submission" in capsys.readouterr().err


def test_text_table_fits_100_columns_with_long_names_and_many_scores():
    """Part names longer than 40 characters are cut; a wide distribution wraps."""
    long = scores.GradedPart("a_notebook_with_a_long_name", "test_" + "x" * 60, 6.0, False)
    short = scores.GradedPart("nb", "q_short", 4.0, True)
    many = tuple(i / 7 for i in range(43))  # 43 distinct partial-credit scores
    stats = [class_report.PartStats(long, many, 0, 2), class_report.PartStats(short, (), 5, 0)]
    text = class_report.text_table(stats, A)
    assert max(len(line) for line in text.splitlines()) <= 100, text
    assert "~" in text and "(2 missing)" in text
    tokens = set(text.split())
    assert all(f"{class_report._num(x)}:1" in tokens for x in many), text
