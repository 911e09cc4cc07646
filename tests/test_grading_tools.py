"""The instructor tools of grading/ on a throw-away nbgrader course built in a temporary folder.

The toy assignment "toy" has one solution cell (``add``), a visible test worth 1 point, a test
worth 2 points whose last value is its partial credit, and a manually graded written answer.
Scores are read back from the gradebook (never from nbgrader's exit status).

The nbgrader pipeline (generate, submit, autograde, feedback, demo) is one test, so that it runs
once even when pytest-xdist spreads this file's tests over workers; the rest are unit tests.
"""
from __future__ import annotations

import textwrap

import nbformat
import pytest
from nbformat import v4

from grading import course, demo, scores
from grading.submissions import Variant, fill, patch, solution_answers, solution_cells

A = "toy"
CONFIG = """\
import os
c = get_config()
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "toy-course"
c.Execute.timeout = 30
"""


def _meta(grade_id, *, grade=False, solution=False, locked=False, points=None):
    meta = {"schema_version": 3, "grade_id": grade_id, "grade": grade, "solution": solution,
            "locked": locked, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def toy_notebook():
    return v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}},
        cells=[
            v4.new_markdown_cell("# Toy assignment\nWrite `add`.",
                                 metadata=_meta("intro", locked=True)),
            v4.new_code_cell(textwrap.dedent("""\
                def add(a, b):
                    \"\"\"The sum of a and b.\"\"\"
                    ### BEGIN SOLUTION
                    return a + b
                    ### END SOLUTION"""), metadata=_meta("add", solution=True)),
            v4.new_code_cell("assert add(1, 2) == 3",
                             metadata=_meta("test_add_visible", grade=True, locked=True,
                                            points=1)),
            v4.new_code_cell(textwrap.dedent("""\
                cases = [(0, 0), (1, 1), (2, 5), (-3, 4)]
                passed = sum(add(a, b) == a + b for a, b in cases)
                2 * passed / len(cases)"""),
                metadata=_meta("test_add_partial", grade=True, locked=True, points=2)),
            v4.new_markdown_cell("### BEGIN SOLUTION\nAddition is commutative.\n### END SOLUTION",
                                 metadata=_meta("why_commutative", grade=True, solution=True,
                                                points=1)),
        ],
    )


BUG = ("add", "return a + b", "return abs(a) + b")  # wrong only for negative a: partial credit
VARIANTS = [
    Variant("complete", "the instructor's answers", lambda a: a),
    Variant("blank", "the release notebook as is", lambda a: {}, frozenset(
        {"test_add_visible", "test_add_partial"})),
    Variant("buggy", "abs() on the first argument", lambda a: patch(a, *BUG),
            frozenset({"test_add_partial"})),
]
DEMO = {"demo_blank": None, "demo_buggy": lambda a: patch(a, *BUG)}


def _course(root):
    (root / "nbgrader_config.py").write_text(CONFIG)
    (root / "source" / A).mkdir(parents=True)
    nbformat.write(toy_notebook(), str(root / "source" / A / "toy.ipynb"), version=4)
    return root


def _table_columns(text):
    """``{student: [values in row order]}`` and ``{row label: max}`` of a score table (every
    page): rows are parts, then "auto total" and "manual pending"."""
    columns, maxima, students = {}, {}, []
    for line in text.splitlines():
        if line.startswith("part "):
            students = line.split()[2:]
            columns.update({s: [] for s in students})
            continue
        tokens = line.split()
        if not students or not tokens or set(line) <= {"-"}:
            if not tokens:
                students = []
            continue
        values, prefix = tokens[-len(students):], tokens[:-len(students)]
        two_words = " ".join(prefix[:2]) in ("auto total", "manual pending")
        label = " ".join(prefix[:2]) if two_words else prefix[0]
        maxima[label] = " ".join(prefix[2 if two_words else 1:])
        for student, value in zip(students, values):
            columns[student].append(value)
    return columns, maxima


