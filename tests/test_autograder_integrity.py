"""Tampering with the grader from the notebook's own kernel earns nothing (autograder.integrity and the
copy-aware delegation guard of autograder.student_call), while honest code is untouched.

Cells are run with ``exec``, as IPython does, so the audit hook acts between "cells" exactly as it does
in a grading kernel. The last test runs a real notebook through ``python -m autograder.kernel``."""
from __future__ import annotations

import contextlib
import importlib
import io
import json
import statistics
import sys
import time
import types

import numpy as np
import pytest
import torch

import autograder
import solutions.gradcam
import solutions.segmentation
from autograder import integrity, student_call
from examples.L2A2_gradcam import CORRECT
from support import ROOT, check_scores, instructor_answers, quiet, run_answers
from test_autograder_l2a2 import CHECKS

A = "L2A2_gradcam"
ALTERED = "graded functions are not credited while grading modules are altered"
DELEGATES = "calls the reference solution or the autograder"


@pytest.fixture(autouse=True)
def clean_record():
    """Each test starts and ends with the originals in place and an empty record (in a kernel the
    record is never cleared: one notebook, one process)."""
    integrity.restore()
    integrity.forget()
    yield
    integrity.restore()
    integrity.forget()


@pytest.fixture(scope="module")
def answers() -> dict[str, str]:
    return instructor_answers(A)


@pytest.fixture
def notebook(answers) -> dict:
    """The instructor's answers run as a student's notebook (a fresh namespace per test)."""
    return run_answers(A, answers)


def run_cell(source: str, namespace: dict) -> str:
    """Run ``source`` as a notebook cell (``exec``, like IPython: the audit hook runs first); stdout."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "<cell>", "exec"), namespace)
    return out.getvalue()


def hidden_cell(check: str, function: str, points: float, namespace: dict) -> tuple[float, str]:
    """An nbgrader hidden test cell: looks the check up by name, as the notebooks do."""
    printed = run_cell(f"from autograder import {check}\n__score__ = {check}({function}, points={points})",
                       namespace)
    return namespace["__score__"], printed


# --------------------------------------------------------------------------- honest code
def test_grading_in_process_is_sealed_late_and_intact(notebook):
    assert integrity.sealed() and not integrity.sealed_early()  # sealed by `import autograder`
    for cell, (score, report) in check_scores(CHECKS, notebook).items():
        assert score == CHECKS[cell][2], report
    assert integrity.changes() == [] and integrity.violations() == []


def test_correct_student_implementation_gets_full_marks_after_sealing(answers):
    variant = CORRECT[0]
    scores = check_scores(CHECKS, run_answers(A, variant.answers(dict(answers))))
    for cell, (score, report) in scores.items():
        assert score == CHECKS[cell][2], f"{variant.name} lost points in {cell}:\n{report}"
    assert integrity.violations() == []


def test_ordinary_student_code_is_not_a_violation(notebook):
    run_cell("""
import dataclasses, warnings
import interpkit, numpy, torch
interpkit.my_notes = "added to the toolbox"        # new names in loose namespaces are harmless
torch.my_constant = 3
torch.Tensor.my_helper = lambda self: self.sum()   # new, shadows nothing
numpy.random.seed(0); torch.manual_seed(0)

@dataclasses.dataclass                             # exec inside: the hook runs mid-cell
class Settings:
    steps: int = 3

class TinyNet(torch.nn.Module):                    # subclasses of watched classes
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
    def forward(self, x):
        return self.conv(x).mean(dim=(2, 3))

