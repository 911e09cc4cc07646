"""Grade a whole class in parallel: one Dask task per student, each one nbgrader autograde.

``python -m grading.grade_all ASSIGNMENT [--workers N] [--scheduler ADDRESS] [--force]
[--feedback] [--students S ...] [--mode process|subprocess] [--root PATH]``
(``make grade A=ASSIGNMENT``) autogrades every submitted student of ASSIGNMENT that needs it:

- **Where**: by default on an embedded Dask ``LocalCluster`` of ``--workers`` process workers
  (default: one per core), one thread each; nothing to start. With ``--scheduler
  tcp://HOST:8786``, on an existing Dask cluster whose workers see the course folder at the
  same path and import this course's ``grading`` package (start them from the course root:
  ``dask worker tcp://HOST:8786 --nthreads 1``). Such a cluster needs a PostgreSQL gradebook
  (:mod:`grading.gradebook`): SQLite is refused there.
- **How**: each task is nbgrader's own autograde of one student (``NbGraderAPI.autograde``, the
  code behind ``nbgrader autograde A --student=S``), with the course's ``nbgrader_config.py``
  loaded the way the ``nbgrader`` command loads it: the same sandbox, trusted test execution,
  intake, rebuild and review flags. ``--mode process`` (default) grades in the worker's own
  long-lived process, so torch, the checks and their cases are imported and built once per
  worker, not once per student; ``--mode subprocess`` runs the ``nbgrader autograde`` command
  per student instead (same result, pays nbgrader's and torch's start-up every time; see
  ``bench/bench_grade_all.py``). ``--feedback`` also writes each graded student's feedback.
- **What you see**: a progress bar with an ETA (stderr), then one row per student (status,
  tries, seconds, autograded score from the gradebook, written answers pending) and a summary.
  A failed student is retried once (``force``), then reported with the reason; the exit status
  is 1 when a student could not be graded.
- **Interrupted runs**: which students need grading is decided before anything runs
  (:func:`plan`): those never autograded, those whose autograde did not finish (a try that
  started and never succeeded leaves ``.grade-all/<A>/<student>.running``; a notebook missing
  in ``autograded/``; no submission in the gradebook), and those who resubmitted
  since (``submitted/.../timestamp.txt`` newer than ``autograded/.../timestamp.txt``: nbgrader's
  own comparison in ``init_destination``). Everyone else is left alone: a killed run started
  again never regrades or loses what finished. ``--force`` regrades everyone.

Scores are read from the gradebook, never from exit statuses (nbgrader exits 0 when every test
fails).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import logging
import os
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from grading import gradebook
from grading.course import COURSE_ROOT
from grading.scores import _middle

#: Why a student is graded (or not), as :func:`plan` decides.
NEW, UNFINISHED, RESUBMITTED, FORCED, UP_TO_DATE = (
    "new", "unfinished", "resubmitted", "forced", "up to date")
MODES = ("process", "subprocess")
#: Tries per student: the first, then one retry.
TRIES = 2
#: Width of every table this module prints.
WIDTH = 100
#: This tool's folder in the course root: ``<assignment>/<student>.log`` (nbgrader's log of the
#: student's latest try), ``<assignment>/<student>.running`` (present from the start of a try
#: until it succeeded: a killed run leaves it behind) and ``workers/`` (what the local
#: cluster's workers and their kernels print).
LOG_DIR = ".grade-all"


# --------------------------------------------------------------------------- what to grade
@dataclass(frozen=True)
class Todo:
    """One student's submission and what to do with it: ``force`` is nbgrader's ``--force``
    (needed to redo an unfinished one, whose folder nbgrader would otherwise skip)."""
    student: str
    reason: str
    force: bool

    @property
    def grade(self) -> bool:
        return self.reason != UP_TO_DATE


def submitted_students(root: Path | str, assignment: str) -> list[str]:
    """Students with a notebook in ``submitted/<student>/<assignment>/``, as nbgrader's
    autograde finds them, sorted."""
    base = Path(root) / "submitted"
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir()
                  if p.is_dir() and any((p / assignment).glob("*.ipynb")))


def release_notebooks(root: Path | str, assignment: str) -> set[str]:
    """The notebook names (without ``.ipynb``) of ``release/<assignment>/``."""
    return {p.stem for p in (Path(root) / "release" / assignment).glob("*.ipynb")}


def _timestamp(folder: Path):
    """nbgrader's reading of ``folder/timestamp.txt`` (None when absent or unreadable)."""
    from nbgrader.coursedir import CourseDirectory

    try:
        return CourseDirectory().get_existing_timestamp(str(folder))
    except (SystemExit, Exception):  # noqa: BLE001 - nbgrader exits on a malformed timestamp
        return None


