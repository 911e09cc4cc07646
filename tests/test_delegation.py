"""Provenance judged from the source (autograder.delegation): delegating to the reference, the
autograder, test-only libraries or the toolbox's own implementation forfeits the part; dynamic
lookups are flagged for review; honest answers (the instructor's and every correct example) are
neither. The end-to-end consequences (scores, feedback) are in test_bad_submissions.py."""
from __future__ import annotations

import importlib

import pytest

import autograder
from autograder.delegation import Analysis, Cell
from grading.submissions import strip_solution_markers
from support import cell_ids, instructor_answers, setup_source

L2A1, L2A2 = "L2A1_feature_visualization", "L2A2_gradcam"


def code_cells(assignment: str, answers: dict[str, str]) -> list[Cell]:
    """The code answer cells, as the grader reads them (written answers are not code)."""
    return [Cell(gid, answers[gid]) for gid in cell_ids(assignment, "answer")]


def analyze(assignment: str, **cells: str) -> Analysis:
    """The instructor's answers with ``cells`` replaced (grade id -> source), the assignment's
    set-up cell as context."""
    answers = instructor_answers(assignment)
    answers.update(cells)
    return Analysis(code_cells(assignment, answers), [setup_source(assignment)])


def findings(analysis: Analysis, name: str) -> list[str]:
    return [f.what for f in analysis.findings(name, autograder.TOOLBOX_IMPLEMENTATIONS.get(name, ()))]


@pytest.mark.parametrize("assignment", [L2A1, L2A2])
def test_instructor_answers_and_correct_examples_are_clean(assignment):
    module = importlib.import_module(f"examples.{assignment}")
    base = instructor_answers(assignment)
    for variant in [None, *module.CORRECT]:
        answers = base if variant is None else variant.answers(dict(base))
        analysis = Analysis(code_cells(assignment, answers), [setup_source(assignment)])
        for name in ["grad_cam", "counterfactual_grad_cam", "threshold_segmentation", "localization_box",
                     "channel_objective", "neuron_objective", "deepdream_objective", "jitter", "visualize",
                     "deepdream"]:
            assert findings(analysis, name) == [], (variant, name)
            assert analysis.review(name) == [], (variant, name, analysis.review(name))


CHEATS = [
    # (assignment, answer cell, source, graded name, expected fragment of the finding)
    (L2A1, "visualize",
     "def visualize(model, layer, objective, image_param, transforms, steps, lr):\n"
     "    return fv.render(model, layer, objective, param=image_param, transforms=transforms, steps=steps, lr=lr)[0]",
     "visualize", "interpkit.featureviz.render"),
    (L2A1, "visualize",  # the module's function, through its own module path
     "from interpkit.featureviz.render import optimize as _opt\n"
     "def visualize(model, layer, objective, image_param, transforms, steps, lr):\n"
     "    return _opt(model, layer, objective, image_param, transforms, steps, lr)[steps][0]",
     "visualize", "interpkit.featureviz.render.optimize"),
    (L2A1, "jitter",
     "def jitter(image, max_shift, generator=None):\n"
     "    from interpkit.featureviz import jitter_crop\n"
     "    return jitter_crop(image, max_shift, generator)",
     "jitter", "jitter_crop"),
    (L2A1, "deepdream",
     "import solutions.featureviz\n"
     "def deepdream(model, layer, image, steps=10, step_size=0.01, octaves=4, octave_scale=1.4):\n"
     "    return solutions.featureviz.deepdream(model, layer, image, steps, step_size, octaves, octave_scale)",
     "deepdream", "solutions"),
    (L2A1, "channel_objective",
     "def channel_objective(acts, channel):\n    return fv.objectives.channel_activation(acts, channel)",
     "channel_objective", "channel_activation"),
    (L2A1, "channel_objective",  # via a helper defined in the same cell: the definition's closure
     "def _helper(acts, c):\n    return fv.channel(c)(acts)\n"
     "def channel_objective(acts, channel):\n    return _helper(acts, channel)",
     "channel_objective", "interpkit.featureviz.channel"),
    (L2A1, "visualize",  # getattr with a constant is an attribute access
     "def visualize(model, layer, objective, image_param, transforms, steps, lr):\n"
     "    return getattr(fv, 'render')(model, layer, objective, param=image_param, steps=steps)[0]",
     "visualize", "interpkit.featureviz.render"),
    (L2A1, "visualize",  # bound by assignment to the toolbox function
     "visualize = fv.render", "visualize", "interpkit.featureviz.render"),
    (L2A2, "grad_cam",
     "def grad_cam(model, layer, image, class_idx=None):\n    pass\n\nfrom solutions.gradcam import grad_cam",
     "grad_cam", "solutions.gradcam"),
    (L2A2, "grad_cam",
     "from pytorch_grad_cam import GradCAM\n"
     "def grad_cam(model, layer, image, class_idx=None):\n"
     "    return GradCAM(model, [layer])(image)[0]",
     "grad_cam", "pytorch_grad_cam"),
    (L2A2, "grad_cam",  # the toolbox's own Grad-CAM (there for L2A3's Guided Grad-CAM)
     "from interpkit.gradcam import grad_cam as toolbox_cam\n"
     "def grad_cam(model, layer, image, class_idx=None):\n    return toolbox_cam(model, layer, image, class_idx)",
     "grad_cam", "interpkit.gradcam.grad_cam"),
    (L2A2, "counterfactual_grad_cam",
     "import interpkit.gradcam as ig\n"
     "def counterfactual_grad_cam(model, layer, image, class_idx):\n"
     "    acts, grad, _ = ig.layer_output_and_gradient(model, layer, image, class_idx)\n"
     "    return ig.cam_from_gradient(acts, grad, image.shape[-2:], -1.0)[0]",
     "counterfactual_grad_cam", "interpkit.gradcam"),
    (L2A2, "threshold_segmentation",  # a module looked up by name
     "import importlib, sys\nimportlib.import_module('solutions.segmentation')\n"
     "threshold_segmentation = sys.modules['solutions.segmentation'].threshold_segmentation",
     "threshold_segmentation", "solutions.segmentation"),
    (L2A2, "localization_box",
     "import captum.attr as ca\n"
     "def localization_box(cam, threshold=0.15):\n    return ca.LayerGradCam\n",
     "localization_box", "captum"),
]


