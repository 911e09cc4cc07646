#!/usr/bin/env python
"""Serial ``nbgrader autograde`` against ``grading.grade_all`` on two Dask workers, same run.

Run from the repository root (``.venv/bin`` on ``PATH``: nbgrader calls ``alembic`` from it)::

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_grade_all.py        # about 10-12 min, 2 cores
    .venv/bin/python bench/bench_grade_all.py --batch 2 --modes process   # smoke test

One scratch course (copied from this working tree, sandbox on, SQLite gradebook) gets ``--batch``
submissions of L2A2_gradcam (default 20), each the release filled with the instructor's answers
(so every hidden check runs to the end). One untimed ``nbgrader autograde --student=s000`` fills
the reference cache on disk first, as a class's first student does. Then each method grades
the whole batch with ``--force``, one after the other, in this order:

``serial``
    ``nbgrader autograde L2A2_gradcam --force``: one process grades the class, one notebook
    after the other (nbgrader's own way; its start-up paid once).
``process``
    ``python -m grading.grade_all L2A2_gradcam --force --workers W`` (default W = 2): a
    LocalCluster of W process workers, each grading in its own long-lived process (torch, the
    checks and their cases imported and built once per worker). Cluster start-up included.
``subprocess``
    The same with ``--mode subprocess``: each student is one ``nbgrader autograde --student``
    command (nbgrader's, torch's and the checks' start-up paid per student).

One timed call each (a whole class is long; the ratio is measured within one run, on the same
machine state). After every call the gradebook is read: every autograded cell of every student
must have full marks, otherwise the benchmark stops. Reported: wall time, seconds per
submission, and serial time / method time (the speed-up). Goal: at least 1.7x for ``process``
on 2 workers.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.bench_autograde import (  # noqa: E402
    BATCH_ASSIGNMENT, build_course, check_full_marks, student_ids)
from bench.timing import load_average, table  # noqa: E402

ASSIGNMENT = BATCH_ASSIGNMENT
GOAL = 1.7
DEFAULT_BATCH = 20
DEFAULT_WORKERS = 2
MODES = ("process", "subprocess")
SERIAL = "serial"


def _env() -> dict[str, str]:
    """The environment of every timed command: this interpreter's bin/ first on PATH, the
    course's own root on PYTHONPATH (set by its config), the default SQLite gradebook."""
    env = dict(os.environ, PYTHONPATH="")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("INTERP_GRADEBOOK_URL", None)
    return env


def grade_serial(root: Path) -> float:
    """Seconds of ``nbgrader autograde ASSIGNMENT --force`` (the whole class, one process)."""
    from grading import course

    start = time.perf_counter()
    course.nbgrader("autograde", ASSIGNMENT, "--force", root=root, env={"PYTHONPATH": ""})
    return time.perf_counter() - start


def grade_parallel(root: Path, workers: int, mode: str) -> float:
    """Seconds of ``python -m grading.grade_all ASSIGNMENT --force`` on a LocalCluster of
    ``workers`` process workers (started and stopped inside the timed call)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "grading.grade_all", ASSIGNMENT, "--force",
                           "--workers", str(workers), "--mode", mode, "--no-progress"],
                          cwd=root, env=_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"grade_all --mode {mode} failed (exit {proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds


def format_report(times: dict[str, float], n: int, workers: int) -> str:
    """The results table (fits 100 columns) and the verdict on the goal."""
    serial = times[SERIAL]
    names = {SERIAL: "nbgrader autograde (serial)",
             "process": f"grade_all, {workers} workers, in-process",
             "subprocess": f"grade_all, {workers} workers, subprocess"}
    rows = []
    for method, seconds in times.items():
        speedup = serial / seconds
        goal = "" if method != "process" else ("met" if speedup >= GOAL else "MISSED")
        rows.append([names[method], str(n), f"{seconds:.1f}", f"{seconds / n:.1f}",
                     f"{speedup:.2f}x", goal])
    header = ["method", "N", "wall s", "s/sub", "speed-up", f"goal >={GOAL:g}x"]
    lines = [f"Grading {n} submissions of {ASSIGNMENT} (seconds per whole batch, one call each)",
             table(header, rows, left=1), "",
             "speed-up: serial wall time / this method's wall time, measured in the same run."]
    if "process" in times:
        speedup = serial / times["process"]
        lines.append(f"Goal: grade_all on {workers} workers at least {GOAL:g}x faster than serial: "
                     + ("met" if speedup >= GOAL else f"MISSED ({speedup:.2f}x)") + ".")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, metavar="N",
                        help=f"submissions (default {DEFAULT_BATCH})")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, metavar="W",
                        help=f"Dask process workers (default {DEFAULT_WORKERS})")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES,
                        help="grade_all modes to time besides serial (default: both)")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.workers < 1:
        parser.error("--batch and --workers must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("INTERPKIT_ALLOW_RANDOM_WEIGHTS", "1")
    from importlib.metadata import version

    from grading import course
    from grading.sandbox import probe

    probe(REPO_ROOT)
    print(f"nbgrader {version('nbgrader')}, dask {version('distributed')}, {os.cpu_count()} "
          f"logical cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}; "
          f"batch {args.batch}, {args.workers} workers; load average (1 min) at start "
          f"{load_average()}", flush=True)
    students = student_ids(args.batch)
    times: dict[str, float] = {}
    loads = []
    with tempfile.TemporaryDirectory(prefix="bench-grade-all-") as tmp:
        root = build_course(Path(tmp) / "course", [ASSIGNMENT], args.batch)
        start = time.perf_counter()
        course.nbgrader("autograde", ASSIGNMENT, "--student=s000", root=root,
                        env={"PYTHONPATH": ""})  # the reference cache, filled once (untimed)
        print(f"  reference cache filled in {time.perf_counter() - start:.0f} s", flush=True)
        plan = [(SERIAL, lambda: grade_serial(root))] + [
            (mode, lambda m=mode: grade_parallel(root, args.workers, m)) for mode in args.modes]
        for method, call in plan:
            times[method] = call()
            check_full_marks(root, ASSIGNMENT, students)
            loads.append(load_average())
            print(f"  {method}: {times[method]:.1f} s (load {loads[-1]})", flush=True)
    print()
    print(format_report(times, args.batch, args.workers))
    print(f"Load average (1 min) after each method: {', '.join(loads)} on {os.cpu_count()} cores "
          "(other work on the machine slows every method; the parallel ones most).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
