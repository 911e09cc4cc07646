"""nbgrader configuration of the Lecture 2 course (feature visualization and Grad-CAM).

Run every nbgrader command from this folder (the course root). The config locates itself, so
autograding works wherever the course is copied: the course root is put on the import path of
nbgrader and of its kernels (notebooks import ``interpkit``; instructors running a source notebook
by hand import ``autograder``).

Autograding is trusted: the student's kernel only runs the student's cells; every test cell runs
in nbgrader's own process (grading/execute.py, grading/trusted_tests.py), which writes the
outputs nbgrader scores. See the README's "Grading contract".
"""
import os

c = get_config()  # noqa: F821 (injected by traitlets)

COURSE_ROOT = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.root = COURSE_ROOT
c.CourseDirectory.course_id = "interp-lecture2"
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"

# Files in source/<assignment>/ that must never be copied to release/ (nor over a student's
# files at autograde): editor leftovers and anything an instructor names as private.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*", "*~", "*.bak",
    "*solution*", "*hidden*", "*instructor*",
]

# CPU grading: a cell gets 3 minutes (the slowest hidden check takes a few seconds; exploratory
# cells switch to small settings while NBGRADER_EXECUTION is set).
c.Execute.timeout = 180
c.Execute.startup_timeout = 120
# After a cell's reply, nbclient waits this long for the rest of its output (stderr flushed last),
# then drops it silently: 4 s (its default) lost a warning on a loaded grading machine, so the
# same notebook's feedback differed between two runs. Waiting costs nothing when output is on time.
c.Execute.iopub_timeout = 30

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# The grading kernel inherits this process's environment.
_path = os.environ.get("PYTHONPATH", "")
if COURSE_ROOT not in _path.split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (COURSE_ROOT, _path) if p)
# One torch/OpenMP thread per grading kernel: on a busy machine (other kernels, other graders)
# oversubscribed OpenMP threads spin and a notebook took 66 s instead of 17 s; one thread is also
# bitwise reproducible. Set OMP_NUM_THREADS yourself to override.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# --- Trusted grading: sandboxed kernels (grading/sandbox.py), tests in the grader ---
# Each submission is graded as the release's cells with the student's sources (grading/rebuild.py:
# no metadata, outputs or kernelspec of the submission is used). The kernel runs in bubblewrap:
# read-only file system with the system, Python (student packages only), interpkit/ and witness/;
# writable: size-limited private tmpfs only; no network; an unprivileged uid; the limits below.
# Test cells run here, in nbgrader's process. A dead or hung kernel no longer stops a student's
# grading. Without a working bwrap, `nbgrader autograde` refuses; opt out explicitly (the
# student's code then runs with your rights) with INTERP_GRADING_SANDBOX=off.
import sys  # noqa: E402

# nbgrader resolves plugins by import name in its own process; appended, so nothing installed
# is shadowed.
if COURSE_ROOT not in sys.path:
    sys.path.append(COURSE_ROOT)


def _configure_sandbox(c) -> None:
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute, SaveAutoGrades

    from grading import sandbox
    from grading.intake import repair_submission

    # nbgrader's own steps: first the trusted rebuild of the submission; Execute replaced by the
    # trusted one; review flags saved right after the scores.
    c.Autograde.sanitize_preprocessors = ["grading.rebuild.RebuildFromRelease"] + list(
        Autograde.class_traits()["sanitize_preprocessors"].default())
    steps = []
    for p in Autograde.class_traits()["autograde_preprocessors"].default():
        steps.append("grading.execute.TrustedExecute" if p is Execute else p)
        if p is SaveAutoGrades:
            steps.append("grading.review.FlagForReview")
    c.Autograde.autograde_preprocessors = steps
    c.RebuildFromRelease.course_root = COURSE_ROOT
    c.TrustedExecute.course_root = COURSE_ROOT
    c.SandboxKernelManager.course_root = COURSE_ROOT
    c.SandboxKernelManager.memory_bytes = 12 * 1024 ** 3   # address space; torch maps ~3.3 GB
    c.SandboxKernelManager.max_processes = 256             # processes + threads of its uid
    c.SandboxKernelManager.cpu_seconds = 3600              # per process
    c.SandboxKernelManager.file_bytes = 256 * 1024 ** 2    # largest file a kernel may write
    c.SandboxKernelManager.work_bytes = 256 * 1024 ** 2    # tmpfs: working directory
    c.SandboxKernelManager.tmp_bytes = 512 * 1024 ** 2     # tmpfs: /tmp
    c.SandboxKernelManager.shm_bytes = 64 * 1024 ** 2      # tmpfs: /dev/shm
    c.TrustedExecute.max_cell_output_bytes = 4 * 1024 ** 2
    c.TrustedExecute.max_notebook_output_bytes = 24 * 1024 ** 2
    # Unreadable or renamed notebooks are repaired (originals kept in
    # submitted/<student>/<assignment>/.original/) so that every student gets a score and
    # feedback.
    c.Autograde.pre_convert_hook = repair_submission
    sandbox.refuse_unless_available(sys.argv, COURSE_ROOT)


