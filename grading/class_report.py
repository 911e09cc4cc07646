"""Which part was hard? A per-part report of one assignment across the class.

``python -m grading.class_report ASSIGNMENT [--out DIR] [--root PATH]`` (run from the course
root; ``make report A=ASSIGNMENT`` also exports nbgrader's own grades CSV) reads every autograded
submission of ASSIGNMENT from the gradebook (through :mod:`grading.scores`) and writes, for each
graded part (grade cell, in notebook order):

- ``DIR/<ASSIGNMENT>_parts.csv``: one row per part, columns :data:`CSV_COLUMNS`;
- ``DIR/<ASSIGNMENT>_parts.png``: one figure (matplotlib, Agg canvas): left, the share of
  students with full marks / partial credit / zero / a pending grade per part; right, every
  student's score as a fraction of the part's maximum, and the mean;
- the same table as plain text on stdout.

Definitions (per part, over the students with an autograded submission):

- *graded*: students with a score; a written answer nobody has graded yet is *pending*: it is
  counted apart and never as a zero (nbgrader itself scores a blank written answer 0: that one
  is graded);
- *pass rate*: the share of graded students with full marks;
- *mean*: the mean of score / max points over graded students;
- *distribution*: how many graded students got each score (``score:students``).

Pass rate and mean are undefined (empty in the CSV, ``pending`` in the text table) for a part
no one has been graded on yet.
"""
from __future__ import annotations

import argparse
import csv
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from grading import gradebook
from grading.course import COURSE_ROOT
from grading.scores import GradedPart, cell_scores, graded_parts, submitted_students

#: Columns of the CSV table, in order.
CSV_COLUMNS = (
    "notebook", "grade_id", "kind", "max_points", "students", "graded", "pending", "missing",
    "full_marks", "partial", "zero", "pass_rate", "mean_fraction", "distribution",
)

#: Widest part name in the text table (longer ones are cut, marked ``~``).
MAX_LABEL = 40
#: Narrowest distribution column of the text table; below that it goes under each row.
MIN_DIST = 24

# Scores are floats from the gradebook (partial credit): compare with a tolerance.
_EPS = 1e-9


@dataclass(frozen=True)
class PartStats:
    """The class's results on one graded part.

    ``scores``: one score per graded student (pending and missing ones excluded), in student
    order; ``pending``: students whose score is None (a written answer awaiting a grader);
    ``missing``: students whose submission has no grade for this part at all.
    """
    part: GradedPart
    scores: tuple[float, ...]
    pending: int
    missing: int

    @property
    def kind(self) -> str:
        return "manual" if self.part.manual else "auto"

    @property
    def students(self) -> int:
        return len(self.scores) + self.pending + self.missing

    @property
    def graded(self) -> int:
        return len(self.scores)

    def _full(self, score: float) -> bool:
        return score >= self.part.points - _EPS

    @property
    def full_marks(self) -> int:
        return sum(self._full(s) for s in self.scores)

    @property
    def zero(self) -> int:
        # A 0-point part: every score is "full marks", none is "zero".
        return sum(s <= _EPS and not self._full(s) for s in self.scores)

    @property
    def partial(self) -> int:
        return self.graded - self.full_marks - self.zero

    @property
    def pass_rate(self) -> float | None:
        """Share of graded students with full marks; None when no one is graded."""
        return self.full_marks / self.graded if self.graded else None

    @property
    def fractions(self) -> list[float]:
        """Each graded score divided by the part's maximum (1.0 for a 0-point part)."""
        if self.part.points <= 0:
            return [1.0] * self.graded
        return [s / self.part.points for s in self.scores]

    @property
    def mean_fraction(self) -> float | None:
        """Mean of score / max over graded students; None when no one is graded."""
        return sum(self.fractions) / self.graded if self.graded else None

    @property
    def distribution(self) -> dict[float, int]:
        """``{score: number of graded students}``, by increasing score."""
        return dict(sorted(Counter(self.scores).items()))


def class_stats(root: Path | str, assignment: str,
                students: list[str] | None = None) -> list[PartStats]:
    """Per-part statistics of ``assignment`` over ``students`` (default: every student with an
    autograded submission in the course's gradebook), parts in notebook order.

    Raises ``FileNotFoundError`` without a gradebook, ``ValueError`` when there is no part or
    no student to report on.
    """
    root = Path(root)
    parts = graded_parts(root, assignment)
    if not parts:
        raise ValueError(f"no graded cell in source/{assignment}/*.ipynb")
    if students is None:
        students = submitted_students(root, assignment)
    if not students:
        raise ValueError(f"no autograded submission of {assignment} in the gradebook "
                         f"{gradebook.redact(gradebook.db_url(root))}: autograde first")
    per_student = [cell_scores(root, assignment, s) for s in students]
    stats = []
    for part in parts:
        scores, pending, missing = [], 0, 0
        for table in per_student:
            if part.grade_id not in table:
                missing += 1
            elif table[part.grade_id][0] is None:
                pending += 1
            else:
                scores.append(table[part.grade_id][0])
        stats.append(PartStats(part, tuple(scores), pending, missing))
    return stats


