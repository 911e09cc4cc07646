"""The course's late policy, as an nbgrader late-submission plugin.

Policy (stated in ``nbgrader_config.py``, where the two numbers are set):

    A submission loses ``percent_per_day`` percent (10 %) of the score it earned for every
    started day (24 hours) after the due date, at most ``max_percent`` percent (50 %).
    One second late counts as one day; 24 h 1 s late as two days. On time (or no due date,
    or no submission time): no penalty.

How it reaches the gradebook: during ``nbgrader autograde``, nbgrader's ``AssignLatePenalties``
preprocessor asks the plugin configured as ``AssignLatePenalties.plugin_class`` for each notebook
of a late submission, passing the notebook's score at that moment and the seconds late
(submission time from ``timestamp.txt`` minus the assignment's due date, plus any per-student
extension, from the gradebook). The penalty is stored per notebook
(``SubmittedNotebook.late_submission_penalty``); nbgrader subtracts it in totals and feedback.

Caveat (nbgrader's, not this module's): the penalty is computed once, at autograde, from the
score *then*: autograded cells only, since written answers are still ungraded. Points a human
grader adds later are not penalised unless the submission is autograded again.

Due dates live in the gradebook, one per assignment::

    nbgrader db assignment add L2A2_gradcam --duedate="2030-01-10 17:00:00 UTC"
"""
from __future__ import annotations

import math
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float, TraitError, validate

from grading.course import COURSE_ROOT, nbgrader

SECONDS_PER_DAY = 24 * 60 * 60


def days_late(total_seconds_late: float) -> int:
    """Started days after the due date: 0 when on time, 1 for (0 s, 24 h], 2 for (24 h, 48 h]..."""
    if total_seconds_late <= 0:
        return 0
    return math.ceil(total_seconds_late / SECONDS_PER_DAY)


def penalty_percent(total_seconds_late: float, percent_per_day: float, max_percent: float) -> float:
    """The percentage of the earned score a submission loses: ``percent_per_day`` per started day
    late, at most ``max_percent``."""
    return min(percent_per_day * days_late(total_seconds_late), max_percent)


class PercentPerDayLate(LateSubmissionPlugin):
    """Late penalty: ``percent_per_day`` % of the earned score per started day late, capped at
    ``max_percent`` %. Returns the penalty in points (nbgrader clamps it to [0, score])."""

    percent_per_day = Float(
        10.0, help="Percent of the earned score lost per started day (24 h) after the due date.",
    ).tag(config=True)

    max_percent = Float(
        50.0, help="The most a late submission can lose, in percent of its earned score.",
    ).tag(config=True)

    @validate("percent_per_day", "max_percent")
    def _percentage(self, proposal):
        # A negative or >100 % setting would silently give points or take more than earned.
        if not 0 <= proposal["value"] <= 100:
            raise TraitError(f"{proposal['trait'].name} must be within [0, 100], "
                             f"got {proposal['value']}")
        return proposal["value"]

    def late_submission_penalty(self, student_id: str, score: float,
                                total_seconds_late: float) -> float:
        """Points deducted from ``score`` for a submission ``total_seconds_late`` seconds late."""
        percent = penalty_percent(total_seconds_late, self.percent_per_day, self.max_percent)
        penalty = (score or 0.0) * percent / 100
        self.log.info("Late policy: %s is %.0f s late (%d started day(s)): -%g%% of %g = -%g points",
                      student_id, total_seconds_late, days_late(total_seconds_late), percent,
                      score or 0.0, penalty)
        return penalty


def set_due_date(assignment: str, due: datetime,
                 root: Path | str = COURSE_ROOT) -> subprocess.CompletedProcess:
    """``nbgrader db assignment add ASSIGNMENT --duedate="YYYY-MM-DD HH:MM:SS UTC"``: create the
    assignment in the gradebook or update its due date (a naive ``due`` is taken as UTC).

    Takes effect at the next autograde: penalties already in the gradebook are not recomputed."""
    if due.tzinfo is not None:
        due = due.astimezone(timezone.utc).replace(tzinfo=None)
    return nbgrader("db", "assignment", "add", assignment,
                    f"--duedate={due:%Y-%m-%d %H:%M:%S} UTC", root=root)
