"""``python -m grading.demo`` (``make demo``, after ``make release``): the whole grading flow on
the bundled example submissions.

For every assignment with an examples module ``examples/<assignment>.py`` exposing
``DEMO_SUBMISSIONS: dict[str, Callable[[dict[str, str]], dict[str, str]] | None]`` (student name
-> function turning the instructor's answers into that student's answers; ``None`` submits the
blank release notebook):

1. build each demo student's notebook(s) from ``release/<assignment>/`` and write them into
   ``submitted/`` of the course root (only ``demo_*`` students: other students' folders are never
   touched);
2. autograde them with nbgrader, one student at a time;
3. generate their feedback HTML;
4. print the score table (read from the gradebook: ``gradebook.db`` in the course root unless
   ``INTERP_GRADEBOOK_URL`` names another, :mod:`grading.gradebook`) and where
   the feedback files are.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import shutil
import sys
import time
from pathlib import Path

import nbformat

from grading import gradebook
from grading.course import COURSE_ROOT, autograde, generate_feedback, generate_release, submit
from grading.scores import score_table
from grading.submissions import fill, solution_answers, solution_cells

DEMO_PREFIX = "demo_"


def assignments(root: Path | str = COURSE_ROOT) -> list[str]:
    """The assignments of the course: the folders of ``source/``, sorted."""
    source = Path(root) / "source"
    return sorted(p.name for p in source.iterdir() if p.is_dir()) if source.is_dir() else []


def load_examples(root: Path | str, assignment: str):
    """The module ``examples.<assignment>`` of the course, or None when
    ``examples/<assignment>.py`` is absent.

    For this repository it is imported as ``examples.<assignment>``; for another course root
    (a scratch copy) the file is loaded by path, since ``examples`` may already name this
    repository's package."""
    root = Path(root).resolve()
    path = root / "examples" / f"{assignment}.py"
    if not path.is_file():
        return None
    if root == COURSE_ROOT:
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        return importlib.import_module(f"examples.{assignment}")
    name = f"_course_examples_{abs(hash(str(root)))}_{assignment}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def write_submissions(root: Path | str, assignment: str, demo_submissions: dict) -> list[str]:
    """Write every demo student's submission of ``assignment``; return the student names."""
    root = Path(root)
    bad = [s for s in demo_submissions if not s.startswith(DEMO_PREFIX)]
    if bad:
        raise ValueError(f"demo students must be named {DEMO_PREFIX}*: {', '.join(bad)}")
    release = sorted((root / "release" / assignment).glob("*.ipynb"))
    if not release:
        raise FileNotFoundError(f"no notebook in release/{assignment}: run `make release` first")
    instructor = {}
    for path in sorted((root / "source" / assignment).glob("*.ipynb")):
        instructor.update(solution_answers(path))
    release_nbs = {p.name: nbformat.read(str(p), as_version=4) for p in release}

    for student, make_answers in demo_submissions.items():
        folder = root / "submitted" / student / assignment
        if folder.exists():
            shutil.rmtree(folder)
        answers = None if make_answers is None else make_answers(dict(instructor))
        used = set()
        for name, nb in release_nbs.items():
            if answers is not None:
                ids = solution_cells(nb)
                own = {k: v for k, v in answers.items() if k in ids}
                used |= set(own)
                nb = fill(nb, own)
            submit(root, student, assignment, nb, name)
        if answers is not None and set(answers) - used:
            raise KeyError(f"{student}: answers for unknown cells "
                           f"{', '.join(sorted(set(answers) - used))}")
    return list(demo_submissions)


def in_gradebook(root: Path | str, assignment: str) -> bool:
    """Whether the course's gradebook (:func:`grading.gradebook.db_url`) knows the assignment
    (``generate_assignment`` records it and its cells there; ``autograde`` refuses an
    assignment it does not know)."""
    from nbgrader.api import MissingEntry

    url = gradebook.db_url(root)
    if not gradebook.exists(url):
        return False
    with gradebook.open_gradebook(url) as gb:
        try:
            gb.find_assignment(assignment)
        except MissingEntry:
            return False
    return True


def run(root: Path | str = COURSE_ROOT, only: list[str] | None = None) -> None:
    """Submit, autograde and give feedback on the demo students of each assignment (default:
    every assignment in ``source/``), printing progress, the score table and feedback paths."""
    root = Path(root)
    for assignment in only or assignments(root):
        module = load_examples(root, assignment)
        if module is None:
            print(f"[{assignment}] no examples/{assignment}.py: skipped", flush=True)
            continue
        if not in_gradebook(root, assignment):
            # e.g. after `make clean-grading`: the gradebook was deleted after `make release`.
            print(f"[{assignment}] not in the gradebook: nbgrader generate_assignment ...",
                  flush=True)
            generate_release(assignment, root)
        students = write_submissions(root, assignment, module.DEMO_SUBMISSIONS)
        print(f"[{assignment}] submitted: {', '.join(students)}", flush=True)
        for i, student in enumerate(students, 1):
            print(f"[{assignment}] autograding {student} ({i}/{len(students)}) ...", end="",
                  flush=True)
            t0 = time.perf_counter()
            autograde(root, assignment, [student])
            print(f" {time.perf_counter() - t0:.1f} s", flush=True)
        print(f"[{assignment}] generating feedback ...", flush=True)
        generate_feedback(root, assignment, students)
        print()
        print(score_table(root, assignment, students))
        print()
        print(f"[{assignment}] feedback:")
        for student in students:
            for html in sorted((root / "feedback" / student / assignment).glob("*.html")):
                print(f"  {html}")
        print(flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grading.demo",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("assignments", nargs="*", help="default: every assignment in source/")
    parser.add_argument("--root", type=Path, default=COURSE_ROOT, help="course root")
    args = parser.parse_args(argv)
    run(args.root, args.assignments or None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
