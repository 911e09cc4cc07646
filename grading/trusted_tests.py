"""Test cells run by the grader, never by the student's kernel.

While a notebook is autograded, every test cell, visible and hidden alike, runs here, in the
grader's own process (:class:`grading.execute.TrustedExecute` hands them over):

- a namespace of trusted code only: the notebook's locked set-up cells (from the release) and
  the test cells before this one (hidden tests restored from the gradebook);
- the names the assignment asks students to define (:func:`contract_names`: those bound by the
  release's answer cells, e.g. ``grad_cam``, ``TARGET_LAYERS``) are looked up in the student's
  kernel at the start of each test cell: a function becomes an
  :class:`autograder.remote.RemoteFunction` (calls run in the kernel, values come back as plain
  data), plain data is copied, anything else becomes an :class:`Unusable` placeholder;
- the cell's source runs as IPython would run it (its last expression is its value); its
  stdout, then an error (the exception's type and message, no trusted traceback) or its value
  (nbgrader's partial credit) become the cell's outputs, written by the grader;
- provenance is judged from the notebook's source (:mod:`autograder.delegation`): a graded name
  whose definition uses the reference, the autograder, a test-only library or the toolbox's own
  implementation earns nothing in this cell; a dynamic lookup flags the cell for review.

So nothing the kernel does (display hooks, exception hooks, input transformers, event
callbacks, metadata, files) can decide a score: the kernel answers questions, the grader judges.
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import io
import random
import time
import warnings
from typing import Any, Callable

import nbformat
from nbformat import NotebookNode

from autograder import delegation, remote
from grading.cells import _meta, error, is_locked_code, note

#: Most characters of a test cell's stdout kept in the notebook.
MAX_STDOUT = 200_000


def _bound_at_top(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def contract_names(release: NotebookNode) -> list[str]:
    """Names the release's code answer cells define at their top level (functions, classes,
    assigned values), in notebook order: what the tests may ask the student's kernel for."""
    names: list[str] = []
    for cell in release.cells:
        if cell.get("cell_type") == "code" and _meta(cell).get("solution"):
            names += [n for n in _bound_at_top(cell.source) if n not in names]
    return names


def student_cells(nb: NotebookNode) -> list[delegation.Cell]:
    """The student's code: answer cells (labelled by grade id) and their own code cells
    (labelled by the graded cell they follow)."""
    cells, anchor = [], "the start"
    for cell in nb.cells:
        meta = _meta(cell)
        if cell.get("cell_type") != "code":
            anchor = meta.get("grade_id", anchor)
            continue
        if meta.get("solution"):
            cells.append(delegation.Cell(meta.get("grade_id", "?"), cell.source))
            anchor = meta.get("grade_id", anchor)
        elif meta.get("grade_id"):
            anchor = meta["grade_id"]
        else:
            cells.append(delegation.Cell(f"your cell after `{anchor}`", cell.source))
    return cells


class Unusable:
    """Stands for a notebook name whose value cannot travel (a module, a custom object)."""

    def __init__(self, name: str, type_name: str):
        self._name, self._type = name, type_name

    def _fail(self, *args, **kwargs):
        raise TypeError(f"`{self._name}` is a {self._type} object in your notebook; "
                        "the tests need what the assignment asks for")

    __call__ = _fail

    def __getattr__(self, attr):
        if attr.startswith("_"):
            raise AttributeError(attr)
        self._fail()

    def __repr__(self) -> str:
        return f"<{self._type} object>"


def _stream(text: str) -> NotebookNode:
    if len(text) > MAX_STDOUT:
        text = text[:MAX_STDOUT] + f"\n[... {len(text) - MAX_STDOUT} more characters]\n"
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def _describe_exception(err: BaseException) -> tuple[str, str]:
    """(ename, evalue) of an exception raised while a test ran."""
    if isinstance(err, remote.StudentError):
        return err.type_name or "Error", f"{err.message}" + (f" ({err.where})" if err.where else "")
    if isinstance(err, remote.CallTimeout):
        return "CellTimeoutError", f"the cell's time limit ran out while your function ran ({err})"
    if isinstance(err, remote.KernelLost):
        return "DeadKernelError", f"your kernel stopped working: {err}"
    if isinstance(err, remote.InvalidReply):
        return "InvalidReply", str(err)
    return type(err).__name__, str(err)


class _RandomState:
    """The grader's global random state, put back after each trusted cell."""

    def __enter__(self):
        import numpy as np
        import torch

        self.saved = (torch.random.get_rng_state(), np.random.get_state(), random.getstate(),
                      torch.is_grad_enabled())
        return self

    def __exit__(self, *exc):
        import numpy as np
        import torch

        torch.random.set_rng_state(self.saved[0])
        np.random.set_state(self.saved[1])
        random.setstate(self.saved[2])
        torch.set_grad_enabled(self.saved[3])
        return False


