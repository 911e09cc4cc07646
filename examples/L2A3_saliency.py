"""Example L2A3 submissions: realistic bugs, other correct implementations, and the demo's students.

Every bug is a :func:`grading.submissions.patch` of the instructor's answer (a patch that does not
apply raises, so a bug can never silently vanish). ``affected`` lists the test cells allowed to lose
points; the hidden test cells among them must lose points. ``class_gradient`` lives in the
saliency cell and serves SmoothGrad, IG and guided backprop; ``perturbation_curve`` lives in the
deletion cell and serves both curves; the visible SmoothGrad test compares with ``saliency``.
"""
from __future__ import annotations

from grading.submissions import Variant, combine, patches, replace_cells


def _cells(*names: str) -> frozenset:
    return frozenset(f"test_{n}_{kind}" for n in names for kind in ("visible", "hidden"))


SAL, SG, IG = _cells("saliency"), _cells("smoothgrad"), _cells("integrated_gradients")
GBP, GGC = _cells("guided_backprop"), _cells("guided_grad_cam")
RL, RC = _cells("randomize_layers"), _cells("rank_correlation")
DEL, INS, AUC = _cells("deletion_curve"), _cells("insertion_curve"), _cells("curve_auc")
SG_VISIBLE = frozenset({"test_smoothgrad_visible"})   # compares smoothgrad with saliency


def _bug(name: str, description: str, cell: str, old: str, new: str, affected: frozenset) -> Variant:
    return Variant(name, description, patches((cell, old, new)), affected)


