#!/usr/bin/env python
"""Wall time of ``nbgrader autograde``: the trusted grading path against the previous one, same run.

Run from the repository root (``.venv/bin`` on ``PATH``: nbgrader calls ``alembic`` from it)::

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_autograde.py     # about 30-40 min on 2 cores
    .venv/bin/python bench/bench_autograde.py --quick               # smoke test, L2A2 only
    .venv/bin/python bench/bench_autograde.py --batch 10 --repeats 1 --assignments L2A2_gradcam

Two scratch courses are built in a temporary folder, both sandboxed, both graded with the same
virtual environment: ``previous`` from the git revision ``--baseline`` (default
:data:`BASELINE_REF`, the last commit whose hidden tests ran inside the student's kernel, with
the in-kernel integrity seal), extracted with ``git archive``; ``trusted`` from this working
tree (test cells run in nbgrader's process, references cached). The course's own
``submitted/``, ``autograded/`` and ``gradebook.db`` are never touched. Every submission is the
release notebook filled with the instructor's answers (``grading.submissions.fill`` +
``solution_answers``), so every hidden check runs to the end.

What is measured (one timed call = one ``nbgrader autograde ASSIGNMENT --force`` subprocess,
through ``grading.course.nbgrader``: nbgrader's start-up, the gradebook, one grading kernel per
notebook and every test cell):

``per submission``
    One student of each assignment (``--student=s000``).
``batch``
    ``--batch`` students (default 20) of L2A2_gradcam graded by ONE ``nbgrader autograde`` call
    (no ``--student``), as an instructor grades a class; ``per sub`` is the call's time / N.

The two paths alternate (``bench.timing.measure``: interleaved, order reversed every other
round) and are repeated ``--repeats`` times; the median is reported. Per-submission rows run
``--warmup`` untimed rounds first (default 1: file caches filled, and the trusted path's
reference cache, which a class's first student fills, for both paths alike); the batch rows run
after them in the same scratch courses. After every timed call the gradebook is read: every
autograded cell of every graded student must have full marks, otherwise the benchmark stops.

Goal: trusted / previous <= 1.00 on every row.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.timing import Method, load_average, measure, table  # noqa: E402

ASSIGNMENTS = ("L2A1_feature_visualization", "L2A2_gradcam")
BATCH_ASSIGNMENT = "L2A2_gradcam"
GOAL = 1.00
DEFAULT_BATCH = 20
DEFAULT_REPEATS = 3
QUICK_BATCH = 3
NOISY = 0.25
TRUSTED, PREVIOUS = "trusted", "previous"
#: The last commit of the previous grading path (hidden tests in the student's kernel).
BASELINE_REF = "d1ff9e6"


@dataclass
class Row:
    """One measurement: ``n`` submissions of ``assignment`` graded by one call, each mode's
    samples (seconds per call)."""

    kind: str  # "per submission" or "batch"
    assignment: str
    n: int
    times: dict[str, list[float]] = field(default_factory=dict)

    def median(self, mode: str) -> float:
        return statistics.median(self.times[mode])

    @property
    def ratio(self) -> float:
        return self.median(TRUSTED) / self.median(PREVIOUS)

    @property
    def met(self) -> bool:
        return self.ratio <= GOAL

    @property
    def spread(self) -> float | None:
        """Widest (max - min) / median of the two modes; None with a single repeat."""
        if min(len(ts) for ts in self.times.values()) < 2:
            return None
        return max((max(ts) - min(ts)) / statistics.median(ts) for ts in self.times.values())


def student_ids(n: int) -> list[str]:
    return [f"s{i:03d}" for i in range(n)]


def notebook_name(root: Path, assignment: str) -> str:
    (path,) = sorted((Path(root) / "source" / assignment).glob("*.ipynb"))
    return path.name


def extract_baseline(ref: str, dest: Path) -> Path:
    """The course files of git revision ``ref`` of this repository, in ``dest``."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", ref], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def build_course(dest: Path, assignments: list[str], batch: int, source: Path = REPO_ROOT) -> Path:
    """A scratch course in ``dest`` copied from ``source``: releases regenerated, the
    instructor's answers submitted by ``s000`` for every assignment and by
    ``s000``..``s<batch-1>`` for the batch assignment."""
    import nbformat

    from grading import course
    from grading.submissions import fill, solution_answers

    root = course.copy_course(dest, source)
    for assignment in assignments:
        course.generate_release(assignment, root)
        name = notebook_name(root, assignment)
        release = nbformat.read(str(root / "release" / assignment / name), as_version=4)
        notebook = fill(release, solution_answers(root / "source" / assignment / name))
        students = student_ids(max(batch, 1) if assignment == BATCH_ASSIGNMENT else 1)
        for student in students:
            course.submit(root, student, assignment, notebook, name)
    return root


