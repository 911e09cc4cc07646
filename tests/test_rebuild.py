"""grading/rebuild.py: the notebook that is graded is the release's cells and metadata with the
student's sources only. Nothing else of a submission (tags, nbgrader fields, outputs, kernelspec,
non-image attachments) survives."""
from __future__ import annotations

import base64
import copy

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output

from grading.rebuild import rebuild, with_notes
from grading.submissions import fill
from support import instructor_answers, release_notebook

A = "L2A2_gradcam"


def _gid(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _by_id(nb):
    return {_gid(c): c for c in nb.cells if _gid(c)}


def submission():
    return fill(release_notebook(A), instructor_answers(A))


def test_an_honest_submission_keeps_its_sources_and_gets_the_release_metadata():
    release, sub = release_notebook(A), submission()
    rebuilt, notes = rebuild(sub, release)
    assert notes == []
    assert [c.source for c in rebuilt.cells] == [c.source for c in sub.cells]
    assert [c.metadata for c in rebuilt.cells if _gid(c)] == [c.metadata for c in release.cells if _gid(c)]
    assert rebuilt.metadata == release.metadata


def test_forged_metadata_tags_outputs_and_kernelspec_are_ignored():
    release, sub = release_notebook(A), submission()
    for cell in sub.cells:
        meta = cell.metadata.setdefault("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):   # every test cell
            meta.update(points=0, grade=False, locked=False)
            cell.metadata["tags"] = ["skip-execution", "raises-exception"]
            cell.source = "pass  # the student's version of the test"
            cell.outputs = [new_output("execute_result", data={"text/plain": "1000"})]
    sub.metadata["kernelspec"] = {"name": "evil", "display_name": "evil", "language": "python"}
    rebuilt, _ = rebuild(sub, release)
    tests = {g: c for g, c in _by_id(rebuilt).items() if g.startswith("test_")}
    assert tests and all(c.metadata == _by_id(release)[g].metadata for g, c in tests.items())
    assert all(c.source == _by_id(release)[g].source and not c.get("outputs") for g, c in tests.items())
    assert all("tags" not in c.metadata for c in rebuilt.cells)
    assert rebuilt.metadata["kernelspec"] == release.metadata["kernelspec"]


def test_students_own_cells_keep_their_source_and_place_but_nothing_else():
    release, sub = release_notebook(A), submission()
    at = next(i for i, c in enumerate(sub.cells) if _gid(c) == "grad_cam")
    mine = new_code_cell("print('mine')", metadata={"tags": ["skip-execution"], "nbgrader": {"grade": True, "grade_id": "fake", "points": 99}})
    mine.outputs = [new_output("stream", name="stdout", text="old output")]
    sub.cells.insert(at + 1, mine)
    rebuilt, notes = rebuild(sub, release)
    after = rebuilt.cells[[_gid(c) for c in rebuilt.cells].index("grad_cam") + 1]
    assert after.source == "print('mine')" and after.metadata == {} and after.outputs == []
    assert any("fake" in n for n in notes)


def test_missing_and_reordered_cells_take_the_release_structure():
    release, sub = release_notebook(A), submission()
    sub.cells = [c for c in sub.cells if _gid(c) not in ("localization_box", "test_grad_cam_hidden")]
    i = next(k for k, c in enumerate(sub.cells) if _gid(c) == "grad_cam")
    j = next(k for k, c in enumerate(sub.cells) if _gid(c) == "threshold_segmentation")
    sub.cells[i], sub.cells[j] = sub.cells[j], sub.cells[i]
    rebuilt, notes = rebuild(sub, release)
    assert [_gid(c) for c in rebuilt.cells if _gid(c)] == [_gid(c) for c in release.cells if _gid(c)]
    assert _by_id(rebuilt)["localization_box"].source == _by_id(release)["localization_box"].source
    assert _by_id(rebuilt)["grad_cam"].source == instructor_answers(A)["grad_cam"]
    assert any("localization_box" in n and "missing" in n for n in notes)
    assert any("out of order" in n for n in notes)


def test_only_raster_image_attachments_within_budget_survive():
    release, sub = release_notebook(A), submission()
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 100).decode()
    answer = _by_id(sub)["q_limitations"]
    answer.attachments = {"plot.png": {"image/png": png},
                          "x.svg": {"image/svg+xml": "<svg onload='alert(1)'/>"},
                          "bad.png": {"image/png": "not base64!!"}}
    sub.cells.append(new_markdown_cell("![](attachment:big.png)", attachments={
        "big.png": {"image/png": base64.b64encode(b"0" * (5 * 2 ** 20)).decode()}}))
    rebuilt, notes = rebuild(sub, release)
    assert _by_id(rebuilt)["q_limitations"].attachments == {"plot.png": {"image/png": png}}
    assert "attachments" not in rebuilt.cells[-1]
    assert any("x.svg" in n and "bad.png" in n for n in notes) and any("big.png" in n for n in notes)


def test_notes_go_into_one_cell_at_the_top_and_rebuilding_is_deterministic():
    release, sub = release_notebook(A), submission()
    sub.cells = sub.cells[::-1]
    first, notes = rebuild(copy.deepcopy(sub), release)
    second, _ = rebuild(copy.deepcopy(sub), release)
    assert nbformat.writes(first) == nbformat.writes(second)
    noted = with_notes(with_notes(first, notes), ["more"])
    assert noted.cells[0].source.startswith("### Grading notes") and "- more" in noted.cells[0].source
    assert sum(c.source.startswith("### Grading notes") for c in noted.cells) == 1
