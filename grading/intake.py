"""Submission intake: notebooks nbgrader could not read at all are repaired before it grades.

nbgrader drops a student from a whole autograde run (no grades, no feedback) when a notebook is
unreadable (truncated JSON, an empty file) or carries another name than the released one.
:func:`repair_submission` runs as nbgrader's ``Autograde.pre_convert_hook``
(``nbgrader_config.py``), in the grader's process, before each student's notebooks are read:

- **unreadable** notebook: replaced by the released notebook (unanswered), so the student is
  graded (0 for the autograded parts) and gets feedback that says what happened;
- **renamed** notebook (``Copy of L2A2_gradcam.ipynb``, ``mine.ipynb``): when the released name
  is missing and exactly one other notebook is there, it is graded under the released name.

- **special files**: symbolic links, FIFOs, sockets and device nodes anywhere in the submission
  folder are moved, unfollowed, into ``.special/`` before nbgrader copies the folder
  (nbgrader's copy would follow a link with the grader's rights); a notebook that is one is
  graded as the blank release.

An intact notebook is left byte-for-byte as submitted. Cell-level damage (deleted, reordered or
copied cells, forged metadata) needs no file repair: :mod:`grading.rebuild` grades every
submission as the release's cells with the student's sources.

Each repaired notebook starts with a "Grading notes" cell listing what was done. Nothing is
lost: before the first repair, the submitted notebooks are copied to ``.original/`` in the
submission folder (nbgrader ignores dot-folders), and later runs repair from that copy, so
re-running autograde gives the same result. A new submission (the files differ from what the
last repair wrote) is snapshotted afresh; the older snapshot is kept as ``.original-<n>/``.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

ORIGINALS = ".original"
MANIFEST = "manifest.json"
NOTES_TITLE = "### Grading notes"


def _grade_id(cell: NotebookNode) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if meta.get("grade") or meta.get("solution") or meta.get("locked") or meta.get("task"):
        return meta.get("grade_id")
    return None


def _read(path: Path) -> tuple[NotebookNode | None, str | None]:
    """The notebook, or None and why it cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        return None, f"it could not be opened ({err.strerror})"
    if not raw.strip():
        return None, "the file is empty"
    try:
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except UnicodeDecodeError:
        return None, "it is not a text file"
    except json.JSONDecodeError as err:
        return None, f"it is not valid JSON ({err.msg} at line {err.lineno}: truncated?)"
    except Exception as err:  # noqa: BLE001 - nbformat's validation errors vary by version
        return None, f"it is not a valid notebook ({str(err).splitlines()[0][:120]})"
    return nb, None


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _with_notes(nb: NotebookNode, notes: list[str]) -> NotebookNode:
    text = NOTES_TITLE + "\n" + "\n".join(f"- {n}" for n in notes)
    nb = copy.deepcopy(nb)
    cell = nbformat.v4.new_markdown_cell(text)
    if nb.get("nbformat_minor", 0) < 5:  # cell ids exist from nbformat 4.5 on
        cell.pop("id", None)
    else:  # a fixed id, not a random one: repairing again writes the same bytes
        cell.id = "grading-notes"
    nb.cells.insert(0, cell)
    return nb


def _snapshot(folder: Path) -> Path:
    """``.original/`` holding the submitted notebooks as they are now (older snapshot kept)."""
    store = folder / ORIGINALS
    if store.exists():
        n = 1
        while (folder / f"{ORIGINALS}-{n}").exists():
            n += 1
        store.rename(folder / f"{ORIGINALS}-{n}")
    store.mkdir()
    for path in sorted(folder.glob("*.ipynb")):
        shutil.copy2(path, store / path.name)
    return store


def _originals(folder: Path) -> Path | None:
    """The snapshot to repair from, or None when the folder holds a new, unrepaired submission."""
    store = folder / ORIGINALS
    manifest = store / MANIFEST
    if not manifest.exists():
        return None
    written = json.loads(manifest.read_text()).get("written", {})
    current = {p.name: _sha(p) for p in folder.glob("*.ipynb")}
    return store if current == written else None


SPECIAL = ".special"