out = TinyNet()(torch.rand(1, 3, 8, 8))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    warnings.warn("a student's warning")
""", notebook)
    try:
        run_cell("pass", notebook)  # the next cell: the hook verifies
        assert integrity.violations() == []
        score, report = hidden_cell("check_localization_box", "localization_box", 2, notebook)
        assert score == 2.0, report
    finally:
        import interpkit
        del interpkit.my_notes, torch.my_constant, torch.Tensor.my_helper


# --------------------------------------------------------------------------- patching
@pytest.mark.parametrize("target", ["autograder.check_localization_box",
                                    "autograder.segmentation.check_localization_box"])
def test_a_check_patched_in_a_cell_is_replaced_back_before_the_hidden_cell(target, notebook):
    original = autograder.check_localization_box
    run_cell(f"import autograder, autograder.segmentation\n{target} = lambda *a, **k: 2.0", notebook)
    score, report = hidden_cell("check_localization_box", "localization_box", 2, notebook)
    assert score == 0.0
    assert "localization_box: 0 / 2 points" in report  # the real check ran and printed its report
    assert f"{target} was replaced" in report and ALTERED in report
    assert autograder.check_localization_box is original
    assert autograder.segmentation.check_localization_box is original


def test_grad_cam_check_patched_in_a_cell_scores_zero(notebook):
    run_cell("import autograder\nautograder.check_grad_cam = lambda *a, **k: 6", notebook)
    score, report = hidden_cell("check_grad_cam", "grad_cam", 6, notebook)
    assert score == 0.0 and "autograder.check_grad_cam was replaced" in report and ALTERED in report


def _resolve(path: str):
    """The module or class named by a dotted path (``torch.nn.functional``, ``torch.Tensor``)."""
    try:
        return importlib.import_module(path)
    except ImportError:
        owner, _, attr = path.rpartition(".")
        return getattr(_resolve(owner), attr)


@pytest.mark.parametrize("target, replacement, check, function, points", [
    ("torch.allclose", "lambda *a, **k: True", "check_localization_box", "localization_box", 2),
    ("numpy.allclose", "lambda *a, **k: True", "check_threshold_segmentation", "threshold_segmentation", 2),
    ("numpy.testing.assert_allclose", "lambda *a, **k: None", "check_localization_box", "localization_box", 2),
    ("torch.nn.functional.interpolate", "lambda x, *a, **k: x", "check_localization_box", "localization_box", 2),
    ("builtins.isinstance", "lambda obj, cls: True", "check_target_layers", "TARGET_LAYERS", 3),
    ("torch.Tensor.__eq__", "lambda self, other: torch.tensor(True)", "check_localization_box",
     "localization_box", 2),
    ("autograder.report.Report.score", "property(lambda self: self.max_points)", "check_localization_box",
     "localization_box", 2),
    ("interpkit.featureviz.objectives.channel_activation", "lambda acts, channel: acts.sum()",
     "check_localization_box", "localization_box", 2),  # the reference delegates to the toolbox
])
def test_a_library_or_grading_function_patched_in_a_cell_scores_zero(target, replacement, check, function,
                                                                      points, notebook):
    owner_path, _, name = target.rpartition(".")
    owner = _resolve(owner_path)
    original = vars(owner).get(name)
    try:
        run_cell(f"import builtins, numpy, torch, autograder.report, {target.split('.')[0]}\n"
                 f"{target} = {replacement}", notebook)
        score, report = hidden_cell(check, function, points, notebook)
    finally:  # whatever happens, never leave the test process patched
        integrity.restore()
    assert score == 0.0, report
    assert target in report and "was replaced" in report and ALTERED in report
    assert vars(owner).get(name) is original
    assert integrity.changes() == []


def test_patching_inside_the_graded_function_scores_zero_and_is_undone(notebook):
    real = notebook["grad_cam"]
    interpolate = torch.nn.functional.interpolate

    def sneaky(model, layer, image, class_idx=None):
        torch.nn.functional.interpolate = lambda x, *a, **k: x  # the next reference would use it
        return real(model, layer, image, class_idx)

    score, report = quiet(autograder.check_grad_cam, sneaky, points=6)
    assert score == 0.0
    assert "torch.nn.functional.interpolate was replaced" in report and ALTERED in report
    assert torch.nn.functional.interpolate is interpolate


def test_patch_and_clean_up_between_calls_is_caught(notebook):
    """Patched by the first call (so the reference of the next case would use it), put back by the
    second: the state is intact when the check ends, but each student call is followed by a
    restore, which records the change."""
    real = notebook["threshold_segmentation"]
    allclose = np.allclose
    calls = []

    def patch_once_then_clean_up(image, cam, threshold):
        calls.append(1)
        np.allclose = (lambda *a, **k: True) if len(calls) == 1 else allclose
        return real(image, cam, threshold)

    score, report = quiet(autograder.check_threshold_segmentation, patch_once_then_clean_up, points=2)
    assert len(calls) > 2 and np.allclose is allclose
    assert score == 0.0 and "numpy.allclose was replaced" in report


def test_a_change_after_the_report_was_printed_still_scores_zero():
    """Something left behind by student code may act after Report.finish (a __del__, a thread):
    the @graded wrapper restores once more and overrides the score."""
    from autograder.report import Report, graded
    allclose = torch.allclose

    @graded
    def check_something(points: float = 1) -> float:
        report = Report("something")
        report.add("a property", points).expect(True, "")
        score = report.finish()
        torch.allclose = lambda *a, **k: True  # acts after the report was printed
        return score

    score, printed = quiet(check_something)
    assert score == 0.0 and torch.allclose is allclose
    assert "something: 1 / 1 points" in printed  # what finish printed, then the override:
    assert "check_something: 0 points" in printed and "torch.allclose was replaced" in printed


# --------------------------------------------------------------------------- copies of the reference
def _exec_reference(module: str) -> dict:
    namespace: dict = {}
    source = (ROOT / "solutions" / f"{module}.py").read_text()
    exec(compile(source, f"<student copy of {module}>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("module, name, check, points", [
    ("gradcam", "grad_cam", autograder.check_grad_cam, 6),
    ("segmentation", "localization_box", autograder.check_localization_box, 2),
    ("segmentation", "threshold_segmentation", autograder.check_threshold_segmentation, 2),
    ("featureviz", "channel_objective", autograder.check_channel_objective, 1),  # via the toolbox guard
])
def test_exec_copy_of_the_reference_source_gets_no_credit(module, name, check, points):
    copy = _exec_reference(module)[name]
    assert copy.__code__ is not getattr(importlib.import_module(f"solutions.{module}"), name).__code__
    score, report = quiet(check, copy, points=points)
    assert score == 0.0 and DELEGATES in report
    if module != "featureviz":  # one-line delegations are caught by what they call, not as copies
        assert f"a copy of solutions.{module}." in report


def test_code_replace_copy_gets_no_credit():
    """The brief's recipe: the reference's code object with another name and file, new globals."""
    ref = solutions.gradcam.grad_cam
    copy = types.FunctionType(ref.__code__.replace(co_name="my_grad_cam", co_filename="<mine>"),
                              dict(vars(solutions.gradcam)), "my_grad_cam", ref.__defaults__)
    score, report = quiet(autograder.check_grad_cam, copy, points=6)
    assert score == 0.0 and "a copy of solutions.gradcam.grad_cam" in report


def test_code_replace_copy_with_own_helpers_is_found_by_its_fingerprint_alone():
    """Only the copied function is the reference's; every helper it calls is the student's own, so
    the identity guard alone would miss it."""
    ref = solutions.segmentation.localization_box

    def own_as_map(cam):
        return np.asarray(cam, dtype=np.float64)

    globals_ = {**vars(solutions.segmentation), "_as_map": own_as_map}
    copy = types.FunctionType(ref.__code__.replace(co_filename="<mine>", co_firstlineno=1), globals_,
                              "box", ref.__defaults__)
    score, report = quiet(autograder.check_localization_box, copy, points=2)
    assert score == 0.0 and "a copy of solutions.segmentation.localization_box" in report


def _via_sys_modules(model, layer, image, class_idx=None):
    return sys.modules["solutions.gradcam"].grad_cam(model, layer, image, class_idx)


def _via_import_module(model, layer, image, class_idx=None):
    return importlib.import_module("solutions.gradcam").grad_cam(model, layer, image, class_idx)


@pytest.mark.parametrize("cheat", [_via_sys_modules, _via_import_module], ids=lambda f: f.__name__)
def test_reaching_the_reference_through_module_lookups_gets_no_credit(cheat):
    score, report = quiet(autograder.check_grad_cam, cheat, points=6)
    assert score == 0.0 and DELEGATES in report and "(solutions.gradcam." in report


@pytest.mark.parametrize("assignment", ["L2A2_gradcam", "L2A1_feature_visualization"])
def test_fingerprints_tell_independent_work_from_copies(assignment):
    """No function of any example submission (correct or buggy) nor of the instructor's answers is
    taken for a copy; every recompiled reference function large enough to fingerprint is."""
    examples = importlib.import_module(f"examples.{assignment}")
    base = instructor_answers(assignment)
    seen: set = set()
    for variant in [None, *examples.CORRECT, *examples.BUGS]:
        namespace = run_answers(assignment, base if variant is None else variant.answers(dict(base)))
        for obj in namespace.values():
            if isinstance(obj, types.FunctionType) and obj.__globals__ is namespace:
                for code in student_call._code_objects(obj, seen):
                    assert student_call.copied_from(code) is None, (variant and variant.name, code.co_qualname)
    copies = _exec_reference("gradcam")
    flagged = {student_call.copied_from(f.__code__) for f in copies.values()
               if isinstance(f, types.FunctionType) and f.__module__ is None}
    assert {"a copy of solutions.gradcam.layer_output_and_gradient", "a copy of solutions.gradcam._single",
            "a copy of solutions.gradcam.cam_from_gradient", "a copy of solutions.gradcam.grad_cam"} <= flagged


# --------------------------------------------------------------------------- the record and the hook
def test_restore_reports_replacements_additions_and_deletions():
    import autograder.gradcam as gradcam_checks
    tolerance, interpolate = gradcam_checks.TOLERANCE, torch.nn.functional.interpolate
    gradcam_checks.TOLERANCE = 1e9                  # a replaced constant in a grading module
    gradcam_checks.extra_helper = print             # any addition to a grading module
    del torch.nn.functional.interpolate             # a deletion in a library
    try:
        found = integrity.restore()
    finally:
        torch.nn.functional.interpolate = interpolate
    assert sorted(found) == ["autograder.gradcam.TOLERANCE was replaced", "autograder.gradcam.extra_helper was added",
                             "torch.nn.functional.interpolate was deleted"]
    assert gradcam_checks.TOLERANCE == tolerance and not hasattr(gradcam_checks, "extra_helper")
    assert torch.nn.functional.interpolate is interpolate
    assert integrity.restore() == [] and integrity.violations() == sorted(found, key=found.index)
    integrity.forget()
    assert integrity.violations() == []


def test_the_audit_hook_restores_at_the_next_exec_and_keeps_the_record():
    allclose = torch.allclose
    torch.allclose = lambda *a, **k: True
    try:
        exec("pass")  # any exec: a notebook cell
        assert torch.allclose is allclose
    finally:
        torch.allclose = allclose
    assert integrity.violations() == ["torch.allclose was replaced"]
    assert integrity.changes() == []


def test_a_fake_autograder_package_is_replaced_back():
    real = sys.modules["autograder"]
    namespace: dict = {}
    run_cell("import sys, types\nsys.modules['autograder'] = types.SimpleNamespace("
             "check_grad_cam=lambda *a, **k: 6.0)", namespace)
    try:
        run_cell("from autograder import check_grad_cam", namespace)
        assert namespace["check_grad_cam"] is autograder.check_grad_cam
    finally:
        sys.modules["autograder"] = real
    assert "sys.modules['autograder'] was replaced" in integrity.violations()


@pytest.mark.parametrize("function", [autograder.check_grad_cam, torch.nn.functional.interpolate],
                         ids=["a check", "a torch function"])
def test_swapping_the_code_of_a_watched_function_is_refused(function):
    code = function.__code__
    with pytest.raises(RuntimeError, match="cannot be replaced"):
        function.__code__ = (lambda *a, **k: 6.0).__code__
    assert function.__code__ is code
    assert any(v.endswith("__code__ was replaced (refused)") for v in integrity.violations())


def test_reloading_a_grading_module_is_undone():
    seal, guard = integrity.seal, integrity._guard
    importlib.reload(integrity)                     # new function objects in the same module dict
    assert integrity.seal is not seal
    exec("pass")
    assert integrity.seal is seal and integrity._guard is guard
    assert "autograder.integrity.seal was replaced" in integrity.violations()


def test_verify_cost_is_printed(capsys):
    """How long the hook's work takes when nothing changed (every exec pays it): printed, not asserted."""
    assert integrity.changes() == []
    timings = {}
    for label, action in [("changes()", integrity.changes), ("restore()", integrity.restore),
                          ("exec('pass') with the hook", lambda: exec("pass"))]:
        samples = []
        for _ in range(200):
            start = time.perf_counter()
            action()
            samples.append(time.perf_counter() - start)
        timings[label] = statistics.median(samples) * 1e3
    with capsys.disabled():
        print(f"\nintegrity: {integrity.watched_count()} watched entries; median per call: "
              + ", ".join(f"{label} {ms:.3f} ms" for label, ms in timings.items()))
    assert integrity.watched_count() > 1000 and integrity.violations() == []


