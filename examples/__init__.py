"""Example submissions, as code: the instructor's answers with realistic bugs planted, and other
correct implementations. Used by ``make demo`` and by the nbgrader tests (one module per assignment)."""
