"""Example L2A2 submissions: realistic bugs, other correct implementations, and the demo's students.

Every bug is a :func:`grading.submissions.patch` of the instructor's answer (a patch that does not
apply raises, so a bug can never silently vanish). ``affected`` lists the test cells allowed to lose
points; the hidden test cells among them must lose points.
"""
from __future__ import annotations

from grading.submissions import Variant, combine, patches, replace_cells

GC = frozenset({"test_grad_cam_visible", "test_grad_cam_hidden"})
CF = frozenset({"test_counterfactual_visible", "test_counterfactual_hidden"})
TL = frozenset({"test_target_layers_visible", "test_target_layers_hidden"})
SEG = frozenset({"test_threshold_segmentation_visible", "test_threshold_segmentation_hidden"})
BOX = frozenset({"test_localization_box_visible", "test_localization_box_hidden"})


def _bug(name: str, description: str, cell: str, old: str, new: str, affected: frozenset) -> Variant:
    return Variant(name, description, patches((cell, old, new)), affected)


CAPTURE = """    with capture(layer) as recorded:            # forward hook on `layer`, removed on exit
        logits = model(image)
"""

BUGS: list[Variant] = [
    _bug("no_relu", "forgot the ReLU on the weighted sum", "grad_cam",
         "cam = F.relu((weights * A).sum(dim=1, keepdim=True))", "cam = (weights * A).sum(dim=1, keepdim=True)", GC | CF),
    _bug("softmax_score", "softmax probability instead of the pre-softmax logit", "grad_cam",
         "torch.autograd.grad(logits[0, class_idx], A)", "torch.autograd.grad(logits.softmax(dim=1)[0, class_idx], A)",
         GC | CF),
    _bug("no_upsampling", "returns the map at the layer's resolution", "grad_cam",
         'cam = F.interpolate(cam, size=image.shape[-2:], mode="bilinear", align_corners=False)[0, 0]',
         "cam = cam[0, 0]", GC | CF),
    _bug("nearest_upsampling", "nearest-neighbour instead of bilinear upsampling", "grad_cam",
         'mode="bilinear", align_corners=False', 'mode="nearest"', GC | CF),
    _bug("max_pooled_gradient", "channel weights from the max of the gradient instead of its mean", "grad_cam",
         "weights = dA.mean(dim=(2, 3), keepdim=True)", "weights = dA.amax(dim=(2, 3), keepdim=True)", GC | CF),
    _bug("class_idx_none_ignored", "class_idx=None explains class 0 instead of the top-1 class", "grad_cam",
         "class_idx = int(logits[0].argmax())", "class_idx = 0", GC),
    _bug("hooks_left_registered", "registers a forward hook and never removes it", "grad_cam", CAPTURE,
         "    recorded = type('Recorded', (), {})()\n"
         "    layer.register_forward_hook(lambda module, inputs, output: setattr(recorded, 'output', output))\n"
         "    logits = model(image)\n", GC | CF),
    _bug("train_mode", "puts the model in train mode and leaves it there", "grad_cam", CAPTURE,
         "    model.train()\n" + CAPTURE, GC | CF),
    _bug("counterfactual_not_negated", "counterfactual without negating the gradient", "counterfactual_grad_cam",
         "negate_gradient=True", "negate_gradient=False", CF),
    _bug("counterfactual_one_minus", "counterfactual as 1 - Grad-CAM", "counterfactual_grad_cam",
         "return _grad_cam(model, layer, image, class_idx, negate_gradient=True)",
         "return 1 - _grad_cam(model, layer, image, class_idx, negate_gradient=False)", CF),
    _bug("wrong_target_layer", "VGG16's layer after the last max-pool (7 x 7)", "target_layers",
         '"vgg16": "features.29",', '"vgg16": "features.30",', frozenset({"test_target_layers_hidden"})),
    _bug("inverted_mask", "keeps the pixels below the threshold", "threshold_segmentation",
         "mask = cam >= threshold", "mask = cam < threshold", SEG),
    _bug("strict_threshold", "drops pixels exactly at the threshold (> instead of >=)", "threshold_segmentation",
         "mask = cam >= threshold", "mask = cam > threshold", SEG),
    _bug("box_all_regions", "box around all regions instead of the largest", "localization_box",
         "rows, cols = np.nonzero(labels == sizes.argmax())", "rows, cols = np.nonzero(labels > 0)", BOX),
    _bug("box_absolute_threshold", "threshold not relative to the map's maximum", "localization_box",
         "cam >= threshold * cam.max()", "cam >= threshold", frozenset({"test_localization_box_hidden"})),
]