BUGS: list[Variant] = [
    _bug("softmax_score", "the gradient of the softmax probability instead of the pre-softmax logit", "saliency",
         "score = logits[:, class_idx].sum()", "score = logits.softmax(dim=1)[:, class_idx].sum()",
         SAL | SG | IG | GBP | GGC),
    _bug("no_absolute_value", "saliency: the max of the signed gradient (no absolute value)", "saliency",
         "return grad[0].abs().amax(dim=0)", "return grad[0].amax(dim=0)", SAL | SG_VISIBLE),
    _bug("channel_sum", "saliency: |gradient| summed over the colour channels instead of the max", "saliency",
         "return grad[0].abs().amax(dim=0)", "return grad[0].abs().sum(dim=0)", SAL | SG_VISIBLE),
    _bug("noise_not_scaled", "SmoothGrad: sigma = noise_level, not scaled to the input's range", "smoothgrad",
         "sigma = noise_level * (image.max() - image.min())", "sigma = noise_level", SG),
    _bug("noise_from_global_rng", "SmoothGrad: noise from torch's global generator, not `generator`", "smoothgrad",
         "torch.randn(image.shape, generator=generator)", "torch.randn(image.shape)", SG),
    Variant("abs_after_mean", "SmoothGrad: the absolute value of the mean gradient (signed gradients averaged)",
            patches(("smoothgrad", "total += grad.abs().sum(dim=0)", "total += grad.sum(dim=0)"),
                    ("smoothgrad", "return (total / n_samples).amax(dim=0)",
                     "return (total / n_samples).abs().amax(dim=0)")), SG),
    _bug("ig_path_from_zero", "IG: the path starts at 0, not at the baseline", "integrated_gradients",
         "path = baseline + alphas * (image - baseline)", "path = alphas * image", IG),
    _bug("ig_no_delta_factor", "IG: the mean gradient without the (x - baseline) factor", "integrated_gradients",
         "return (image - baseline)[0] * total / steps", "return total / steps", IG),
    _bug("ig_left_riemann", "IG: left Riemann sum (k = 0 .. steps - 1)", "integrated_gradients",
         "torch.arange(1, steps + 1, dtype=image.dtype)", "torch.arange(0, steps, dtype=image.dtype)", IG),
    _bug("guided_hooks_left_registered", "guided backprop: the hooks are never removed", "guided_backprop",
         "    try:\n        yield\n    finally:\n        for handle in handles:\n            handle.remove()",
         "    yield", GBP | GGC),
    _bug("guided_relu_only", "guided backprop: the guided rule on nn.ReLU only (the real model's ReLU6 left out)",
         "guided_backprop", "isinstance(m, (nn.ReLU, nn.ReLU6))", "isinstance(m, nn.ReLU)",
         GBP | frozenset({"test_guided_grad_cam_hidden"})),
    _bug("guided_no_clamp", "guided backprop: the hooks pass the gradient unchanged (the plain gradient)",
         "guided_backprop", "return grad.clamp(min=0)", "return grad", GBP | GGC),
    _bug("guided_grad_cam_plain_gradient", "Guided Grad-CAM: the plain gradient times Grad-CAM", "guided_grad_cam",
         "return guided_backprop(model, image, class_idx) * cam[None]",
         "return class_gradient(model, image, class_idx)[0][0] * cam[None]", GGC),
    _bug("randomized_in_place", "randomize_layers: the caller's model re-initialized in place (no copy)",
         "randomize_layers", "randomized = copy.deepcopy(model)", "randomized = model", RL),
    _bug("randomize_unseeded", "randomize_layers: the generator is ignored", "randomize_layers",
         "seed = int(torch.randint(2 ** 62, (), generator=generator))", "seed = int(torch.randint(2 ** 62, ()))", RL),
    _bug("randomize_named_module_only", "randomize_layers: only the named module's own reset_parameters "
         "(a container has none: nothing changes)", "randomize_layers",
         "            for module in layer.modules():\n                if hasattr(module, \"reset_parameters\"):\n"
         "                    module.reset_parameters()",
         "            if hasattr(layer, \"reset_parameters\"):\n                layer.reset_parameters()", RL),
    _bug("pearson_not_spearman", "rank_correlation: Pearson's correlation of the values", "rank_correlation",
         "ranks_a, ranks_b = stats.rankdata(a.ravel()), stats.rankdata(b.ravel())",
         "ranks_a, ranks_b = a.ravel(), b.ravel()", RC),
    _bug("ordinal_ranks", "rank_correlation: ties broken by position instead of shared average ranks",
         "rank_correlation", "ranks_a, ranks_b = stats.rankdata(a.ravel()), stats.rankdata(b.ravel())",
         "ranks_a, ranks_b = stats.rankdata(a.ravel(), method=\"ordinal\"), stats.rankdata(b.ravel(), method=\"ordinal\")",
         RC),
    _bug("least_important_first", "curves: the pixels ranked in ascending order", "deletion_curve",
         "order = torch.argsort(-values, stable=True)", "order = torch.argsort(values, stable=True)", DEL | INS),
    _bug("curve_of_logits", "curves: logits instead of softmax probabilities", "deletion_curve",
         "probs = model(images).softmax(dim=1)[:, class_idx]", "probs = model(images)[:, class_idx]", DEL | INS),
    _bug("insertion_is_deletion", "insertion_curve: calls the helper with insert=False", "insertion_curve",
         "steps, insert=True)", "steps, insert=False)", INS),
    _bug("auc_without_dx", "curve_auc: np.trapezoid without dx (the x axis is [0, steps])", "curve_auc",
         "np.trapezoid(values, dx=1.0 / (len(values) - 1))", "np.trapezoid(values)", AUC),
]

# --- other correct implementations -----------------------------------------------------------

LOOP_GRADIENT = '''
def class_gradient(model, images, class_idx=None):
    """One image at a time, with .backward() on a leaf copy of each image."""
    grads = []
    for i in range(images.shape[0]):
        x = images[i:i + 1].detach().clone()
        x.requires_grad = True
        out = model(x)
        if class_idx is None:
            class_idx = out.argmax(dim=1).item()
        out[0, class_idx].backward()
        grads.append(x.grad.detach())
    return torch.cat(grads), class_idx


def saliency(model, image, class_idx=None):
    grad, _ = class_gradient(model, image, class_idx)
    return torch.max(torch.abs(grad[0]), dim=0).values
'''

