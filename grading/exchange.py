"""nbgrader's exchange, as on a shared JupyterHub: release, fetch, submit, collect.

The exchange is a folder every user can write to (nbgrader's default root is
``/usr/local/share/nbgrader/exchange``; a hub admin creates it world-writable and points every
user's nbgrader config at it with ``c.Exchange.root``). Its layout, per course id::

    <exchange root>/<course id>/outbound/<assignment>/   released notebooks (instructor writes)
    <exchange root>/<course id>/inbound/<student>+<assignment>+<timestamp>+<random>/
                                                         one folder per ``nbgrader submit``

Roles and the commands these helpers run:

- instructor, in the course root: ``nbgrader release_assignment A`` (copies ``release/A``),
  later ``nbgrader collect A --update`` (each student's newest submission into
  ``submitted/<student>/A/``, with its ``timestamp.txt``), then autograde and feedback as usual;
- student, in their home folder (no course config there): ``nbgrader fetch_assignment A
  --course=<course id>`` (creates ``./A/``), edit, ``nbgrader submit A --course=<course id>``.
  The student id is the OS user name (``JUPYTERHUB_USER`` when the OS user is ``jovyan``, as in
  container-spawned hubs); ``--student=ID`` (``CourseDirectory.student_id``) overrides it, which
  is what these helpers do so one OS user can play several students.

Every helper passes ``--Exchange.root`` explicitly (the course config does not set it: on a hub
the site-wide config does), so tests use a course-local exchange. Exit status 0 from
``collect`` says nothing about what was collected: look in ``submitted/``.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from grading.course import COURSE_ROOT, nbgrader

#: The course id ``nbgrader_config.py`` sets (``CourseDirectory.course_id``). Students have no
#: course config, so they name the course on the command line.
COURSE_ID = "interp-lecture2"

#: nbgrader refuses an exchange root the current user cannot write; on a shared hub every user
#: must be able to create folders in it (``rwxrwxrwx``, as nbgrader creates it itself).
EXCHANGE_ROOT_MODE = 0o777


def create_exchange_root(path: Path | str) -> Path:
    """Create ``path`` (and parents) as an exchange root, world-writable whatever the umask.

    Returns the absolute path. An existing folder gets the mode too."""
    path = Path(path).resolve()
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, EXCHANGE_ROOT_MODE)  # mkdir's mode is masked by the umask; chmod is not
    return path


def _root_arg(exchange_root: Path | str) -> str:
    return f"--Exchange.root={Path(exchange_root).resolve()}"


def student_env(home: Path | str) -> dict[str, str]:
    """Environment for nbgrader run as a student whose home folder is ``home``: nbgrader's
    per-user files (the submit cache, any ``~/.jupyter`` config) live there, not in the
    caller's home."""
    home = Path(home).resolve()
    return {
        "HOME": str(home),
        "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
        "JUPYTER_DATA_DIR": str(home / ".local" / "share" / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(home / ".local" / "share" / "jupyter" / "runtime"),
    }


def release_assignment(assignment: str, exchange_root: Path | str,
                       root: Path | str = COURSE_ROOT) -> subprocess.CompletedProcess:
    """Instructor: ``nbgrader release_assignment ASSIGNMENT --force`` from the course root:
    ``release/ASSIGNMENT`` becomes fetchable (replacing an earlier release of it)."""
    return nbgrader("release_assignment", assignment, "--force", _root_arg(exchange_root),
                    root=root)


def fetch_assignment(home: Path | str, assignment: str, exchange_root: Path | str,
                     course_id: str = COURSE_ID) -> Path:
    """Student: ``nbgrader fetch_assignment ASSIGNMENT --course=COURSE_ID`` in ``home``.

    Returns ``home/ASSIGNMENT``, the fetched folder. Raises ``RuntimeError`` (from
    :func:`grading.course.nbgrader`) if nbgrader fails, e.g. when the assignment is not
    released or was already fetched."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    nbgrader("fetch_assignment", assignment, f"--course={course_id}", _root_arg(exchange_root),
             root=home, env=student_env(home))
    return home / assignment


def submit_assignment(home: Path | str, assignment: str, exchange_root: Path | str,
                      student: str | None = None,
                      course_id: str = COURSE_ID) -> subprocess.CompletedProcess:
    """Student: ``nbgrader submit ASSIGNMENT --course=COURSE_ID [--student=STUDENT]`` in
    ``home``: copies ``home/ASSIGNMENT`` into the exchange's inbound folder with the current
    time as its timestamp. ``student`` None: nbgrader takes the OS user name (see the module
    docstring). Each call is a new submission; ``collect`` keeps the newest."""
    args = ["submit", assignment, f"--course={course_id}", _root_arg(exchange_root)]
    if student is not None:
        args.append(f"--student={student}")
    return nbgrader(*args, root=home, env=student_env(home))


def collect(assignment: str, exchange_root: Path | str, root: Path | str = COURSE_ROOT,
            update: bool = True) -> subprocess.CompletedProcess:
    """Instructor: ``nbgrader collect ASSIGNMENT [--update]`` from the course root.

    Copies each student's newest submission to ``submitted/<student>/ASSIGNMENT/`` (notebooks
    and ``timestamp.txt``). ``update``: replace an already collected submission by a newer one
    (without it nbgrader keeps what is there). With a due date in the gradebook,
    ``--before-duedate`` (not used here) would prefer the last submission before it.

    nbgrader warns "cheating attempt?" when a submission's folder is not owned by the OS user of
    the same name: expected when one OS user submits for several students, as in tests."""
    args = ["collect", assignment, _root_arg(exchange_root)]
    if update:
        args.append("--update")
    return nbgrader(*args, root=root)
