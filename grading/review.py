"""Review flags: test cells whose graded function hides what it calls go to a human.

:class:`grading.execute.TrustedExecute` lists, per test cell, the dynamic lookups
(:meth:`autograder.delegation.Analysis.review`) in the definitions of the functions it grades.
:class:`FlagForReview` runs right after nbgrader's ``SaveAutoGrades`` and marks those grades
``needs_manual_grade`` in the gradebook: the formgrader then lists the submission as needing
grading, and the cell's output says why. The automatic score stands until someone looks.
"""
from __future__ import annotations

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import NbGraderPreprocessor


class FlagForReview(NbGraderPreprocessor):
    def preprocess(self, nb, resources):
        flagged = resources.get("interp_review") or {}
        if not flagged:
            return nb, resources
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            for grade_id, reasons in flagged.items():
                try:
                    grade = gb.find_grade(grade_id, info["notebook"], info["assignment"], info["student"])
                except MissingEntry:
                    continue
                grade.needs_manual_grade = True
                self.log.warning("%s/%s: %s flagged for review: %s", info["student"], info["notebook"],
                                 grade_id, "; ".join(reasons[:3]))
            gb.db.commit()
        return nb, resources