LOOP_SMOOTHGRAD = '''
def smoothgrad(model, image, class_idx=None, n_samples=25, noise_level=0.15, generator=None):
    """A loop over the samples, each noise drawn just before its gradient."""
    if class_idx is None:
        with torch.no_grad():
            class_idx = model(image).argmax().item()
    spread = (image.max() - image.min()).item()
    acc = None
    for _ in range(n_samples):
        eps = noise_level * spread * torch.randn(image.shape, generator=generator)
        g = class_gradient(model, image + eps, class_idx)[0][0].abs()
        acc = g if acc is None else acc + g
    return (acc / n_samples).max(dim=0).values
'''

LOOP_IG = '''
def integrated_gradients(model, image, class_idx=None, baseline=None, steps=50):
    """A loop along the path, one gradient per point."""
    x0 = torch.zeros_like(image) if baseline is None else baseline
    if class_idx is None:
        class_idx = class_gradient(model, image)[1]
    acc = torch.zeros_like(image)
    for k in range(1, steps + 1):
        acc += class_gradient(model, x0 + (k / steps) * (image - x0), class_idx)[0]
    return ((image - x0) * acc / steps)[0]
'''

BACKWARD_HOOK_GBP = '''
def guided_backprop(model, image, class_idx=None):
    """Full backward hooks that clamp grad_input (ReLU and ReLU6 in-place flags switched off
    while they are hooked, and put back)."""
    def clamp(module, grad_input, grad_output):
        return (grad_input[0].clamp(min=0),)

    hooked, handles = [], []
    try:
        for m in model.modules():
            if isinstance(m, (nn.ReLU, nn.ReLU6)):
                hooked.append((m, m.inplace))
                m.inplace = False
                handles.append(m.register_full_backward_hook(clamp))
        grad, _ = class_gradient(model, image, class_idx)
    finally:
        for h in handles:
            h.remove()
        for m, flag in hooked:
            m.inplace = flag
    return grad[0]
'''

LOOP_GGC = '''
def guided_grad_cam(model, layer, image, class_idx=None):
    cls = class_gradient(model, image)[1] if class_idx is None else class_idx
    return guided_backprop(model, image, cls) * grad_cam(model, layer, image, cls).unsqueeze(0)
'''

RESTORED_RNG = '''
def randomize_layers(model, layer_names, generator=None):
    """The global generator's state saved and put back by hand; layers looked up in named_modules."""
    modules = dict(model.named_modules())
    missing = [n for n in layer_names if n not in modules]
    if missing:
        raise KeyError(f"no layers named {missing}")
    randomized = copy.deepcopy(model)
    named = dict(randomized.named_modules())
    saved = torch.get_rng_state()
    torch.manual_seed(int(torch.randint(0, 2 ** 31, (1,), generator=generator)))
    try:
        for name in layer_names:
            for sub in named[name].modules():
                reset = getattr(sub, "reset_parameters", None)
                if callable(reset):
                    reset()
    finally:
        torch.set_rng_state(saved)
    return randomized
'''

SCIPY_SPEARMAN = '''
from scipy.stats import spearmanr


def rank_correlation(map_a, map_b):
    a, b = np.ravel(np.asarray(map_a, dtype=float)), np.ravel(np.asarray(map_b, dtype=float))
    if np.shape(map_a) != np.shape(map_b):
        raise ValueError("the maps must have the same shape")
    return float(spearmanr(a, b).statistic)
'''

