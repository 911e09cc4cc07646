"""``python -m grading.grade_all`` (``make grade``) on the toy course of test_grading_tools: what
needs grading, a run really killed and started again, a resubmission, ``--force``, a failure
retried once and reported, and the refusals. The trusted grading of the real course in parallel,
compared with serial grading, is tests/test_grade_all_equivalence.py."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest

from grading import course, grade_all, gradebook, scores
from grading.submissions import patch, solution_answers
from test_grading_tools import A, _course

ROOT = Path(__file__).resolve().parents[1]
NB = "toy.ipynb"
#: Every call of this student's ``add`` sleeps: a notebook takes a few seconds, long enough to
#: kill a run in the middle.
SLOW = ("add", "return a + b", "import time\n    time.sleep(0.6)\n    return a + b")
STUDENTS = [f"s{i}" for i in range(6)]


def _stamp(when: datetime) -> str:
    return when.strftime(course.TIMESTAMP_FORMAT)


def _toy(tmp_path: Path, students=STUDENTS, slow: bool = True) -> Path:
    (tmp_path / "toy").mkdir()
    root = _course(tmp_path / "toy")
    course.generate_release(A, root)
    release = nbformat.read(str(root / "release" / A / NB), as_version=4)
    answers = solution_answers(root / "source" / A / NB)
    if slow:
        answers = patch(answers, *SLOW)
    from grading.submissions import fill

    for student in students:
        course.submit(root, student, A, fill(release, answers), NB,
                      _stamp(datetime(2030, 1, 1, tzinfo=timezone.utc)))
    return root


def _cli(root: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.Popen([sys.executable, "-m", "grading.grade_all", A, "--root", str(root),
                             "--workers", "2", "--no-progress", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def _autograded(root: Path, student: str) -> Path:
    return root / "autograded" / student / A / NB


def _state(root: Path) -> dict[str, int]:
    """mtime (ns) of each finished student's autograded notebook."""
    return {s: _autograded(root, s).stat().st_mtime_ns for s in STUDENTS
            if grade_all.finished(root, A, s)}


def _rows(out: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split()[1:] for line in out.splitlines()
            if line.split() and line.split()[0] in STUDENTS + ["broken"]}


def test_plan_decides_from_folders_timestamps_and_the_gradebook(tmp_path):
    root = _toy(tmp_path, students=["new", "done", "partial", "resubmitted", "lost", "killed"],
                slow=False)
    url = gradebook.db_url(root)
    course.autograde(root, A, ["done", "partial", "resubmitted", "lost", "killed"])
    # a run killed while executing `killed`'s notebook: nbgrader had written the sanitized
    # notebook, grade_student's marker is still there
    marker = grade_all.running_marker(root, A, "killed")
    marker.parent.mkdir(parents=True)
    marker.write_text("host:1 2030-01-01T00:00:00+00:00\n")
    # a run killed while grading `partial`: nbgrader had copied the files, not the notebook yet
    _autograded(root, "partial").unlink()
    # `resubmitted` submitted again after grading
    later = _stamp(datetime(2030, 1, 2, tzinfo=timezone.utc))
    (root / "submitted" / "resubmitted" / A / "timestamp.txt").write_text(later)
    # `lost` has an autograded notebook but no submission in this gradebook
    with gradebook.open_gradebook(url) as gb:
        gb.remove_submission(A, "lost")
    todos = {t.student: t for t in grade_all.plan(root, A, url)}
    assert {s: (t.reason, t.force) for s, t in todos.items()} == {
        "done": (grade_all.UP_TO_DATE, False), "lost": (grade_all.UNFINISHED, True),
        "new": (grade_all.NEW, False), "partial": (grade_all.UNFINISHED, True),
        "killed": (grade_all.UNFINISHED, True),
        "resubmitted": (grade_all.RESUBMITTED, False)}
    assert all(t.reason == grade_all.FORCED and t.force for t in grade_all.plan(root, A, url, force=True))
    assert [t.student for t in grade_all.plan(root, A, url, students=["done"])] == ["done"]