def running_marker(root: Path | str, assignment: str, student: str) -> Path:
    """The file that says a try of this student's grading started and has not succeeded."""
    return Path(root) / LOG_DIR / assignment / f"{student}.running"


def finished(root: Path | str, assignment: str, student: str,
             release: set[str] | None = None) -> bool:
    """Whether the student's autograde finished: no try of :func:`grade_student` is marked as
    started and unfinished, and ``autograded/<student>/<assignment>/`` holds every notebook
    nbgrader writes for this submission (the released ones the student submitted; all of them
    when the student's notebook was renamed and is graded under the released name).

    The marker matters: nbgrader writes the sanitized notebook into ``autograded/`` before it
    executes it, so a notebook file there alone does not say that grading finished."""
    root = Path(root)
    if running_marker(root, assignment, student).exists():
        return False
    release = release_notebooks(root, assignment) if release is None else release
    submitted = {p.stem for p in (root / "submitted" / student / assignment).glob("*.ipynb")}
    expected = (submitted & release) or release
    folder = root / "autograded" / student / assignment
    return bool(expected) and all((folder / f"{name}.ipynb").is_file() for name in expected)


def graded_in_gradebook(url: str, assignment: str) -> set[str]:
    """Students with a submission of ``assignment`` in the gradebook at ``url``."""
    from nbgrader.api import MissingEntry

    if not gradebook.exists(url):
        return set()
    with gradebook.open_gradebook(url) as gb:
        try:
            return {s.student.id for s in gb.find_assignment(assignment).submissions}
        except MissingEntry:
            return set()


def plan(root: Path | str, assignment: str, url: str, force: bool = False,
         students: list[str] | None = None) -> list[Todo]:
    """What each submitted student (or each of ``students``) needs, in student order:

    - ``forced``: ``force`` was asked (nbgrader's ``--force``);
    - ``new``: never autograded (no ``autograded/<student>/<assignment>/``);
    - ``unfinished``: a try started and did not succeed (a killed run: see :func:`finished`), a
      notebook is missing, or the gradebook has no submission (another gradebook): regraded
      with ``--force``;
    - ``resubmitted``: the submission's timestamp is newer than the autograded one (nbgrader's
      own comparison; nbgrader regrades it without ``--force``);
    - ``up to date``: left alone.
    """
    root = Path(root)
    release = release_notebooks(root, assignment)
    in_gradebook = graded_in_gradebook(url, assignment)
    todos = []
    for student in (students if students is not None else submitted_students(root, assignment)):
        dest = root / "autograded" / student / assignment
        if force:
            todos.append(Todo(student, FORCED, True))
        elif not dest.exists():
            todos.append(Todo(student, NEW, False))
        elif not finished(root, assignment, student, release) or student not in in_gradebook:
            todos.append(Todo(student, UNFINISHED, True))
        else:
            new = _timestamp(root / "submitted" / student / assignment)
            old = _timestamp(dest)
            if new is not None and old is not None and new > old:
                todos.append(Todo(student, RESUBMITTED, False))
            else:
                todos.append(Todo(student, UP_TO_DATE, False))
    return todos


# --------------------------------------------------------------------------- one student
@dataclass
class Outcome:
    """What one try of one student gave. ``graded``: nbgrader succeeded and every autograded
    notebook is there; ``reason``: why not (nbgrader's error, or the exception)."""
    student: str
    graded: bool
    seconds: float
    reason: str = ""
    worker: str = ""
    log: str = field(default="", repr=False)


