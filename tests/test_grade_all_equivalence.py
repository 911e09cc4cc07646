"""Parallel grading gives the same results as serial grading: one mixed batch of L2A2 (correct,
blank, buggy and hostile submissions), with the trusted grading and the sandbox, graded four ways
in the same scratch course:

1. serially: ``nbgrader autograde`` (one call for the class) and ``nbgrader generate_feedback``,
   SQLite gradebook;
2. ``python -m grading.grade_all`` on its embedded LocalCluster (two process workers), SQLite;
3. the same on PostgreSQL (a fresh database on the real local server, ``make postgres``);
4. on a real ``dask scheduler`` with two ``dask worker`` processes over TCP on localhost,
   PostgreSQL.

Every cell's score and every student's feedback HTML are compared across the four ways. The
batch is small on purpose: each notebook costs 10-15 s of CPU.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from grading import course, gradebook, scores
from grading.submissions import fill, solution_answers
from support_pg import fresh_database
from test_bad_submissions import CASES, _write_submission

A = "L2A2_gradcam"
NB = f"{A}.ipynb"
BIN = Path(sys.executable).parent
#: The hostile student writes into the correct student's folders (it must not get there).
HOSTILE = next(c for c in CASES if c.name == "writes_other_student")


def _build(root: Path) -> list[str]:
    """The batch: ok_1 (the instructor's answers), blank, buggy (three planted bugs, the demo's),
    and the hostile one."""
    sys.path.insert(0, str(root))
    from examples.L2A2_gradcam import DEMO_SUBMISSIONS

    release = nbformat.read(str(root / "release" / A / NB), as_version=4)
    answers = solution_answers(root / "source" / A / NB)
    stamp = "2030-01-01 12:00:00.000000 UTC"
    course.submit(root, "ok_1", A, fill(release, answers), NB, stamp)
    course.submit(root, "blank", A, release, NB, stamp)
    course.submit(root, "buggy", A, fill(release, DEMO_SUBMISSIONS["demo_buggy"](dict(answers))), NB, stamp)
    _write_submission(root, HOSTILE.name, HOSTILE)
    return ["ok_1", "blank", "buggy", HOSTILE.name]


def _env(url: str | None) -> dict[str, str]:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", PYTHONPATH="")
    env.pop(gradebook.DB_URL_ENV, None)
    if url:
        env[gradebook.DB_URL_ENV] = url
    return env


def _grade_all(root: Path, url: str | None, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "grading.grade_all", A, "--force", "--feedback",
                           "--no-progress", *args], cwd=root, env=_env(url), capture_output=True,
                          text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _test_cell_feedback(root: Path, student: str) -> dict:
    """What the feedback shows of every test cell (the reports the grader wrote), read from the
    autograded notebook the feedback page is made of. The student's own cells are left out: the
    order in which their kernel's stdout and stderr chunks arrive was seen to differ between two
    gradings of the same notebook, and none of it is graded."""
    nb = nbformat.read(root / "autograded" / student / A / f"{A}.ipynb", as_version=4)
    return {c.metadata.nbgrader["grade_id"]: [(o.get("output_type"), o.get("name"), o.get("text"),
                                               o.get("ename"), o.get("evalue"),
                                               (o.get("data") or {}).get("text/plain")) for o in c.outputs]
            for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}


def _collect(root: Path, url: str, students: list[str]) -> dict:
    """Scores from the gradebook and feedback of every student; then autograded/ and feedback/
    are removed for the next way."""
    result = {"scores": {s: scores.cell_scores(root, A, s, url=url) for s in students},
              "feedback": {s: _test_cell_feedback(root, s) for s in students}}
    for s in students:
        assert (root / "feedback" / s / A / f"{A}.html").is_file(), f"no feedback page for {s}"
    for problem in HOSTILE.check(root):
        raise AssertionError(f"{HOSTILE.name}: {problem}")
    shutil.rmtree(root / "autograded")
    shutil.rmtree(root / "feedback")
    return result


def _postgres_course(root: Path) -> tuple[str, callable]:
    """A fresh PostgreSQL gradebook that knows the assignment (nbgrader generate_assignment)."""
    url, drop = fresh_database()
    course.nbgrader("generate_assignment", A, "--force", root=root, env={gradebook.DB_URL_ENV: url})
    return url, drop


def _start_cluster(root: Path, tmp: Path) -> tuple[str, list[subprocess.Popen]]:
    """``dask scheduler`` and two ``dask worker`` processes (one thread each) on 127.0.0.1,
    started from the course root (the workers import its grading package)."""
    info = tmp / "scheduler.json"
    env = _env(None)
    env["PYTHONPATH"] = str(root)
    logs = [open(tmp / f"{name}.log", "w") for name in ("scheduler", "worker1", "worker2")]
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(info)],
                              cwd=root, env=env, stdout=logs[0], stderr=subprocess.STDOUT)]
    deadline = time.monotonic() + 120
    while not info.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    address = json.loads(info.read_text())["address"]
    assert address.startswith("tcp://127.0.0.1:"), address
    for log in logs[1:]:
        procs.append(subprocess.Popen(
            [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--nworkers", "1",
             "--no-dashboard", "--memory-limit", "0"], cwd=root, env=env, stdout=log,
            stderr=subprocess.STDOUT))
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=120)
    return address, procs


def test_serial_localcluster_and_dask_cluster_on_sqlite_and_postgres_agree(tmp_path):
    root = course.copy_course(tmp_path / "course")
    course.generate_release(A, root)
    students = _build(root)
    sqlite = gradebook.default_url(root)
    ways = {}

    course.nbgrader("autograde", A, "--force", root=root, env=_env(None))
    course.generate_feedback(root, A)
    ways["serial, SQLite"] = _collect(root, sqlite, students)

    out = _grade_all(root, None, "--workers", "2")
    assert "LocalCluster, 2 process worker(s)" in out and "4 graded, 0 failed" in out, out
    ways["LocalCluster, SQLite"] = _collect(root, sqlite, students)

    url, drop = _postgres_course(root)
    try:
        out = _grade_all(root, url, "--workers", "2")
        assert "postgresql+psycopg" in out and "4 graded, 0 failed" in out, out
        ways["LocalCluster, PostgreSQL"] = _collect(root, url, students)
    finally:
        drop()

    url, drop = _postgres_course(root)
    address, procs = _start_cluster(root, tmp_path)
    try:
        out = _grade_all(root, url, "--scheduler", address)
        assert f"grading on {address}" in out and "4 graded, 0 failed" in out, out
        ways["dask scheduler + 2 workers (TCP), PostgreSQL"] = _collect(root, url, students)
    finally:
        for proc in procs[::-1]:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
        drop()

    # The batch means something: full marks, zeros, losses where the bugs are.
    reference = ways["serial, SQLite"]["scores"]
    tests = [p.grade_id for p in scores.graded_parts(root, A) if not p.manual]
    assert all(reference["ok_1"][t][0] == reference["ok_1"][t][1] for t in tests)
    assert all(reference["blank"][t][0] == 0 for t in tests)
    assert any(reference["buggy"][t][0] < reference["buggy"][t][1] for t in tests)
    assert all(reference[HOSTILE.name][t][0] == reference[HOSTILE.name][t][1] for t in tests)

    first = next(iter(ways))
    for name, way in ways.items():
        for student in students:
            assert way["scores"][student] == ways[first]["scores"][student], (name, student)
            assert way["feedback"][student] == ways[first]["feedback"][student], (
                f"{name}: feedback of {student} differs from {first}")
