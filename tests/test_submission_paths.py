"""Submission paths into the gradebook, through nbgrader itself, in scratch copies of the course:

- the exchange, as on a shared JupyterHub: release_assignment, a student's fetch_assignment and
  submit (from the student's own home folder), collect, autograde, generate_feedback;
- LMS uploads: a Canvas-style bulk-download zip, submission times added, zip_collect, autograde;
- the late policy (grading.late_policy): the late LMS submission loses exactly what the policy
  states, the on-time one nothing; penalties read from the gradebook.

One assignment (L2A2_gradcam) is enough: these paths do not depend on its content. Scores come
from the gradebook, never from exit codes.
"""
from __future__ import annotations

import csv
import zipfile
from datetime import datetime

import nbformat
import pytest
from nbgrader.api import Gradebook

from grading import course, exchange, late_policy, lms
from grading.scores import cell_scores
from grading.submissions import fill, solution_cells
from support import cell_ids, instructor_answers, release_notebook, source_notebook

ASSIGNMENT = "L2A2_gradcam"
NOTEBOOK = source_notebook(ASSIGNMENT).name          # L2A2_gradcam.ipynb
DUE = datetime(2030, 1, 10, 17, 0, 0)                # UTC
ON_TIME = datetime(2030, 1, 10, 16, 59, 59)          # 1 s before the due date
LATE = datetime(2030, 1, 12, 9, 30, 0)               # 40.5 h late: 2 started days, 20 %


def _full_submission():
    return fill(release_notebook(ASSIGNMENT), instructor_answers(ASSIGNMENT))


def _gradebook(root) -> Gradebook:
    return Gradebook(f"sqlite:///{(root / 'gradebook.db').resolve()}")


def _assert_full_auto_marks(root, student):
    scores = cell_scores(root, ASSIGNMENT, student)
    lost = {c: scores[c] for c in cell_ids(ASSIGNMENT, "test") if scores[c][0] != scores[c][1]}
    assert not lost, f"{student} lost points with the instructor's answers: {lost}"
    return scores


# --- naming, times and policy arithmetic (no grading) -------------------------------------------

def test_lms_names_map_to_student_notebook_and_time():
    collector = lms.LmsCollector()  # default named_regexp: lms.CANVAS_REGEXP, as configured
    cases = {
        "doejane_4242_998877_L2A2_gradcam.ipynb": ("4242", NOTEBOOK, None),
        "doejane_LATE_4242_998877_20300112T093000Z_L2A2_gradcam-1.ipynb":
            ("4242", NOTEBOOK, "20300112T093000Z"),
        "o_brien_pat_77_12_Copy of L2A2_gradcam (2)-3.ipynb": ("77", NOTEBOOK, None),
        # not a released name: kept recognisable, so zip_collect warns instead of renaming
        "doejane_4242_998877_scratch-2.ipynb": ("4242", "scratch.ipynb", None),
    }
    for name, (student, notebook, stamp) in cases.items():
        info = collector.collect(f"/any/extracted/submissions/{name}")
        assert (info["student_id"], info["file_id"], info.get("timestamp")) == \
            (student, notebook, stamp), name
    assert collector.collect("/x/doejane_4242_998877_report.pdf") is None      # not a notebook
    assert collector.collect("/x/L2A2_gradcam.ipynb") is None                  # no LMS fields
    assert lms.notebook_name("L2A2_gradcam-1.ipynb", ["L2A2_gradcam-1.ipynb"]) == \
        "L2A2_gradcam-1.ipynb"  # a released name is never shortened
    assert lms.canvas_filename("doejane", 4242, 998877, NOTEBOOK, late=True, submitted_at=LATE) \
        == "doejane_LATE_4242_998877_20300112T093000Z_L2A2_gradcam.ipynb"


def test_late_policy_arithmetic():
    day = late_policy.SECONDS_PER_DAY
    plugin = late_policy.PercentPerDayLate()
    assert (plugin.percent_per_day, plugin.max_percent) == (10.0, 50.0)
    expected = {0: 0.0, 1: 2.0, day: 2.0, day + 1: 4.0, 5 * day: 10.0, 30 * day: 10.0}
    for seconds, penalty in expected.items():   # of an earned score of 20 points
        assert plugin.late_submission_penalty("s", 20.0, seconds) == pytest.approx(penalty), seconds
    with pytest.raises(Exception, match="within"):
        late_policy.PercentPerDayLate(percent_per_day=-5)


# --- the exchange, as on a shared JupyterHub ----------------------------------------------------