#: Per worker process: course root and gradebook URL -> nbgrader's API with the course config.
_APIS: dict[tuple[str, str], object] = {}
#: One grading at a time per process (nbgrader changes the working directory and environment).
_PROCESS_LOCK = threading.Lock()


def load_api(root: str, url: str):
    """nbgrader's :class:`~nbgrader.apps.NbGraderAPI` configured exactly as the ``nbgrader
    autograde`` command is in ``root``: nbgrader's own app loads the Jupyter config paths and the
    course's ``nbgrader_config.py`` (which runs as it does under ``nbgrader autograde``: its
    sandbox check refuses when bubblewrap cannot run). Made once per worker process."""
    key = (root, url)
    if key in _APIS:
        return _APIS[key]
    from nbgrader.apps import NbGraderAPI
    from nbgrader.apps.autogradeapp import AutogradeApp

    os.environ[gradebook.DB_URL_ENV] = url
    bin_dir = str(Path(sys.executable).parent)  # nbgrader calls `alembic` from PATH
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    saved_argv, saved_cwd, err = sys.argv, os.getcwd(), io.StringIO()
    try:
        os.chdir(root)
        sys.argv = ["nbgrader", "autograde"]  # what the config's checks look for
        with contextlib.redirect_stderr(err):
            app = AutogradeApp()
            app.initialize([])
    except BaseException as exc:  # noqa: BLE001 - the config exits with SystemExit(2)
        raise RuntimeError(f"nbgrader_config.py in {root} refused to grade: "
                           f"{err.getvalue().strip() or exc!r}") from None
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
    api = NbGraderAPI(config=app.config)
    # nbgrader's log goes into each outcome (capture_log), not onto the driver's terminal.
    logger = logging.getLogger(f"{__name__}.nbgrader")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    api.log = logger
    _APIS[key] = api
    return api


def _error_reason(result: dict) -> str:
    """The most telling words of a failed nbgrader call: each ERROR record of its log (a
    traceback by its last line), without nbgrader's generic closing lines, then the exception."""
    generic = ("Please see the", "There was an error processing")
    records: list[list[str]] = []
    for line in (result.get("log") or "").splitlines():
        if line.startswith("[") and "] " in line[:12]:
            records.append([line])
        elif records:
            records[-1].append(line)
    found = []
    for record in records:
        if not record[0].startswith("[ERROR]"):
            continue
        text = [ln.strip() for ln in record if ln.strip()]
        text[0] = text[0].replace("[ERROR] ", "", 1)
        found.append(text[-1] if text[0].startswith("Traceback") else text[0])
    trace = [ln for ln in (result.get("error") or "").strip().splitlines() if ln.strip()]
    if trace and "NbGraderException" not in trace[-1]:
        found.append(trace[-1].strip())
    reason = "; ".join(dict.fromkeys(r for r in found if r and not any(g in r for g in generic)))
    return reason or "nbgrader reported a failure without a message"


def grade_student(root: str, assignment: str, student: str, url: str, force: bool,
                  feedback: bool = False, mode: str = "process") -> Outcome:
    """Autograde one student (the Dask task). Never raises for a grading failure: the outcome
    says what happened. ``mode``: ``process`` (nbgrader's API in this process) or
    ``subprocess`` (the ``nbgrader autograde`` command)."""
    worker = f"{os.uname().nodename}:{os.getpid()}"
    start = time.perf_counter()
    marker = running_marker(root, assignment, student)
    with _PROCESS_LOCK:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(f"{worker} {datetime.now(timezone.utc).isoformat()}\n")
            if mode == "subprocess":
                ok, reason, log = _grade_subprocess(root, assignment, student, url, force, feedback)
            else:
                ok, reason, log = _grade_in_process(root, assignment, student, url, force, feedback)
        except Exception as exc:  # noqa: BLE001 - reported with the student's name
            ok, reason, log = False, f"{type(exc).__name__}: {exc}", ""
    if ok:
        marker.unlink(missing_ok=True)
        if not finished(root, assignment, student):
            ok, reason = False, "nbgrader finished but wrote no autograded notebook"
    _write_log(Path(root) / LOG_DIR / assignment / f"{student}.log", log)
    return Outcome(student, ok, time.perf_counter() - start, "" if ok else reason, worker, log)