LOOP_CURVES = '''
def perturbation_curve(model, image, attribution, class_idx, steps, insert):
    """Image by image: np.argsort of -attribution (stable), masks built pixel list by pixel list."""
    h, w = image.shape[-2:]
    order = np.argsort(-np.asarray(attribution, dtype=float).ravel(), kind="stable")
    probs = []
    for i in range(steps + 1):
        chosen = order[: (i * h * w) // steps]
        mask = torch.zeros(h * w)
        mask[torch.as_tensor(chosen, dtype=torch.long)] = 1.0
        mask = mask.view(1, 1, h, w)
        changed = image * mask if insert else image * (1.0 - mask)
        with torch.no_grad():
            probs.append(torch.softmax(model(changed), dim=1)[0, class_idx].item())
    return np.array(probs)


def deletion_curve(model, image, attribution, class_idx, steps=20):
    return perturbation_curve(model, image, attribution, class_idx, steps, False)
'''

LINSPACE_AUC = '''
def curve_auc(curve):
    y = np.asarray(curve, dtype=float)
    return float(np.trapezoid(y, np.linspace(0.0, 1.0, y.size)))
'''

# Second variant: no helper shared with saliency, a guided copy of the model (no hooks at all),
# ranks computed by hand, curves with lexsort in torch, the area summed by hand.
BATCHED_GRADIENT = '''
def class_gradient(model, images, class_idx=None):
    """Batched, torch.autograd.grad of the summed class scores."""
    leaf = images.clone().detach().requires_grad_(True)
    scores = model(leaf)
    cls = int(torch.argmax(scores[0])) if class_idx is None else int(class_idx)
    return torch.autograd.grad(scores[:, cls].sum(), [leaf])[0], cls


def saliency(model, image, class_idx=None):
    return class_gradient(model, image, class_idx)[0].abs().max(dim=1).values[0]
'''

BATCHED_SMOOTHGRAD = '''
def smoothgrad(model, image, class_idx=None, n_samples=25, noise_level=0.15, generator=None):
    """All the noise first (one draw per sample, in order), then one batch."""
    sigma = noise_level * (image.max() - image.min())
    eps = torch.stack([torch.randn(image.shape, generator=generator)[0] for _ in range(n_samples)])
    if class_idx is None:
        class_idx = class_gradient(model, image)[1]
    grads = class_gradient(model, image + sigma * eps, class_idx)[0]
    return grads.abs().mean(dim=0).max(dim=0).values
'''

BATCHED_IG = '''
def integrated_gradients(model, image, class_idx=None, baseline=None, steps=50):
    x0 = image * 0 if baseline is None else baseline.reshape(image.shape)
    if class_idx is None:
        class_idx = class_gradient(model, image)[1]
    t = torch.linspace(1.0 / steps, 1.0, steps).reshape(steps, 1, 1, 1)
    grads = class_gradient(model, x0 + t * (image - x0), class_idx)[0]
    return (image - x0)[0] * grads.mean(dim=0)
'''

GUIDED_COPY = '''
class _GuidedFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, upper):
        ctx.save_for_backward(x)
        ctx.upper = upper
        return x.clamp(min=0) if upper is None else x.clamp(0, upper)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        gate = (x > 0) if ctx.upper is None else (x > 0) & (x < ctx.upper)
        return grad.clamp(min=0) * gate, None


class _Guided(nn.Module):
    def __init__(self, upper=None):
        super().__init__()
        self.upper = upper

    def forward(self, x):
        return _GuidedFunction.apply(x, self.upper)


def guided_backprop(model, image, class_idx=None):
    """A deep copy of the model whose ReLU / ReLU6 modules are swapped for guided ones: the
    caller's model is never touched, so no hook can be left behind."""
    guided = copy.deepcopy(model)
    for parent in list(guided.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU6):
                setattr(parent, name, _Guided(6.0))
            elif isinstance(child, nn.ReLU):
                setattr(parent, name, _Guided())
    return class_gradient(guided, image, class_idx)[0][0]
'''

