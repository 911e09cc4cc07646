"""nbgrader configuration of the Lecture 2 course (feature visualization and Grad-CAM).

Run every nbgrader command from this folder (the course root). The config locates itself, so
autograding works wherever the course is copied: the course root is put on the grading kernel's
import path (hidden tests import ``autograder`` and ``solutions``; notebooks import ``interpkit``).
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