class TrustedTests:
    """The test cells of one notebook of one student.

    ``release``: the assignment's release notebook (which names are the student's);
    ``graded``: the notebook being graded (its student cells are read for provenance);
    ``connect``: returns the :class:`~autograder.remote.RemoteKernel` of the student's kernel
    (called lazily, again after a restart); ``cell_seconds``: how long the student's code may run
    per test cell; ``toolbox``: graded name -> toolbox implementations of it. ``local``: instead
    of a kernel, a namespace of this process holding the student's names (the test suite grades
    many example submissions this way, with the very same test runs and provenance rules)."""

    def __init__(self, release: NotebookNode, graded: NotebookNode,
                 connect: Callable[[], remote.RemoteKernel] | None, cell_seconds: float,
                 toolbox: dict[str, tuple[str, ...]] | None = None, local: dict | None = None):
        self.contract = contract_names(release)
        locked = [c.source for c in graded.cells if is_locked_code(c)]
        self.analysis = delegation.Analysis(student_cells(graded), locked)
        self.connect = connect
        self.cell_seconds = cell_seconds
        self.toolbox = toolbox or {}
        self.kernel: remote.RemoteKernel | None = None
        self.kernel_lost = False
        self.local = local
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
        self._seed()

    @staticmethod
    def _seed() -> None:
        import matplotlib
        import numpy as np
        import torch

        matplotlib.use("Agg", force=True)
        torch.manual_seed(0)
        np.random.seed(0)
        random.seed(0)

    def reset_kernel(self) -> None:
        """After the kernel was restarted: connect again at the next test."""
        if self.kernel is not None:
            self.kernel.close()
        self.kernel, self.kernel_lost = None, False

    def close(self) -> None:
        if self.kernel is not None:
            self.kernel.close()
            self.kernel = None

    # ------------------------------------------------------------------ running cells
    def _exec(self, source: str) -> tuple[str, Any, BaseException | None]:
        """Run ``source`` here: (stdout, value of the last expression, exception or None)."""
        out = io.StringIO()
        value, failure = None, None
        with _RandomState(), warnings.catch_warnings(), contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            try:
                tree = ast.parse(source)
                last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
                exec(compile(tree, "<test cell>", "exec"), self.namespace)
                if last is not None:
                    value = eval(compile(ast.Expression(last.value), "<test cell>", "eval"), self.namespace)
            except Exception as err:  # noqa: BLE001 - every failure of a test is an outcome
                failure = err
            finally:
                import matplotlib.pyplot as plt

                plt.close("all")
        return out.getvalue(), value, failure

    def run_locked(self, source: str) -> None:
        """A locked set-up cell: run here too (the tests use its imports), output discarded."""
        self._exec(source)

    def _bind(self, kernel: remote.RemoteKernel) -> None:
        for name, found in kernel.describe(self.contract).items():
            kind = found["kind"]
            if kind == "missing":
                self.namespace.pop(name, None)
            elif kind == "callable":
                self.namespace[name] = remote.RemoteFunction(kernel, name)
            elif kind == "data":
                self.namespace[name] = found.get("value")
            else:
                self.namespace[name] = Unusable(name, str(found.get("type", "unknown")))

    def _bind_local(self) -> None:
        for name in self.contract:
            if name in self.local:
                self.namespace[name] = self.local[name]
            else:
                self.namespace.pop(name, None)

    def referenced(self, source: str) -> list[str]:
        """The student's names a test cell uses."""
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return []
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        return [n for n in self.contract if n in used]

    def run_test(self, source: str) -> tuple[list[NotebookNode], list[str]]:
        """Run one test cell; its outputs and what the instructor should review (may be empty)."""
        names = self.referenced(source)
        findings = {n: self.analysis.findings(n, self.toolbox.get(n, ())) for n in names}
        findings = {n: f for n, f in findings.items() if f}
        review = sorted({f.describe() for n in names for f in self.analysis.review(n)})
        outputs: list[NotebookNode] = []
        stdout, value, failure = "", None, None
        try:
            if self.local is not None:
                self._bind_local()
            else:
                if self.kernel_lost:
                    raise remote.KernelLost("it stopped working in an earlier cell")
                if self.kernel is None:
                    self.kernel = self.connect()
                self.kernel.budget = self.cell_seconds
                self._bind(self.kernel)
        except (remote.KernelLost, remote.CallTimeout, remote.InvalidReply) as err:
            failure = err
        if failure is None:
            stdout, value, failure = self._exec(source)
        if isinstance(failure, remote.KernelLost) or (self.kernel is not None and self.kernel.channel.lost):
            self.kernel_lost = True
        if stdout:
            outputs.append(_stream(stdout))
        for name, found in findings.items():
            outputs.append(note(f"No credit for `{name}` in this cell: its definition uses "
                                f"{delegation.describe(found)}, which is the reference, the autograder, "
                                "a test-only library or the toolbox's own implementation of what you are "
                                "asked to write. Write the function yourself."))
        if review:
            outputs.append(note("Flagged for the instructor's review: " + "; ".join(review[:5])
                                + ". A computed name hides what it reaches; the score stands until an "
                                "instructor has looked."))
        if findings:
            outputs.append(error("NoCredit", "the graded function delegates to existing code: "
                                 + ", ".join(f"`{n}`" for n in findings)))
        elif failure is not None:
            outputs.append(error(*_describe_exception(failure)))
        elif value is not None:
            outputs.append(nbformat.v4.new_output("execute_result", data={"text/plain": repr(value)},
                                                  execution_count=None))
        return outputs, review