# --------------------------------------------------------------------------- the grading kernel
KERNEL_CELLS = [
    "from autograder import integrity\nprint('sealed early:', integrity.sealed_early(), integrity.violations())",
    "import torch\noriginal_allclose = torch.allclose\ntorch.allclose = lambda *a, **k: True",
    "print('restored:', torch.allclose is original_allclose, torch.allclose(torch.zeros(1), torch.ones(1)))",
    None,  # the instructor's localization_box, filled in by the test
    "import autograder\nautograder.check_localization_box = lambda *a, **k: 2.0",
    "from autograder import check_localization_box\nprint('score:', check_localization_box(localization_box, points=2))",
    "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()",  # inline figures still reach the notebook
]


def test_grading_kernel_runs_a_notebook_and_restores_between_cells(tmp_path, monkeypatch, answers):
    import nbformat
    from nbclient import NotebookClient

    spec = tmp_path / "jupyter" / "kernels" / "grading"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "autograder.kernel", "-f", "{connection_file}"],
        "display_name": "grading (sealed)", "language": "python",
        # MPLBACKEND empty, as in a Jupyter server: the kernel must pick the inline backend itself.
        "env": {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "INTERPKIT_ALLOW_RANDOM_WEIGHTS": "1",
                "MPLBACKEND": ""},
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    cells = [answers["localization_box"] if c is None else c for c in KERNEL_CELLS]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    workdir = tmp_path / "work"  # the notebook's folder: not the course root
    workdir.mkdir()
    NotebookClient(nb, kernel_name="grading", timeout=120, startup_timeout=120,
                   resources={"metadata": {"path": str(workdir)}}).execute()
    out = ["".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream") for cell in nb.cells]
    assert out[0].strip() == "sealed early: True []"
    assert out[2].strip() == "restored: True False"
    assert "localization_box: 0 / 2 points" in out[5] and "score: 0.0" in out[5]
    assert "torch.allclose was replaced" in out[5] and "autograder.check_localization_box was replaced" in out[5]
    assert any("image/png" in o.get("data", {}) for o in nb.cells[6].outputs)
    assert not any(o.output_type == "error" for cell in nb.cells for o in cell.outputs)
