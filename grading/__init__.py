"""Instructor tools that drive nbgrader for this course (the course root is the repository root).

Modules:

- :mod:`grading.course` -- run nbgrader from Python (``generate_assignment``, ``autograde``,
  ``generate_feedback``), copy the course to a scratch folder, write a student's submission.
- :mod:`grading.scores` -- read scores back from the gradebook with nbgrader's API; a plain-text
  score table (``python -m grading.scores ASSIGNMENT``).
- :mod:`grading.submissions` -- build submission notebooks from the release notebook: the
  instructor's answers, filled into a release notebook, optionally with a bug patched in
  (``Variant``).
- :mod:`grading.sandbox` -- the bubblewrap sandbox of grading kernels (``SandboxKernelManager``).
- :mod:`grading.execute` -- nbgrader's ``Execute`` step, sandboxed, surviving dead and hung kernels,
  with an output budget (``SandboxedExecute``).
- :mod:`grading.intake` -- repairs unreadable, renamed and damaged notebooks before grading
  (nbgrader's ``pre_convert_hook``).
- :mod:`grading.exchange`, :mod:`grading.lms`, :mod:`grading.late_policy` -- submission paths:
  nbgrader's exchange, LMS zips through ``zip_collect``, the late penalty.
- :mod:`grading.class_report` -- per-question class report (PNG + table);
  :mod:`grading.bundle` -- the folder students receive.
- :mod:`grading.grade_all` -- ``python -m grading.grade_all`` (``make grade``): a whole class in
  parallel on Dask workers, each student one nbgrader autograde; resumes killed runs.
- :mod:`grading.gradebook` -- the gradebook's URL (SQLite by default, PostgreSQL from
  ``INTERP_GRADEBOOK_URL``), for nbgrader's ``db_url`` and every tool; SQLite writers take turns.
- :mod:`grading.roster` -- ``python -m grading.roster`` (``make roster``): Canvas/Moodle CSV
  exports into nbgrader's students.
- :mod:`grading.demo` -- ``python -m grading.demo`` (``make demo``): submit, autograde and give
  feedback on the bundled example submissions of ``examples/<assignment>.py``.

Never infer a score from nbgrader's exit status: ``nbgrader autograde`` exits 0 even when every
test fails. Scores come from the gradebook only (:mod:`grading.scores`).
"""
