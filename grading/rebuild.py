"""The notebook that is graded: the release's cells and metadata, the student's sources.

A submission is a file the student controls entirely: cell metadata (nbgrader's fields, tags
such as ``skip-execution``), outputs, attachments, the kernelspec. None of it is trusted.
:func:`rebuild` takes from the submission only *sources*:

- of each answer cell (code or written answer), found by its grade id (a missing one is the
  release's unanswered stub);
- of the cells the student added or edited without a grade id (the notebook's free cells are
  theirs), kept after the graded cell they followed, as fresh cells with no metadata;
- of images pasted into markdown cells: PNG, JPEG or GIF attachments within a size budget (they
  are what a human grader reads); anything else attached is dropped.

Every other cell, and all metadata, come from the release notebook; test cells get their hidden
parts back from the gradebook in nbgrader's next step (``OverwriteCells``). Grade cells are in
the release's order whatever the submission's order; a copy of a grade cell is an ordinary
cell. :class:`RebuildFromRelease` runs this as the first of nbgrader's sanitizing steps; what it
changed is listed in a "Grading notes" cell at the top. The submitted file itself is never
modified (intake, :mod:`grading.intake`, handles files nbgrader cannot read at all).
"""
from __future__ import annotations

import base64
import copy
import os
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

NOTES_TITLE = "### Grading notes"
#: Attachments kept on markdown cells, and the budget per cell (decoded bytes).
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif")
MAX_ATTACHMENT_BYTES = 4 * 1024 ** 2


def _grade_id(cell: NotebookNode) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if meta.get("grade") or meta.get("solution") or meta.get("locked") or meta.get("task"):
        return meta.get("grade_id")
    return None


def _is_answer(cell: NotebookNode) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def _source(cell: NotebookNode) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(str(s) for s in source)
    return source if isinstance(source, str) else ""


def _attachments(cell: NotebookNode, notes: list[str], where: str) -> dict | None:
    """The cell's raster images, validated (base64 that decodes, within the budget)."""
    found = cell.get("attachments")
    if not isinstance(found, dict) or not found:
        return None
    kept, used, dropped = {}, 0, []
    for name, bundle in found.items():
        mime, data = next(iter(bundle.items())) if isinstance(bundle, dict) and len(bundle) == 1 else ("", None)
        try:
            size = len(base64.b64decode(data, validate=True)) if mime in IMAGE_TYPES and isinstance(data, str) else -1
        except ValueError:
            size = -1
        if size < 0 or used + size > MAX_ATTACHMENT_BYTES or not isinstance(name, str):
            dropped.append(str(name)[:60])
            continue
        kept[name] = {mime: data}
        used += size
    if dropped:
        notes.append(f"attachments of {where} that are not PNG/JPEG/GIF images or exceed "
                     f"{MAX_ATTACHMENT_BYTES // 2**20} MB were left out of grading: {', '.join(dropped)}")
    return kept or None


def _fresh(cell: NotebookNode, index: int, notes: list[str], where: str) -> NotebookNode:
    """A new cell with only the student's source (and validated images for markdown)."""
    kind = cell.get("cell_type")
    source = _source(cell)
    if kind == "code":
        new = nbformat.v4.new_code_cell(source)
    elif kind == "raw":
        new = nbformat.v4.new_raw_cell(source)
    else:
        new = nbformat.v4.new_markdown_cell(source)
        images = _attachments(cell, notes, where)
        if images:
            new.attachments = images
    new.id = f"student-{index}"
    return new


def rebuild(student: NotebookNode, template: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """The notebook to grade (see the module docstring) and notes on what differed from the
    submission's structure."""
    order = [gid for gid in (_grade_id(c) for c in template.cells) if gid]
    template_cells = {_grade_id(c): c for c in template.cells if _grade_id(c)}
    notes: list[str] = []
    answers: dict[str, NotebookNode] = {}
    followers: dict[str | None, list[NotebookNode]] = {None: []}
    student_order: list[str] = []
    anchor: str | None = None
    for cell in student.cells:
        if not isinstance(cell, dict):
            continue
        gid = _grade_id(cell)
        if gid in template_cells and gid not in student_order:
            student_order.append(gid)
            anchor = gid
            if _is_answer(template_cells[gid]):
                answers[gid] = cell
            continue
        if gid is not None:
            notes.append(f"a copy of (or unknown) graded cell `{gid}` was kept as an ordinary cell")
        followers.setdefault(anchor, []).append(cell)
    for gid in order:
        meta = template_cells[gid].get("metadata", {}).get("nbgrader", {})
        if _is_answer(template_cells[gid]) and gid not in answers:
            notes.append(f"the answer cell `{gid}` was missing and was restored from the released "
                         "notebook (unanswered)")
        elif meta.get("grade") and gid not in student_order:
            notes.append(f"the test cell `{gid}` was missing and was restored from the released notebook")
    if [g for g in order if g in student_order] != student_order:
        notes.append("graded cells were out of order and were put back in the assignment's order "
                     "(your own cells moved with the graded cell above them)")
    counter = iter(range(10 ** 6))
    cells = [_fresh(c, next(counter), notes, "your cell at the top") for c in followers[None]]
    for gid in order:
        cell = copy.deepcopy(template_cells[gid])
        if gid in answers:
            cell.source = _source(answers[gid])
            if cell.cell_type == "markdown":
                images = _attachments(answers[gid], notes, f"`{gid}`")
                cell.pop("attachments", None)
                if images:
                    cell.attachments = images
        cells.append(cell)
        cells.extend(_fresh(c, next(counter), notes, f"your cell after `{gid}`") for c in followers.get(gid, []))
    result = copy.deepcopy(template)
    result.cells = cells
    if result.get("nbformat_minor", 0) < 5:
        for cell in result.cells:
            cell.pop("id", None)
    return result, notes


def with_notes(nb: NotebookNode, notes: list[str]) -> NotebookNode:
    """``nb`` with a "Grading notes" markdown cell first (merged into one already there)."""
    if not notes:
        return nb
    text = "\n".join(f"- {n}" for n in notes)
    first = nb.cells[0] if nb.cells else None
    if first is not None and first.cell_type == "markdown" and _source(first).startswith(NOTES_TITLE):
        first.source = _source(first).rstrip("\n") + "\n" + text
        return nb
    cell = nbformat.v4.new_markdown_cell(NOTES_TITLE + "\n" + text)
    if nb.get("nbformat_minor", 0) < 5:
        cell.pop("id", None)
    else:
        cell.id = "grading-notes"
    nb.cells.insert(0, cell)
    return nb


class RebuildFromRelease(NbGraderPreprocessor):
    """nbgrader sanitizing step: replace the submission by :func:`rebuild` of it against
    ``release/<assignment>/<notebook>.ipynb`` of the course."""

    course_root = Unicode("", config=True, help="The course root (where release/ is).")

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        info = resources["nbgrader"]
        root = Path(self.course_root or os.getcwd())
        template_path = root / "release" / info["assignment"] / f"{info['notebook']}.ipynb"
        template = nbformat.read(str(template_path), as_version=4)
        rebuilt, notes = rebuild(nb, template)
        for note in notes:
            self.log.warning("%s/%s: %s", info["student"], info["notebook"], note)
        return with_notes(rebuilt, notes), resources
