"""What a notebook cell is to the grader (from its nbgrader metadata), and outputs it writes.

Only ever applied to notebooks whose metadata comes from the release (:mod:`grading.rebuild`),
never to a submission's own metadata.
"""
from __future__ import annotations

import nbformat
from nbformat import NotebookNode


def _meta(cell: NotebookNode) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_test_cell(cell: NotebookNode) -> bool:
    """An nbgrader grade cell that is not an answer (a visible or hidden test cell)."""
    meta = _meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution") and cell.get("cell_type") == "code"


def is_locked_code(cell: NotebookNode) -> bool:
    """A read-only instructor code cell that is not a test (the set-up cell)."""
    meta = _meta(cell)
    return (cell.get("cell_type") == "code" and bool(meta.get("locked")) and not meta.get("grade")
            and not meta.get("solution"))


def note(text: str) -> NotebookNode:
    """A plain-text note in a cell's outputs (display data: never read as a score, and not a
    stream, which nbgrader's LimitOutput would cut)."""
    return nbformat.v4.new_output("display_data", data={"text/plain": text})


def error(ename: str, evalue: str) -> NotebookNode:
    """An error output: nbgrader scores a test cell holding one 0."""
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue,
                                  traceback=[f"\x1b[0;31m{ename}\x1b[0m: {evalue}"])