def _num(x: float) -> str:
    """A score as short text: 3, 1.5, 0.333."""
    return f"{x:g}" if x == round(x, 3) else f"{x:.3f}"


def _label(stat: PartStats, stats: list[PartStats]) -> str:
    # The notebook name only matters when an assignment has several notebooks.
    several = len({s.part.notebook for s in stats}) > 1
    return f"{stat.part.notebook}:{stat.part.grade_id}" if several else stat.part.grade_id


def csv_rows(stats: list[PartStats]) -> list[dict[str, str]]:
    """The CSV table as rows of strings (keys: :data:`CSV_COLUMNS`). Rates are fractions in
    [0, 1] rounded to 4 decimals, empty when no one is graded; ``distribution`` is
    ``score:students`` pairs separated by spaces."""
    rows = []
    for s in stats:
        rows.append({
            "notebook": s.part.notebook, "grade_id": s.part.grade_id, "kind": s.kind,
            "max_points": _num(s.part.points), "students": str(s.students),
            "graded": str(s.graded), "pending": str(s.pending), "missing": str(s.missing),
            "full_marks": str(s.full_marks), "partial": str(s.partial), "zero": str(s.zero),
            "pass_rate": "" if s.pass_rate is None else f"{round(s.pass_rate, 4):g}",
            "mean_fraction": "" if s.mean_fraction is None else f"{round(s.mean_fraction, 4):g}",
            "distribution": " ".join(f"{_num(k)}:{v}" for k, v in s.distribution.items()),
        })
    return rows


def write_csv(stats: list[PartStats], path: Path | str) -> Path:
    """Write :func:`csv_rows` to ``path`` (with a header row); return the path."""
    path = Path(path)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(csv_rows(stats))
    return path


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "~"


def text_table(stats: list[PartStats], assignment: str, width: int = 100) -> str:
    """The table as aligned plain text that fits ``width`` columns (part names longer than
    :data:`MAX_LABEL` are cut with ``~``; the distribution wraps onto continuation lines), a
    legend, and the hardest autograded parts."""
    def pct(x: float | None) -> str:
        return "pending" if x is None else f"{100 * x:.0f}%"

    header = ["part", "kind", "max", "graded", "pending", "pass", "mean", "distribution"]
    rows = [[_cut(_label(s, stats), MAX_LABEL), s.kind, _num(s.part.points), str(s.graded),
             str(s.pending), pct(s.pass_rate), pct(s.mean_fraction),
             " ".join(f"{_num(k)}:{v}" for k, v in s.distribution.items())
             + (f"  ({s.missing} missing)" if s.missing else "")]
            for s in stats]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header) - 1)]
    left = {0, 1}  # text columns left-aligned, numbers right-aligned
    indent = sum(widths) + 2 * len(widths)
    # The distribution wraps in its column, or, when that column would be narrower than
    # MIN_DIST and some distribution does not fit in it, goes on indented lines below each row.
    below = width - indent < MIN_DIST and any(len(r[-1]) > width - indent for r in rows)
    dist_w = width - 4 if below else width - indent

    def lines(values: list[str]) -> list[str]:
        head = "  ".join(v.ljust(w) if i in left else v.rjust(w)
                         for i, (v, w) in enumerate(zip(values, widths)))
        parts = textwrap.wrap(values[-1], dist_w, break_on_hyphens=False) or [""]
        if below:
            if values is header:
                return [head.rstrip()]
            return [head.rstrip()] + ["    " + p for p in parts if p]
        return [(head + "  " + parts[0]).rstrip()] + [" " * indent + p for p in parts[1:]]

    table = (["(distribution of each part: on the lines below it)"] if below else []) + lines(header)
    table.append("-" * min(width, max(len(line) for r in rows for line in lines(r))))
    for r in rows:
        table += lines(r)
    n = max(s.students for s in stats)
    out = [f"{assignment}: {n} student(s) with an autograded submission", *table, ""]
    out += textwrap.wrap(
        "pass = full marks among graded students; mean = mean of score / max among graded "
        "students; pending = written answers awaiting a grader (not counted as 0); "
        "distribution = score:students.", width)
    auto = sorted((s for s in stats if not s.part.manual and s.mean_fraction is not None),
                  key=lambda s: (s.mean_fraction, s.pass_rate))
    if auto:
        out += textwrap.wrap("Hardest autograded parts (lowest mean): " + ", ".join(
            f"{_cut(_label(s, stats), MAX_LABEL)} ({pct(s.mean_fraction)})" for s in auto[:3]), width,
            break_on_hyphens=False)
    return "\n".join(out)


