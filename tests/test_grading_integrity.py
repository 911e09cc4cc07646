"""Determinism and integrity of grading, through nbgrader on a scratch course (sandbox on).

- Grading the same submissions twice gives identical scores for every cell (the checks fix their
  seeds; a student's own seeding or random calls cannot change them).
- Re-running autograde keeps every submission byte-for-byte and every manual grade.
- Regenerating ``release/`` (what ``make release`` runs) leaves ``submitted/``, ``autograded/``
  and the gradebook's grades alone.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from nbgrader.api import Gradebook

from grading import course, scores
from grading.submissions import fill, patch
from support import instructor_answers, release_notebook

A = "L2A2_gradcam"
NB = "L2A2_gradcam.ipynb"


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _all_scores(root: Path, students) -> dict:
    return {s: scores.cell_scores(root, A, s) for s in students}


def _set_manual(root: Path, student: str, grade_id: str, score: float) -> None:
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id="interp-lecture2") as gb:
        grade = gb.find_grade(grade_id, NB[:-6], A, student)
        grade.manual_score = score
        gb.db.commit()


def test_regrading_is_deterministic_and_loses_nothing(tmp_path):
    root = course.copy_course(tmp_path / "course")
    course.generate_release(A, root)
    answers = instructor_answers(A)
    # Partial credit, and student code that reseeds and consumes random numbers between checks.
    buggy = patch(answers, "grad_cam", "weights = dA.mean(dim=(2, 3), keepdim=True)",
                  "weights = dA.amax(dim=(2, 3), keepdim=True)")
    noisy = patch(answers, "localization_box", "import skimage.measure",
                  "import skimage.measure, random, time\nimport numpy as np, torch\n"
                  "torch.manual_seed(int(time.time() * 1e6) % 2**31)\n"
                  "np.random.seed(int(time.time() * 1e6) % 2**31)\nrandom.seed()\n"
                  "torch.rand(int(time.time()) % 97 + 1); np.random.rand(int(time.time()) % 89 + 1)")
    students = {"correct": answers, "buggy": buggy, "noisy": noisy}
    for student, ans in students.items():
        course.submit(root, student, A, fill(release_notebook(A), ans), NB)
    submitted_before = _hashes(root / "submitted")

    course.autograde(root, A)
    first = _all_scores(root, students)
    assert first["correct"]["test_grad_cam_hidden"][0] == first["correct"]["test_grad_cam_hidden"][1]
    assert 0 < first["buggy"]["test_grad_cam_hidden"][0] < first["buggy"]["test_grad_cam_hidden"][1]

    # A human grades a written answer; then everything is autograded again.
    _set_manual(root, "buggy", "q_limitations", 3.5)
    course.autograde(root, A)
    second = _all_scores(root, students)
    assert second["buggy"]["q_limitations"] == (3.5, 4.0), "re-running autograde lost a manual grade"
    second["buggy"]["q_limitations"] = first["buggy"]["q_limitations"]
    assert second == first, "the same submissions were scored differently the second time"
    assert _hashes(root / "submitted") == submitted_before, "autograde changed a submission"

    # Regenerating the release leaves submissions, autograded notebooks and grades alone.
    autograded_before = _hashes(root / "autograded")
    course.generate_release(A, root)
    assert _hashes(root / "submitted") == submitted_before
    assert _hashes(root / "autograded") == autograded_before
    third = _all_scores(root, students)
    assert third["buggy"]["q_limitations"] == (3.5, 4.0)
    third["buggy"]["q_limitations"] = first["buggy"]["q_limitations"]
    assert third == first, "regenerating the release changed grades"


def test_feature_visualization_regrading_is_deterministic(tmp_path):
    """L2A1's checks optimise images: scores must still be identical run to run."""
    from examples.L2A1_feature_visualization import BUGS

    a, nb = "L2A1_feature_visualization", "L2A1_feature_visualization.ipynb"
    root = course.copy_course(tmp_path / "course")
    course.generate_release(a, root)
    answers = instructor_answers(a)
    students = {"correct": answers, "buggy": BUGS[0].answers(dict(answers))}
    for student, ans in students.items():
        course.submit(root, student, a, fill(release_notebook(a), ans), nb)
    runs = []
    for _ in range(2):
        course.autograde(root, a)
        runs.append({s: scores.cell_scores(root, a, s) for s in students})
    assert runs[0] == runs[1]
    hidden = [c for c in runs[0]["buggy"] if c.endswith("_hidden")]
    assert any(runs[0]["buggy"][c][0] < runs[0]["buggy"][c][1] for c in hidden)