def test_grading_pipeline_on_toy_course(tmp_path, capsys):
    root = _course(tmp_path)

    # generate_assignment: solutions hidden in the release.
    course.generate_release(A, root)
    release = nbformat.read(str(root / "release" / A / "toy.ipynb"), as_version=4)
    cells = solution_cells(release)
    assert "raise NotImplementedError()" in cells["add"].source
    assert "return a + b" not in cells["add"].source
    assert cells["why_commutative"].source == "YOUR ANSWER HERE"

    # Three variants through submit(), two demo students through demo.write_submissions().
    answers = solution_answers(root / "source" / A / "toy.ipynb")
    for variant in VARIANTS:
        course.submit(root, variant.name, A, variant.build(release, answers), "toy.ipynb")
    demo.write_submissions(root, A, DEMO)
    with pytest.raises(ValueError, match="demo_"):
        demo.write_submissions(root, A, {"alice": None})
    assert not (root / "submitted" / "alice").exists()
    course.autograde(root, A)  # one call for every student
    course.generate_feedback(root, A)

    # Scores: full / 0 / partial; a written answer is pending unless left blank.
    assert scores.cell_scores(root, A, "complete") == {
        "test_add_visible": (1.0, 1.0), "test_add_partial": (2.0, 2.0),
        "why_commutative": (None, 1.0),
    }
    assert scores.cell_scores(root, A, "blank") == {
        "test_add_visible": (0.0, 1.0), "test_add_partial": (0.0, 2.0),
        "why_commutative": (0.0, 1.0),  # unchanged answer: nbgrader gives 0 by itself
    }
    assert scores.cell_scores(root, A, "buggy") == {
        "test_add_visible": (1.0, 1.0), "test_add_partial": (1.5, 2.0),
        "why_commutative": (None, 1.0),
    }
    assert scores.cell_scores(root, A, "demo_blank") == scores.cell_scores(root, A, "blank")
    assert scores.cell_scores(root, A, "demo_buggy") == scores.cell_scores(root, A, "buggy")
    for variant in VARIANTS:  # each variant loses points exactly where it says
        got = scores.cell_scores(root, A, variant.name)
        lost = {gid for gid, (score, top) in got.items()
                if gid.startswith("test_") and score < top}
        assert lost == variant.affected, variant.name

    # Feedback HTML for every student.
    for student in ["complete", "blank", "buggy", "demo_blank", "demo_buggy"]:
        assert (root / "feedback" / student / A / "toy.html").is_file(), student
    assert "Score: 1.5 / 2.0" in (root / "feedback" / "buggy" / A / "toy.html").read_text()

    # Score table: parts as rows in source order (max, * = manual), a column per student,
    # totals and pending count; it fits 100 columns.
    table = scores.score_table(root, A)
    assert max(len(line) for line in table.splitlines()) <= 100, table
    columns, maxima = _table_columns(table)
    assert list(maxima) == ["test_add_visible", "test_add_partial", "why_commutative",
                            "auto total", "manual pending"]
    assert list(maxima.values()) == ["1", "2", "1*", "3", ""]
    assert set(columns) == {"complete", "blank", "buggy", "demo_blank", "demo_buggy"}
    assert columns["complete"] == ["1", "2", "?", "3/3", "1"]
    assert columns["blank"] == ["0", "0", "0", "0/3", "0"]
    assert columns["buggy"] == ["1", "1.5", "?", "2.5/3", "1"]
    narrow = scores.score_table(root, A, width=40)  # students on pages
    assert max(len(line) for line in narrow.splitlines()) <= 40, narrow
    assert "(page 2/" in narrow and _table_columns(narrow)[0] == columns
    assert scores.main([A, "--root", str(root), "--students", "buggy", "nobody"]) == 0
    out = capsys.readouterr().out
    assert "2.5/3" in out and "no autograded submission: nobody" in out and "complete" not in out

    # demo.run: skips an assignment without examples; with one, grades its demo students only.
    assert demo.load_examples(root, A) is None
    demo.run(root)
    assert "no examples/toy.py: skipped" in capsys.readouterr().out
    (root / "examples").mkdir()
    (root / "examples" / "toy.py").write_text(
        "from grading.submissions import patch\n"
        "DEMO_SUBMISSIONS = {'demo_minus': lambda a: patch(a, 'add', 'a + b', 'a - b')}\n")
    before = (root / "submitted" / "complete" / A / "timestamp.txt").read_text()
    demo.run(root)
    out = capsys.readouterr().out
    assert "autograding demo_minus (1/1)" in out
    assert str(root / "feedback" / "demo_minus" / A / "toy.html") in out
    columns, _ = _table_columns(out[out.index(f"{A}: scores"):out.index(f"[{A}] feedback")])
    assert set(columns) == {"demo_minus"}
    assert columns["demo_minus"] == ["0", "0.5", "?", "0.5/3", "1"]  # only add(0, 0) is right
    assert (root / "submitted" / "complete" / A / "timestamp.txt").read_text() == before


def test_solution_answers_strip_markers_only(tmp_path):
    root = _course(tmp_path)
    assert solution_answers(root / "source" / A / "toy.ipynb") == {
        "add": 'def add(a, b):\n    """The sum of a and b."""\n    return a + b',
        "why_commutative": "Addition is commutative.",
    }


def test_fill_replaces_only_answers():
    nb = toy_notebook()
    filled = fill(nb, {"add": "def add(a, b):\n    return 0"})
    assert solution_cells(filled)["add"].source == "def add(a, b):\n    return 0"
    assert "BEGIN SOLUTION" in solution_cells(nb)["add"].source  # the input is not modified
    for before, after in zip(nb.cells, filled.cells):
        if before.metadata["nbgrader"]["grade_id"] != "add":
            assert before == after
    with pytest.raises(KeyError, match="nope"):
        fill(nb, {"nope": "x"})
    with pytest.raises(KeyError, match="test_add_visible"):  # a test cell is no answer
        fill(nb, {"test_add_visible": "pass"})


def test_patch_must_match_exactly_once():
    answers = {"add": "def add(a, b):\n    return a + b  # a + b"}
    with pytest.raises(ValueError, match="occurs 0 times"):
        patch(answers, "add", "a - b", "a + b")
    with pytest.raises(ValueError, match="occurs 2 times"):
        patch(answers, "add", "a + b", "a - b")
    with pytest.raises(KeyError):
        patch(answers, "sub", "a", "b")
    patched = patch(answers, "add", "return a + b", "return a - b")
    assert patched["add"].startswith("def add(a, b):\n    return a - b")
    assert answers["add"].endswith("return a + b  # a + b")  # the original is unchanged


def test_copy_course(tmp_path):
    dest = course.copy_course(tmp_path / "copy")
    assert (dest / "nbgrader_config.py").is_file()
    assert (dest / "grading" / "scores.py").is_file()
    assert not list(dest.rglob("__pycache__"))
    for name in ["submitted", "autograded", "feedback", "gradebook.db", ".venv"]:
        assert not (dest / name).exists()


def test_nbgrader_failure_raises(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text(CONFIG)
    with pytest.raises(RuntimeError, match="generate_assignment"):
        course.generate_release("does_not_exist", tmp_path)