def _write_log(path: Path, text: str) -> None:
    """The student's nbgrader log of the latest try (best effort: grading never fails on it)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError:
        pass


def quiet_local_worker(log_dir: str) -> str:
    """Send this worker process's stdout and stderr (and so its grading kernels') to a file in
    ``log_dir``: a local cluster's workers otherwise print kernel start-up notes over the
    progress bar. Run on each worker of a :class:`~distributed.LocalCluster` (never on an
    external cluster's workers, whose output is their owner's). Returns the file."""
    path = Path(log_dir) / f"worker-{os.getpid()}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return str(path)


def share_cores(threads: int) -> int:
    """Let this worker process and the grading kernels it starts use ``threads`` threads each
    (torch, OpenMP, MKL), unless ``OMP_NUM_THREADS`` was set by whoever started the cluster.
    W workers on C cores, each with a grader and a kernel spinning C OpenMP threads, spend most
    of their time waiting for each other: run on each worker of a
    :class:`~distributed.LocalCluster` with ``threads = max(1, C // W)``. Returns the count used."""
    if os.environ.get("OMP_NUM_THREADS"):
        return int(os.environ["OMP_NUM_THREADS"])
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)  # inherited by the kernels this worker starts
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    return threads


def _grade_in_process(root, assignment, student, url, force, feedback) -> tuple[bool, str, str]:
    from sqlalchemy.exc import SAWarning

    api = load_api(root, url)
    with warnings.catch_warnings():
        # nbgrader's own autoflush warnings (SQLAlchemy) say nothing about the grades.
        warnings.simplefilter("ignore", SAWarning)
        result = api.autograde(assignment, student, force=force, create=True)
    if not result["success"]:
        return False, _error_reason(result), result.get("log", "")
    if feedback:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SAWarning)
            fb = api.generate_feedback(assignment, student, force=True)
        if not fb["success"]:
            return False, "feedback: " + _error_reason(fb), fb.get("log", "")
    return True, "", result.get("log", "")


def _grade_subprocess(root, assignment, student, url, force, feedback) -> tuple[bool, str, str]:
    env = dict(os.environ, **{gradebook.DB_URL_ENV: url})
    bin_dir = Path(sys.executable).parent
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    commands = [["autograde", assignment, f"--student={student}"] + (["--force"] if force else [])]
    if feedback:
        commands.append(["generate_feedback", assignment, f"--student={student}", "--force"])
    log = ""
    for args in commands:
        proc = subprocess.run([str(bin_dir / "nbgrader"), *args], cwd=root, env=env,
                              capture_output=True, text=True)
        log += proc.stdout + proc.stderr
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if "ERROR" in ln]
            return False, f"nbgrader {args[0]} exit {proc.returncode}: " + "; ".join(
                lines[-3:] or [(proc.stderr or proc.stdout).strip()[-300:]]), log
    return True, "", log


# --------------------------------------------------------------------------- the class
@dataclass
class Row:
    """The final state of one student in a run."""
    student: str
    reason: str
    status: str = "skipped"   # graded, failed, skipped (up to date)
    tries: int = 0
    seconds: float = 0.0
    note: str = ""


def refuse_sqlite_on_cluster(url: str, scheduler: str | None) -> None:
    """``ValueError`` when workers of an external cluster would share a SQLite file."""
    if scheduler and gradebook.is_sqlite(url):
        raise ValueError(
            "a Dask cluster's workers may run on other machines, where a SQLite gradebook on a "
            "shared folder is not safe (its locks do not hold over network file systems). Use "
            f"PostgreSQL: {gradebook.DB_URL_ENV}=postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB "
            "(`make postgres` starts a local server), or grade on this machine without "
            "--scheduler.")