#: Figure categories: (attribute of PartStats, legend label, colour, hatch).
_CATEGORIES = (
    ("full_marks", "full marks", "#2e7d32", ""),
    ("partial", "partial credit", "#f9a825", ""),
    ("zero", "zero", "#c62828", ""),
    ("pending", "pending (manual, not graded yet)", "#bdbdbd", "//"),
    ("missing", "no grade in the submission", "#ffffff", ".."),
)


def plot(stats: list[PartStats], assignment: str, path: Path | str) -> Path:
    """Write the report figure of one assignment as a PNG to ``path``; return the path.

    Parts run top to bottom in notebook order; manually graded parts are labelled
    ``[manual]``. Drawn on matplotlib's Agg canvas (no display, no pyplot state).
    """
    import numpy as np
    from matplotlib.figure import Figure

    labels = [_label(s, stats) + (" [manual]" if s.part.manual else "") for s in stats]
    y = np.arange(len(stats))
    fig = Figure(figsize=(13, 2.0 + 0.34 * len(stats)), layout="constrained")
    share_ax, score_ax = fig.subplots(1, 2, sharey=True, width_ratios=(1, 1.2))

    left = np.zeros(len(stats))
    for attr, name, colour, hatch in _CATEGORIES:
        counts = np.array([getattr(s, attr) for s in stats], dtype=float)
        if not counts.any() and attr == "missing":
            continue
        share = counts / np.array([max(s.students, 1) for s in stats])
        share_ax.barh(y, share, left=left, color=colour, hatch=hatch, edgecolor="#616161",
                      linewidth=0.5, label=name)
        left += share
    share_ax.set_xlim(0, 1)
    share_ax.set_xlabel("share of students")
    share_ax.set_title("Outcome per part")
    share_ax.set_yticks(y, labels)
    share_ax.invert_yaxis()  # the notebook's first part on top

    # Deterministic jitter so that students with the same score stay visible.
    rng = np.random.default_rng(0)
    for i, s in enumerate(stats):
        fr = np.array(s.fractions)
        if fr.size:
            score_ax.scatter(fr, i + rng.uniform(-0.22, 0.22, fr.size), s=14, alpha=0.6,
                             color="#1565c0", linewidths=0)
            score_ax.plot([s.mean_fraction] * 2, [i - 0.38, i + 0.38], color="black", lw=2)
        if s.pending:
            score_ax.text(1.05, i, f"{s.pending} pending", va="center", fontsize="small",
                          color="#616161")
    score_ax.plot([], [], color="black", lw=2, label="mean")
    score_ax.scatter([], [], s=14, color="#1565c0", label="one student")
    score_ax.set_xlim(-0.03, 1.25)  # room on the right for the "pending" counts
    score_ax.set_xticks(np.linspace(0, 1, 6))
    score_ax.set_xlabel("score / max points")
    score_ax.set_title("Score distribution per part")
    score_ax.grid(axis="x", alpha=0.3)
    # One legend for both panels, below them (constrained layout makes room for it).
    handles = share_ax.get_legend_handles_labels()[0] + score_ax.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles),
               fontsize="small", frameon=False)

    n = max(s.students for s in stats)
    fig.suptitle(f"{assignment}: results per graded part ({n} students)")
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def write_report(root: Path | str, assignment: str, out: Path | str,
                 students: list[str] | None = None) -> tuple[list[PartStats], Path, Path]:
    """Compute the statistics and write ``<assignment>_parts.csv`` and ``<assignment>_parts.png``
    into ``out`` (created if missing). Returns ``(stats, csv_path, png_path)``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stats = class_stats(root, assignment, students)
    csv_path = write_csv(stats, out / f"{assignment}_parts.csv")
    png_path = plot(stats, assignment, out / f"{assignment}_parts.png")
    return stats, csv_path, png_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grading.class_report",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("assignment")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: reports/ in the course root)")
    parser.add_argument("--root", type=Path, default=COURSE_ROOT, help="course root")
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else args.root / "reports"
    try:
        stats, csv_path, png_path = write_report(args.root, args.assignment, out)
    except (FileNotFoundError, ValueError) as err:
        print(f"class_report: {err}", file=sys.stderr)
        return 1
    print(text_table(stats, args.assignment))
    print(f"\ntable: {csv_path}\nfigure: {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