def check_full_marks(root: Path, assignment: str, students: list[str]) -> None:
    """Raise unless every autograded cell of every student has full marks in the gradebook."""
    from grading import scores

    auto = {p.grade_id for p in scores.graded_parts(root, assignment) if not p.manual}
    for student in students:
        got = scores.cell_scores(root, assignment, student)
        lost = {g: got.get(g) for g in auto if got.get(g) is None or got[g][0] != got[g][1]}
        if lost:
            raise RuntimeError(f"{assignment}/{student}: the instructor's answers lost points "
                               f"{lost}: grading is broken, timings would be meaningless")


def autograde_methods(roots: dict[str, Path], assignment: str, students: list[str] | None,
                      check_students: list[str]) -> list[Method]:
    """One Method per grading path: ``nbgrader autograde`` in that path's course (``--student``
    for each of ``students``; all submitted students when None), gradebook checked after the
    call (untimed). ``PYTHONPATH`` is cleared: each course's config puts its own root there."""
    from grading import course

    args = ["autograde", assignment, "--force"]
    if students is not None:
        args += [f"--student={s}" for s in students]

    def make(path: str) -> Method:
        root = roots[path]
        return Method(path, lambda: course.nbgrader(*args, root=root, env={"PYTHONPATH": ""}),
                      teardown=lambda: check_full_marks(root, assignment, check_students))

    return [make(TRUSTED), make(PREVIOUS)]


def measure_row(roots: dict[str, Path], kind: str, assignment: str, n: int, repeats: int, warmup: int) -> Row:
    students = student_ids(n)
    methods = autograde_methods(roots, assignment, None if kind == "batch" else students, students)
    return Row(kind, assignment, n, measure(methods, repeats, warmup))