def quarantine(folder: Path) -> list[str]:
    """Move every entry of ``folder`` that is not a regular file or folder (links included,
    never followed) into ``.special/`` (nbgrader ignores dot folders); return their relative
    paths."""
    moved = []
    for dirpath, dirnames, filenames in os.walk(folder):
        rel_dir = Path(dirpath).relative_to(folder)
        if rel_dir.parts[:1] and rel_dir.parts[0].startswith("."):
            dirnames[:] = []
            continue
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode) or (stat.S_ISDIR(mode) and not path.is_symlink()):
                continue
            target = folder / SPECIAL / rel_dir / name
            if target.exists() or target.is_symlink():
                target = target.with_name(f"{name}.{len(moved)}")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(path, target)  # a rename moves the link itself
            moved.append(str(rel_dir / name))
        dirnames[:] = [d for d in dirnames if (Path(dirpath) / d).is_dir() and not (Path(dirpath) / d).is_symlink()]
    return moved


def plan(folder: Path, release_folder: Path, originals: Path | None = None, special: list[str] = ()
         ) -> tuple[dict[str, NotebookNode], dict[str, list[str]]]:
    """What the folder's notebooks should be graded as: {released name: notebook} and the notes
    per released name. Reads ``originals`` (the snapshot an earlier repair left, see
    :func:`_originals`) when given, else the folder."""
    source = originals or folder
    expected = sorted(p.stem for p in release_folder.glob("*.ipynb"))
    present = {p.stem: p for p in sorted(source.glob("*.ipynb"))}
    unknown = [name for name in present if name not in expected]
    mapping = {name: present[name] for name in expected if name in present}
    notes: dict[str, list[str]] = {name: [] for name in expected}
    missing = [name for name in expected if name not in mapping]
    for name in missing:
        if f"{name}.ipynb" in special:
            notes[name].append(f"`{name}.ipynb` was not a regular file (a link or a special file): it "
                               "was graded as the released, unanswered notebook")
            mapping[name] = release_folder / f"{name}.ipynb"
    missing = [name for name in expected if name not in mapping]
    if len(missing) == 1 and len(unknown) == 1:
        mapping[missing[0]] = present[unknown[0]]
        notes[missing[0]].append(f"your notebook was named `{unknown[0]}.ipynb`; it was graded as "
                                 f"`{missing[0]}.ipynb`")
    if special and expected:
        notes[expected[0]].append("not regular files, set aside and not used: "
                                  + ", ".join(f"`{p}`" for p in special[:10]))
    result: dict[str, NotebookNode] = {}
    for name, path in mapping.items():
        template = nbformat.read(str(release_folder / f"{name}.ipynb"), as_version=4)
        nb, why = _read(path)
        if nb is None:
            notes[name].append(f"`{path.name}` could not be read: {why}. It was graded as the "
                               "released, unanswered notebook; your file is kept for the "
                               "instructor to look at.")
            result[name] = template
            continue
        result[name] = nb
    return result, {k: v for k, v in notes.items() if v}


def repair_folder(folder: Path, release_folder: Path) -> list[Path]:
    """Repair one ``submitted/<student>/<assignment>/`` folder in place; return the notebooks
    nbgrader should grade. Untouched (and nothing written) when no repair is needed."""
    special = quarantine(folder)
    originals = _originals(folder)
    graded, notes = plan(folder, release_folder, originals, special)
    if not notes and originals is None:
        return sorted(folder.glob("*.ipynb"))
    if originals is None:
        _snapshot(folder)
    for path in folder.glob("*.ipynb"):
        path.unlink()
    written = {}
    for name, nb in graded.items():
        path = folder / f"{name}.ipynb"
        nbformat.write(_with_notes(nb, notes[name]) if notes.get(name) else nb, str(path))
        written[path.name] = _sha(path)
    (folder / ORIGINALS / MANIFEST).write_text(json.dumps({"written": written}, indent=1))
    return sorted(folder / n for n in written)


def repair_submission(assignment: str, student: str, notebooks: list[str],
                      **_: Any) -> None:
    """nbgrader ``pre_convert_hook``: repair the submission folder of ``notebooks`` and update
    that list in place (nbgrader grades the list it passed, which is this same object)."""
    if not notebooks:
        return
    folder = Path(os.path.abspath(notebooks[0])).parent  # never resolved: a link is not followed
    course_root = folder.parents[2]
    release_folder = course_root / "release" / folder.name
    if not release_folder.is_dir():
        return
    notebooks[:] = [str(p) for p in repair_folder(folder, release_folder)]