try:
    _configure_sandbox(c)
except Exception as _err:  # noqa: BLE001
    # nbgrader would log a broken config file and go on grading *unprotected*: stop instead.
    sys.stderr.write(f"[grading sandbox] nbgrader_config.py could not set up grading: {_err!r}\n")
    raise SystemExit(2)

# --- The gradebook: SQLite by default, PostgreSQL for concurrent graders (grading/gradebook.py) ---
# One environment variable, INTERP_GRADEBOOK_URL, names it for nbgrader and for every tool here:
#   unset: sqlite:///<this folder>/gradebook.db (nbgrader's default; one grader)
#   INTERP_GRADEBOOK_URL=postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE (several graders:
#   `make grade` on a Dask cluster; `make postgres` starts a local server)
# Several processes on one SQLite file take turns: every transaction begins with BEGIN IMMEDIATE
# and waits for the lock (never "database is locked").
try:
    from grading import gradebook as _gradebook

    c.CourseDirectory.db_url = _gradebook.db_url(COURSE_ROOT)
    _gradebook.serialize_sqlite_writes()
except Exception as _err:  # noqa: BLE001
    # A wrong URL must not silently fall back to another gradebook.
    sys.stderr.write(f"[gradebook] nbgrader_config.py: {_err}\n")
    raise SystemExit(2)

# Feedback and the formgrader render students' markdown and outputs: sanitized, no scripts.
c.HTMLExporter.sanitize_html = True

# --- Submission paths: exchange, LMS uploads (zip_collect), late policy ---
# The plugins below live in grading/ (importable: the course root was appended to sys.path above).

# Exchange (release_assignment / fetch_assignment / submit / collect): the exchange root is
# site-wide on a JupyterHub (c.Exchange.root in the hub's global nbgrader config, default
# /usr/local/share/nbgrader/exchange, world-writable); it is deliberately not set here.
# Students name the course: nbgrader fetch_assignment A --course=interp-lecture2.

# LMS uploads (nbgrader zip_collect A): Canvas bulk-download names, with an optional UTC
# submission time that becomes timestamp.txt (add it with `python -m grading.lms stamp`):
#   <lastfirst>[_LATE]_<userid>_<submissionid>[_<YYYYMMDDTHHMMSSZ>]_<original file name>.ipynb
# The LMS user id is the nbgrader student id; "-1", " (1)", "Copy of " are dropped from the file
# name to find the released notebook. Another LMS: set c.LmsCollector.named_regexp (groups
# student_id and file_id, optionally timestamp). Students new to the gradebook are added at
# autograde (Autograde.create_student, nbgrader's default, stated here because we rely on it).
c.ZipCollectApp.collector_plugin = "grading.lms.LmsCollector"
c.Autograde.create_student = True

# Late policy: a late submission loses 10 % of the score it earned per started day (24 h) after
# the due date, at most 50 %. Due dates per assignment in the gradebook:
#   nbgrader db assignment add L2A2_gradcam --duedate="2030-01-10 17:00:00 UTC"
# Computed once at autograde (written answers graded later are not penalised). grading/late_policy.py
c.AssignLatePenalties.plugin_class = "grading.late_policy.PercentPerDayLate"
c.PercentPerDayLate.percent_per_day = 10.0
c.PercentPerDayLate.max_percent = 50.0