# --- other correct implementations -----------------------------------------------------------

HOOKS_AND_BACKWARD = '''
def _grad_cam(model, layer, image, class_idx, negate_gradient):
    """Hooks + backward: a tensor hook on the layer's output receives dScore/dA."""
    store = {}

    def keep_output(module, inputs, output):
        store["A"] = output
        output.register_hook(lambda grad: store.__setitem__("dA", grad))

    handle = layer.register_forward_hook(keep_output)
    try:
        logits = model(image)
    finally:
        handle.remove()
    if class_idx is None:
        class_idx = logits.argmax(dim=1).item()
    logits[0, class_idx].backward()
    A, dA = store["A"].detach()[0], store["dA"][0]
    alpha = dA.mean(dim=(1, 2)) * (-1.0 if negate_gradient else 1.0)
    cam = torch.relu(torch.einsum("k,khw->hw", alpha, A))
    cam = F.interpolate(cam[None, None], size=tuple(image.shape[-2:]), mode="bilinear", align_corners=False)[0, 0]
    return cam / cam.max() if cam.max() > 0 else cam


def grad_cam(model, layer, image, class_idx=None):
    return _grad_cam(model, layer, image, class_idx, False)
'''

SPLIT_AT_LAYER = '''
def _grad_cam(model, layer, image, class_idx, negate_gradient):
    """Split the graph at the layer: its output is replaced by a fresh leaf tensor."""
    leaves = []

    def reroot(module, inputs, output):
        leaves.append(output.detach().requires_grad_(True))
        return leaves[-1]

    handle = layer.register_forward_hook(reroot)
    try:
        logits = model(image)
    finally:
        handle.remove()
    target = int(torch.argmax(logits)) if class_idx is None else class_idx
    score = -logits[0, target] if negate_gradient else logits[0, target]
    grads = torch.autograd.grad(score, leaves[0])[0]
    weights = grads.sum(dim=(2, 3), keepdim=True) / (grads.shape[2] * grads.shape[3])
    cam = torch.clamp((weights * leaves[0].detach()).sum(dim=1, keepdim=True), min=0)
    cam = F.interpolate(cam, size=image.shape[2:], mode="bilinear", align_corners=False).squeeze()
    top = cam.max()
    return torch.zeros_like(cam) if top == 0 else cam / top


def grad_cam(model, layer, image, class_idx=None):
    return _grad_cam(model, layer, image, class_idx, negate_gradient=False)
'''

SCIPY_SEGMENTATION = '''
def threshold_segmentation(image, cam, threshold):
    mask = np.asarray(cam) >= threshold
    return np.where(mask[:, :, None], image, 0.0).astype(np.asarray(image).dtype), mask
'''

SCIPY_BOX = '''
from scipy import ndimage

def localization_box(cam, threshold=0.15):
    cam = np.asarray(cam)
    labels, count = ndimage.label(cam >= threshold * cam.max(), structure=np.ones((3, 3)))
    largest = 1 + int(np.argmax(ndimage.sum(np.ones_like(cam), labels, index=range(1, count + 1))))
    rows, cols = ndimage.find_objects((labels == largest).astype(int))[0]
    return rows.start, cols.start, rows.stop - 1, cols.stop - 1
'''

TARGETS_VARIANT = '''
TARGET_LAYERS = {"vgg16": "features.28", "resnet50": "layer4.2", "inception_v3": "Mixed_7c"}
'''


CORRECT: list[Variant] = [
    Variant("solution", "the instructor's solution", lambda answers: answers),
    Variant("hooks_and_backward", "tensor hooks + .backward(); scipy segmentation and box",
            replace_cells(grad_cam=HOOKS_AND_BACKWARD, threshold_segmentation=SCIPY_SEGMENTATION,
                     localization_box=SCIPY_BOX)),
    Variant("split_at_layer", "graph split at the layer + torch.autograd.grad; other accepted layer names",
            replace_cells(grad_cam=SPLIT_AT_LAYER, target_layers=TARGETS_VARIANT)),
]


_by_name = {v.name: v for v in BUGS}

#: The students of ``make demo``: None is the blank release notebook.
DEMO_SUBMISSIONS = {
    "demo_complete": CORRECT[0].answers,
    "demo_blank": None,
    "demo_buggy": combine(_by_name["no_relu"], _by_name["inverted_mask"], _by_name["wrong_target_layer"]),
}