def test_killed_run_resumes_then_resubmission_then_force_and_a_failure(tmp_path):
    root = _toy(tmp_path)

    # 1. A run killed (SIGKILL to the driver, its workers and their kernels) once some
    #    students are done.
    proc = _cli(root)
    deadline = time.monotonic() + 240
    while len(_state(root)) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    out = proc.communicate(timeout=60)[0]
    done = _state(root)
    assert 2 <= len(done) < len(STUDENTS), f"kill came too late or too early: {done}\n{out}"
    before = {s: scores.cell_scores(root, A, s) for s in done}

    # 2. Started again: only what is missing is graded; what finished is left as it was.
    code, out = _finish(_cli(root))
    assert code == 0, out
    assert f"{len(STUDENTS)} submitted, {len(STUDENTS) - len(done)} to grade" in out, out
    rows = _rows(out)
    for student in STUDENTS:
        status = rows[student][0]
        assert status == ("skipped" if student in done else "graded"), (student, out)
    after = _state(root)
    assert set(after) == set(STUDENTS)
    assert {s: after[s] for s in done} == done, "a finished student was regraded"
    assert {s: scores.cell_scores(root, A, s) for s in done} == before
    assert all(rows[s][-2] == "3/3" for s in STUDENTS), out

    # 3. One student resubmits (a newer timestamp): only that one is graded again.
    again = sorted(done)[0]
    (root / "submitted" / again / A / "timestamp.txt").write_text(
        _stamp(datetime(2030, 1, 1, tzinfo=timezone.utc) + timedelta(hours=1)))
    code, out = _finish(_cli(root))
    assert code == 0, out
    rows = _rows(out)
    assert rows[again][:2] == ["graded", "resubmitted"], out
    assert all(rows[s][0] == "skipped" for s in STUDENTS if s != again), out
    stamp = (root / "autograded" / again / A / "timestamp.txt").read_text()
    assert stamp.startswith("2030-01-01 01:00:00"), stamp

    # 4. --force regrades everyone; an unreadable notebook fails, is retried once with force,
    #    and is reported with the reason (exit status 1). The others are graded.
    broken = root / "submitted" / "broken" / A
    broken.mkdir(parents=True)
    (broken / NB).write_text('{"cells": [')
    code, out = _finish(_cli(root, "--force"))
    assert code == 1, out
    rows = _rows(out)
    assert all(rows[s][:3] == ["graded", "forced", "1"] for s in STUDENTS), out
    assert rows["broken"][:3] == ["failed", "forced", "2"], out
    reason = next(line for line in out.splitlines() if line.strip().startswith("reason:"))
    assert "NotJSONError" in reason or "JSON" in reason, out
    assert "1 failed" in out
    assert (root / grade_all.LOG_DIR / A / "broken.log").is_file()
    assert max(len(line) for line in out.splitlines()) <= 100, out


def test_refusals(tmp_path, capsys):
    root = _course(tmp_path)
    # SQLite with an external cluster: refused before connecting, pointing to PostgreSQL.
    assert grade_all.main([A, "--root", str(root), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "PostgreSQL" in err and gradebook.DB_URL_ENV in err
    # An assignment the gradebook does not know.
    assert grade_all.main([A, "--root", str(root)]) == 2
    assert "nbgrader generate_assignment toy" in capsys.readouterr().err
    with pytest.raises(ValueError, match="mode"):
        grade_all.run(root, A, mode="threads")


def test_error_reason_keeps_what_matters():
    log = ("[INFO] Sanitizing x\n[ERROR] There was an error processing assignment: x\n"
           "[ERROR] Traceback (most recent call last):\n  File \"a.py\", line 1\n"
           "nbformat.reader.NotJSONError: Notebook does not appear to be JSON: '{\"cells\": ['\n"
           "[ERROR] Please see the the above traceback for details on the specific errors\n")
    reason = grade_all._error_reason({"success": False, "log": log,
                                      "error": "Traceback...\nnbgrader.converters.base.NbGraderException: x"})
    assert reason == "nbformat.reader.NotJSONError: Notebook does not appear to be JSON: '{\"cells\": ['"


@pytest.mark.parametrize("preset, expected", [(None, "1"), ("2", "2")])
def test_workers_share_the_cores_unless_the_instructor_chose(preset, expected):
    code = ("import os, torch\nfrom grading.grade_all import share_cores\n"
            "n = share_cores(1)\nprint(n, os.environ['OMP_NUM_THREADS'], torch.get_num_threads())")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if preset:
        env["OMP_NUM_THREADS"] = preset
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=Path(__file__).parents[1],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [expected, expected, expected]