@pytest.mark.parametrize("assignment, cell, source, name, fragment", CHEATS,
                         ids=[f"{c[3]}-{i}" for i, c in enumerate(CHEATS)])
def test_delegation_is_found_with_cell_and_line(assignment, cell, source, name, fragment):
    analysis = analyze(assignment, **{cell: source})
    found = analysis.findings(name, autograder.TOOLBOX_IMPLEMENTATIONS.get(name, ()))
    assert found and any(fragment in f.what for f in found), [f.what for f in found]
    assert all(f.cell == cell and f.line >= 1 and f.text for f in found)


def test_a_finding_concerns_only_the_function_that_uses_it():
    """A toolbox call inside `visualize` costs visualize's credit, not jitter's; using the toolbox
    in a cell of one's own (exploring, as the notebook invites) costs nothing."""
    analysis = analyze(L2A1, visualize=CHEATS[0][2])
    assert findings(analysis, "visualize") and not findings(analysis, "jitter")
    explore = Analysis([*analyze(L2A1).cells, Cell("your cell after `visualize`",
                                                  "imgs = fv.render(model, 'features.4', fv.channel(0))")],
                       [setup_source(L2A1)])
    assert not findings(explore, "visualize") and not explore.review("visualize")


DYNAMIC = [
    ("visualize", "def visualize(model, layer, objective, image_param, transforms, steps, lr):\n"
                  "    name = 'ren' + 'der'\n    return getattr(fv, name)(model, layer, objective)[0]",
     "getattr with a computed name"),
    ("visualize", "def visualize(model, layer, objective, image_param, transforms, steps, lr):\n"
                  "    return eval('fv.render')(model, layer, objective)[0]", "eval(...)"),
    ("visualize", "import importlib\n"
                  "def visualize(model, layer, objective, image_param, transforms, steps, lr):\n"
                  "    return importlib.import_module('interpkit.featureviz').render(model, layer, objective)[0]",
     "importlib"),
    ("jitter", "def jitter(image, max_shift, generator=None):\n"
               "    return vars(fv)['jitter_crop'](image, max_shift, generator)", "vars(...)"),
    ("jitter", "def jitter(image, max_shift, generator=None):\n"
               "    return fv.transforms.__dict__['jitter_crop'](image, max_shift, generator)", "__dict__"),
]


@pytest.mark.parametrize("name, source, fragment", DYNAMIC, ids=[d[2] for d in DYNAMIC])
def test_dynamic_lookups_are_flagged_for_review(name, source, fragment):
    analysis = analyze(L2A1, **{name: source})
    flagged = analysis.review(name)
    assert any(fragment in f.what for f in flagged), [f.what for f in flagged]
    other = "deepdream" if name != "deepdream" else "jitter"
    assert not analysis.review(other), "a lookup inside one function concerns that function only"


def test_local_names_do_not_link_a_definition_to_other_cells():
    """`cam` is local to localization_box; a student's exploration loop that binds `cam` at the
    top level while calling grad_cam does not make grad_cam's imports localization_box's."""
    answers = instructor_answers(L2A2)
    answers["grad_cam"] = answers["grad_cam"] + "\n\nfrom solutions.gradcam import grad_cam"
    cells = code_cells(L2A2, answers) + [Cell("your cell after `localization_box`",
                                              "for photo in photos:\n    cam = grad_cam(real, layer, photo)")]
    analysis = Analysis(cells, [setup_source(L2A2)])
    assert findings(analysis, "grad_cam") and not findings(analysis, "localization_box")


def test_top_level_dynamic_code_concerns_every_graded_function():
    analysis = analyze(L2A1, jitter=instructor_answers(L2A1)["jitter"]
                       + "\nglobals()['visualize'] = globals()['jitter']")
    assert analysis.review("visualize") and analysis.review("deepdream_objective")


def test_unparsable_cells_are_skipped_not_fatal():
    analysis = analyze(L2A2, grad_cam="def grad_cam(:\n    pass")
    assert analysis.unparsed == ["grad_cam"] and findings(analysis, "grad_cam") == []


def test_solution_markers_are_no_code():
    """What the analysis reads is the student's source: the instructor's answers without the
    markers parse, and are clean (guards the fixture above)."""
    assert "BEGIN SOLUTION" not in strip_solution_markers("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")