def _make_client(workers: int, scheduler: str | None):
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, memory_limit=0)
    return Client(cluster), cluster


def _close(client, cluster) -> None:
    """Close the client and the local cluster. A worker that imported torch takes longer than
    the nanny's 4 s to exit and is then killed, with a warning that says nothing about grading
    (every result is in by then): that warning is silenced."""
    import logging as _logging

    client.close()
    if cluster is not None:
        nanny = _logging.getLogger("distributed.nanny")
        level = nanny.level
        nanny.setLevel(_logging.ERROR)
        try:
            cluster.close()
        finally:
            nanny.setLevel(level)


def run(root: Path | str, assignment: str, *, workers: int | None = None,
        scheduler: str | None = None, force: bool = False, feedback: bool = False,
        students: list[str] | None = None, mode: str = "process", progress: bool = True,
        out=None) -> list[Row]:
    """Grade ``assignment`` (see the module docstring); returns one :class:`Row` per student
    considered, in student order, and prints the table to ``out`` (default stdout).

    Raises ``ValueError`` for a setting that cannot work (SQLite with ``scheduler``, an unknown
    mode, an assignment missing from the gradebook)."""
    from distributed import as_completed
    from tqdm import tqdm

    out = sys.stdout if out is None else out
    root = Path(root).resolve()
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    url = gradebook.db_url(root)
    refuse_sqlite_on_cluster(url, scheduler)
    _require_assignment(url, assignment)
    todos = plan(root, assignment, url, force, students)
    rows = {t.student: Row(t.student, t.reason) for t in todos}
    work = [t for t in todos if t.grade]
    counts = {r: sum(t.reason == r for t in todos) for r in (NEW, UNFINISHED, RESUBMITTED, FORCED, UP_TO_DATE)}
    why = ", ".join(f"{n} {r}" for r, n in counts.items() if n)
    print(f"{assignment}: {len(todos)} submitted, {len(work)} to grade"
          + (f" ({why})" if why else ""), file=out)
    print(_middle(f"gradebook: {gradebook.redact(url)}", WIDTH), file=out, flush=True)
    if work:
        workers = workers or os.cpu_count() or 1
        client, cluster = _make_client(workers, scheduler)
        if cluster is not None:
            client.run(quiet_local_worker, str(root / LOG_DIR / "workers"))
            client.run(share_cores, max(1, (os.cpu_count() or 1) // workers))
        try:
            where = scheduler or f"LocalCluster, {workers} process worker(s)"
            print(f"grading on {where}, mode {mode}", file=out, flush=True)
            args = dict(root=str(root), assignment=assignment, url=url, feedback=feedback, mode=mode)

            # By its module's name, so that workers import it (under `python -m
            # grading.grade_all` this module is __main__, which would be pickled by value).
            task = importlib.import_module("grading.grade_all").grade_student

            def submit(todo: Todo, attempt: int, force_it: bool):
                return client.submit(task, student=todo.student, force=force_it,
                                     key=f"grade-{assignment}-{todo.student}-{attempt}-{time.time_ns()}",
                                     pure=False, retries=0, **args)

            futures = {submit(t, 1, t.force): (t, 1) for t in work}
            bar = tqdm(total=len(work), unit="student", desc=f"grading {assignment}",
                       file=sys.stderr, ncols=WIDTH, disable=not progress)
            done = as_completed(list(futures))
            for future in done:
                todo, attempt = futures.pop(future)
                row = rows[todo.student]
                row.tries = attempt
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 - a worker died, a task could not run
                    outcome = Outcome(todo.student, False, 0.0, f"{type(exc).__name__}: {exc}")
                row.seconds += outcome.seconds
                if outcome.graded:
                    row.status, row.note = "graded", ""
                elif attempt < TRIES:
                    row.note = outcome.reason
                    retry = submit(todo, attempt + 1, True)
                    futures[retry] = (todo, attempt + 1)
                    done.add(retry)
                    continue
                else:
                    row.status, row.note = "failed", outcome.reason
                bar.set_postfix_str(f"{todo.student} {row.status}", refresh=False)
                bar.update(1)
            bar.close()
        finally:
            _close(client, cluster)
    result = [rows[t.student] for t in todos]
    print(result_table(result, root, assignment, url), file=out, flush=True)
    if work:
        print(f"nbgrader's log of each student: {LOG_DIR}/{assignment}/<student>.log in the "
              "course root", file=out, flush=True)
    return result


def _require_assignment(url: str, assignment: str) -> None:
    from nbgrader.api import MissingEntry

    if gradebook.exists(url):
        with gradebook.open_gradebook(url) as gb:  # also creates nbgrader's tables once, here
            try:
                gb.find_assignment(assignment)
                return
            except MissingEntry:
                pass
    raise ValueError(f"{assignment} is not in the gradebook {gradebook.redact(url)}: run "
                     f"`nbgrader generate_assignment {assignment}` (or `make release`) first")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def result_table(rows: list[Row], root: Path | str, assignment: str, url: str) -> str:
    """One line per student (fits :data:`WIDTH` columns): status, tries, seconds, the autograded
    score and the written answers pending, from the gradebook; a failure's reason below it."""
    from grading import scores

    parts = scores.graded_parts(root, assignment)
    auto_max = sum(p.points for p in parts if not p.manual)
    name_w = min(max([len("student"), *(len(r.student) for r in rows)]), 24)
    header = f"{'student':<{name_w}}  {'status':<7}  {'why':<11}  tries  {'seconds':>7}  {'auto score':>10}  pending"
    lines = [header, "-" * len(header)]
    for r in rows:
        score, pending = "", ""
        if r.status != "failed":
            try:
                got = scores.cell_scores(root, assignment, r.student, url=url)
                total = sum(got[p.grade_id][0] or 0.0 for p in parts if not p.manual and p.grade_id in got)
                score = f"{scores.fmt(total)}/{scores.fmt(auto_max)}"
                pending = str(sum(1 for p in parts if p.manual and p.grade_id in got
                                  and got[p.grade_id][0] is None))
            except Exception:  # noqa: BLE001 - no submission in the gradebook
                score = "-"
        lines.append(f"{_cut(r.student, name_w):<{name_w}}  {r.status:<7}  {r.reason:<11}  "
                     f"{r.tries:>5}  {r.seconds:>7.1f}  {score:>10}  {pending:>7}".rstrip())
        if r.note:
            lines.append(_cut(f"    {'reason' if r.status == 'failed' else 'first try'}: {r.note}", WIDTH))
    n = {s: sum(r.status == s for r in rows) for s in ("graded", "failed", "skipped")}
    lines.append(f"{n['graded']} graded, {n['failed']} failed, {n['skipped']} up to date "
                 "(skipped); scores from the gradebook.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grading.grade_all",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("assignment")
    parser.add_argument("--workers", type=int, default=None,
                        help="process workers of the local cluster (default: one per core)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="grade on this Dask scheduler's workers (e.g. tcp://host:8786)")
    parser.add_argument("--force", action="store_true", help="regrade every student")
    parser.add_argument("--feedback", action="store_true",
                        help="also generate each graded student's feedback")
    parser.add_argument("--students", nargs="+", default=None, help="only these students")
    parser.add_argument("--mode", choices=MODES, default="process",
                        help="process: nbgrader's API in the worker (default); subprocess: the "
                             "nbgrader command per student")
    parser.add_argument("--root", type=Path, default=COURSE_ROOT, help="course root")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be >= 1")
    try:
        rows = run(args.root, args.assignment, workers=args.workers, scheduler=args.scheduler,
                   force=args.force, feedback=args.feedback, students=args.students,
                   mode=args.mode, progress=not args.no_progress)
    except ValueError as err:
        print(f"grade_all: {err}", file=sys.stderr)
        return 2
    return 1 if any(r.status == "failed" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