def format_report(rows: list[Row], repeats: int) -> str:
    s = lambda x: f"{x:.1f}"  # noqa: E731
    header = ["measurement", "assignment", "N", "trusted s", "previous s", "trusted/prev",
              f"goal <={GOAL:.2f}", "trusted s/sub", "previous s/sub", "spread"]
    body = []
    for r in rows:
        sp = r.spread
        body.append([
            r.kind, r.assignment, str(r.n), s(r.median(TRUSTED)), s(r.median(PREVIOUS)),
            f"{r.ratio:.2f}x", "met" if r.met else "missed",
            s(r.median(TRUSTED) / r.n), s(r.median(PREVIOUS) / r.n),
            "-" if sp is None else f"{100 * sp:.0f}%" + (" (noisy)" if sp > NOISY else ""),
        ])
    missed = [f"{r.kind} {r.assignment}" for r in rows if not r.met]
    return "\n".join([
        f"nbgrader autograde wall time (median of {repeats} repeat(s), seconds per call)",
        table(header, body, left=2),
        "",
        f"Goal: trusted / previous <= {GOAL:.2f} on every row: "
        + ("met on all rows." if not missed else f"MISSED on {', '.join(missed)}."),
        "s/sub: seconds per submission (the call's time / N; per-submission rows: N = 1).",
        f"spread: widest (max - min) / median of the two modes over the repeats; above "
        f"{100 * NOISY:.0f}% the machine was busy and the row is unreliable ('-': one repeat).",
    ])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: 1 repeat, no warm-up, batch of {QUICK_BATCH}, "
                             f"{BATCH_ASSIGNMENT} only (unless given explicitly)")
    parser.add_argument("--batch", type=int, default=None, metavar="N",
                        help=f"students in the batch row (default {DEFAULT_BATCH}; "
                             f"{QUICK_BATCH} with --quick; 0: no batch row)")
    parser.add_argument("--repeats", type=int, default=None, metavar="R",
                        help=f"timed repeats per mode, median reported (default {DEFAULT_REPEATS};"
                             " 1 with --quick)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed rounds before each per-submission row (default 1; 0 with "
                             "--quick)")
    parser.add_argument("--baseline", default=BASELINE_REF, metavar="REF",
                        help=f"git revision of the previous grading path (default {BASELINE_REF})")
    parser.add_argument("--assignments", nargs="+", default=None, choices=ASSIGNMENTS,
                        metavar="A", help=f"per-submission rows for these (default: "
                                          f"{' '.join(ASSIGNMENTS)}; {BATCH_ASSIGNMENT} with "
                                          "--quick)")
    args = parser.parse_args(argv)
    if args.batch is None:
        args.batch = QUICK_BATCH if args.quick else DEFAULT_BATCH
    if args.repeats is None:
        args.repeats = 1 if args.quick else DEFAULT_REPEATS
    if args.warmup is None:
        args.warmup = 0 if args.quick else 1
    if args.assignments is None:
        args.assignments = [BATCH_ASSIGNMENT] if args.quick else list(ASSIGNMENTS)
    if args.repeats < 1 or args.batch < 0 or args.warmup < 0:
        parser.error("--repeats must be >= 1, --batch and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Offline machine: random weights (timings and full marks do not depend on them).
    os.environ.setdefault("INTERPKIT_ALLOW_RANDOM_WEIGHTS", "1")
    from importlib.metadata import version

    from grading.sandbox import probe

    probe(REPO_ROOT)  # raises with the reason when bubblewrap cannot build a sandbox here
    course_assignments = list(dict.fromkeys(
        args.assignments + ([BATCH_ASSIGNMENT] if args.batch else [])))
    print(f"nbgrader {version('nbgrader')}, {os.cpu_count()} logical cores, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset: 1 per grading kernel)')}"
          f", {'root' if os.geteuid() == 0 else 'non-root'}; "
          f"median of {args.repeats} repeat(s), {args.warmup} warm-up round(s) per "
          f"per-submission row; batch {args.batch}; previous path: {args.baseline}")
    load_start = load_average()
    print(f"load average (1 min) at start: {load_start}", flush=True)
    rows: list[Row] = []
    loads: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-autograde-") as tmp:
        start = time.perf_counter()
        baseline = extract_baseline(args.baseline, Path(tmp) / "baseline")
        roots = {TRUSTED: build_course(Path(tmp) / "trusted", course_assignments, args.batch),
                 PREVIOUS: build_course(Path(tmp) / "previous", course_assignments, args.batch, baseline)}
        print(f"  scratch courses built in {time.perf_counter() - start:.0f} s", flush=True)
        plan = [("per submission", a, 1, args.warmup) for a in args.assignments]
        if args.batch:
            plan.append(("batch", BATCH_ASSIGNMENT, args.batch, 0))
        for kind, assignment, n, warmup in plan:
            start = time.perf_counter()
            rows.append(measure_row(roots, kind, assignment, n, args.repeats, warmup))
            loads.append(load_average())
            print(f"  measured {kind} {assignment} N={n} in {time.perf_counter() - start:.0f} s "
                  f"(load {loads[-1]})", flush=True)
    print()
    print(format_report(rows, args.repeats))
    print(f"Machine load average (1 min) at start {load_start}, after each row "
          f"{', '.join(loads)}, on {os.cpu_count()} cores: other work beside the benchmark "
          "inflates the absolute times; the ratios, measured interleaved, are less affected.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
