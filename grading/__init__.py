"""Instructor tools that drive nbgrader for this course (the course root is the repository root).

Modules:

- :mod:`grading.course` -- run nbgrader from Python (``generate_assignment``, ``autograde``,
  ``generate_feedback``), copy the course to a scratch folder, write a student's submission.
- :mod:`grading.scores` -- read scores back from the gradebook with nbgrader's API; a plain-text
  score table (``python -m grading.scores ASSIGNMENT``).
- :mod:`grading.submissions` -- build submission notebooks from the release notebook: the
  instructor's answers, filled into a release notebook, optionally with a bug patched in
  (``Variant``).
- :mod:`grading.demo` -- ``python -m grading.demo`` (``make demo``): submit, autograde and give
  feedback on the bundled example submissions of ``examples/<assignment>.py``.

Never infer a score from nbgrader's exit status: ``nbgrader autograde`` exits 0 even when every
test fails. Scores come from the gradebook only (:mod:`grading.scores`).
"""