def test_exchange_release_fetch_submit_collect_autograde_feedback(tmp_path):
    root = course.copy_course(tmp_path / "course")
    course.generate_release(ASSIGNMENT, root)
    xroot = exchange.create_exchange_root(root / "exchange")
    exchange.release_assignment(ASSIGNMENT, xroot, root)

    home = tmp_path / "home" / "alice"
    fetched = exchange.fetch_assignment(home, ASSIGNMENT, xroot)
    assert (fetched / NOTEBOOK).is_file()
    # A first, unchanged submission, then the real one: collect must take the newest.
    exchange.submit_assignment(home, ASSIGNMENT, xroot, student="alice")
    answered = fill(nbformat.read(fetched / NOTEBOOK, as_version=4), instructor_answers(ASSIGNMENT))
    nbformat.write(answered, fetched / NOTEBOOK)
    exchange.submit_assignment(home, ASSIGNMENT, xroot, student="alice")
    inbound = sorted((xroot / exchange.COURSE_ID / "inbound").glob(f"alice+{ASSIGNMENT}+*"))
    assert len(inbound) == 2, inbound

    exchange.collect(ASSIGNMENT, xroot, root)
    submitted = root / "submitted" / "alice" / ASSIGNMENT
    collected = nbformat.read(submitted / NOTEBOOK, as_version=4)
    assert {g: c.source for g, c in solution_cells(collected).items()} == \
        {g: c.source for g, c in solution_cells(answered).items()}, "collect took the old submission"
    assert (submitted / "timestamp.txt").read_text().strip().endswith("UTC")

    course.autograde(root, ASSIGNMENT)
    course.generate_feedback(root, ASSIGNMENT)
    _assert_full_auto_marks(root, "alice")
    html = root / "feedback" / "alice" / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")
    assert html.is_file() and "Score" in html.read_text()


# --- LMS uploads (zip_collect) and the late policy ----------------------------------------------

@pytest.fixture(scope="module")
def lms_course(tmp_path_factory):
    """A scratch course with a due date, one Canvas zip (on-time 4242, late 5151, plus files that
    must be skipped), times added from a CSV, zip_collect, then autograde. Returns the root and
    whether the gradebook knew any student before autograde."""
    tmp = tmp_path_factory.mktemp("lms")
    root = course.copy_course(tmp / "course")
    course.generate_release(ASSIGNMENT, root)
    late_policy.set_due_date(ASSIGNMENT, DUE, root)

    full = _full_submission()
    archive = lms.write_archive(tmp / "submissions.zip", {
        lms.canvas_filename("doejane", 4242, 998877, NOTEBOOK): full,
        lms.canvas_filename("smithjohn", 5151, 998878, "Copy of L2A2_gradcam-1.ipynb", late=True):
            full,
        lms.canvas_filename("leeanna", 6262, 998879, "notes.pdf"): b"%PDF-1.4",
        "stray.ipynb": nbformat.writes(full),
    })
    times = tmp / "times.csv"
    with open(times, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["user_id", "submitted_at"])
        writer.writerow(["4242", ON_TIME.isoformat() + "Z"])
        writer.writerow(["5151", "2030-01-12T10:30:00+01:00"])   # LATE, given in another zone
    assert lms.main(["stamp", str(archive), str(times)]) == 0

    lms.zip_collect(ASSIGNMENT, root, [archive])
    with _gradebook(root) as gb:
        known_before = [s.id for s in gb.students]
    course.autograde(root, ASSIGNMENT)
    return root, archive, known_before


def test_lms_zip_collect_maps_names_times_and_new_students(lms_course):
    root, archive, known_before = lms_course
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
    assert "doejane_4242_998877_20300110T165959Z_L2A2_gradcam.ipynb" in names, names
    assert "smithjohn_LATE_5151_998878_20300112T093000Z_Copy of L2A2_gradcam-1.ipynb" in names

    submitted = root / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == ["4242", "5151"]
    for student, when in (("4242", ON_TIME), ("5151", LATE)):
        folder = submitted / student / ASSIGNMENT
        assert sorted(p.name for p in folder.iterdir()) == [NOTEBOOK, "timestamp.txt"]
        assert (folder / "timestamp.txt").read_text() == f"{when:%Y-%m-%d %H:%M:%S}"

    assert known_before == [], "the test meant the students to be new to the gradebook"
    with _gradebook(root) as gb:
        assert sorted(s.id for s in gb.students) == ["4242", "5151"]
    for student in ("4242", "5151"):
        _assert_full_auto_marks(root, student)


def test_late_policy_penalises_late_submission_only(lms_course):
    root, _, _ = lms_course
    with _gradebook(root) as gb:
        assert gb.find_assignment(ASSIGNMENT).duedate == DUE
        on_time = gb.find_submission(ASSIGNMENT, "4242")
        late = gb.find_submission(ASSIGNMENT, "5151")
        assert on_time.total_seconds_late == 0
        assert not on_time.late_submission_penalty                  # None or 0: no penalty
        assert late.total_seconds_late == (LATE - DUE).total_seconds() == 40.5 * 3600
        (notebook,) = late.notebooks
        earned = notebook.score
        penalty = late.late_submission_penalty
        assert notebook.late_submission_penalty == penalty

    auto_total = sum(s for s, _ in cell_scores(root, ASSIGNMENT, "5151").values() if s)
    assert earned == pytest.approx(auto_total) and earned > 0
    # The stated policy: 10 % of the earned score per started day late, at most 50 %.
    assert penalty == pytest.approx(0.20 * earned), (penalty, earned)