SEEDED_FROM_INITIAL = '''
def randomize_layers(model, layer_names, generator=None):
    """Seeded from the generator's initial seed (equal generators give equal copies)."""
    randomized = copy.deepcopy(model)
    targets = [randomized.get_submodule(n) for n in layer_names]
    seed = torch.initial_seed() if generator is None else generator.initial_seed()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 12345)
        for target in targets:
            target.apply(lambda m: m.reset_parameters() if hasattr(m, "reset_parameters") else None)
    return randomized
'''

HAND_RANKS = '''
def _average_ranks(values):
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    while start < len(values):
        stop = start
        while stop + 1 < len(values) and sorted_values[stop + 1] == sorted_values[start]:
            stop += 1
        ranks[order[start:stop + 1]] = (start + stop) / 2 + 1
        start = stop + 1
    return ranks


def rank_correlation(map_a, map_b):
    a = torch.as_tensor(map_a).double().flatten().numpy()
    b = torch.as_tensor(map_b).double().flatten().numpy()
    if tuple(torch.as_tensor(map_a).shape) != tuple(torch.as_tensor(map_b).shape):
        raise ValueError("shapes differ")
    ra, rb = _average_ranks(a), _average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / np.sqrt((ra ** 2).sum() * (rb ** 2).sum()))
'''

LEXSORT_CURVES = '''
def perturbation_curve(model, image, attribution, class_idx, steps, insert):
    flat = np.asarray(attribution, dtype=np.float64).reshape(-1)
    n = flat.size
    order = torch.from_numpy(np.lexsort((np.arange(n), -flat)))      # by -value, then by index
    keep = torch.zeros(steps + 1, n)
    for i in range(steps + 1):
        keep[i, order[: i * n // steps]] = 1
    keep = keep.reshape(steps + 1, 1, *image.shape[-2:])
    batch = image * keep if insert else image - image * keep
    with torch.no_grad():
        return torch.softmax(model(batch), dim=-1)[:, class_idx].double().numpy()


def deletion_curve(model, image, attribution, class_idx, steps=20):
    return perturbation_curve(model, image, attribution, class_idx, steps=steps, insert=False)
'''

HAND_AUC = '''
def curve_auc(curve):
    y = [float(v) for v in curve]
    width = 1.0 / (len(y) - 1)
    return sum((y[i] + y[i + 1]) * width / 2 for i in range(len(y) - 1))
'''

CORRECT: list[Variant] = [
    Variant("solution", "the instructor's solution", lambda answers: answers),
    Variant("loops_and_backward", "per-sample loops with .backward(); full backward hooks; RNG state saved by "
            "hand; scipy's spearmanr; curves image by image; trapezoid over linspace",
            replace_cells(saliency=LOOP_GRADIENT, smoothgrad=LOOP_SMOOTHGRAD, integrated_gradients=LOOP_IG,
                          guided_backprop=BACKWARD_HOOK_GBP, guided_grad_cam=LOOP_GGC, randomize_layers=RESTORED_RNG,
                          rank_correlation=SCIPY_SPEARMAN, deletion_curve=LOOP_CURVES, curve_auc=LINSPACE_AUC)),
    Variant("batched_and_guided_copy", "one batch per map; a guided copy of the model (no hooks); seeded from the "
            "generator's initial seed; ranks by hand; lexsort curves; the area summed by hand",
            replace_cells(saliency=BATCHED_GRADIENT, smoothgrad=BATCHED_SMOOTHGRAD, integrated_gradients=BATCHED_IG,
                          guided_backprop=GUIDED_COPY, randomize_layers=SEEDED_FROM_INITIAL,
                          rank_correlation=HAND_RANKS, deletion_curve=LEXSORT_CURVES, curve_auc=HAND_AUC)),
]


_by_name = {v.name: v for v in BUGS}

#: The students of ``make demo``: None is the blank release notebook.
DEMO_SUBMISSIONS = {
    "demo_complete": CORRECT[0].answers,
    "demo_blank": None,
    "demo_buggy": combine(_by_name["no_absolute_value"], _by_name["randomized_in_place"],
                          _by_name["guided_hooks_left_registered"]),
}
