"""Example L2A1 submissions: realistic bugs, other correct implementations, and the demo's students.

Every bug is a :func:`grading.submissions.patch` of the instructor's answer (a patch that does not
apply raises). ``affected`` lists the test cells allowed to lose points; the hidden test cells among
them must lose points.
"""
from __future__ import annotations

from grading.submissions import Variant, combine, patches, replace_cells

CH = frozenset({"test_channel_objective_visible", "test_channel_objective_hidden"})
NEU = frozenset({"test_neuron_objective_visible", "test_neuron_objective_hidden"})
DDO = frozenset({"test_deepdream_objective_visible", "test_deepdream_objective_hidden"})
JIT = frozenset({"test_jitter_visible", "test_jitter_hidden"})
VIS = frozenset({"test_visualize_visible", "test_visualize_hidden"})
DD = frozenset({"test_deepdream_visible", "test_deepdream_hidden"})


def _bug(name: str, description: str, affected: frozenset, *edits: tuple[str, str, str]) -> Variant:
    return Variant(name, description, patches(*edits), affected)


CAPTURE = """        with capture(layer) as recorded:
            model(normalize(images))
"""
DD_STEP = "x = (x + step_size * grad / (grad.abs().mean() + 1e-8)).clamp(0, 1)"

BUGS: list[Variant] = [
    _bug("channel_sign_flipped", "channel objective negated (minimizes the channel)", CH,
         ("channel_objective", "return acts[:, channel].mean()", "return -acts[:, channel].mean()")),
    # The notebook's deepdream uses the student's own deepdream_objective: with a wrong objective
    # the dream is wrong too, and deepdream's tests (compared exactly with the reference) lose points.
    _bug("deepdream_mean_not_squared", "DeepDream objective: mean instead of mean of squares",
         DDO | DD,
         ("deepdream_objective", "return (acts ** 2).mean()", "return acts.mean()")),
    _bug("neuron_wrong_centre", "neuron centre at (h - 1) // 2, (w - 1) // 2", NEU,
         ("neuron_objective", "y = h // 2 if y is None else y", "y = (h - 1) // 2 if y is None else y"),
         ("neuron_objective", "x = w // 2 if x is None else x", "x = (w - 1) // 2 if x is None else x")),
    _bug("neuron_x_y_swapped", "indexes acts[:, c, x, y]", NEU,
         ("neuron_objective", "acts[:, channel, y, x]", "acts[:, channel, x, y]")),
    _bug("jitter_pads", "pads the image instead of cropping it", JIT,
         ("jitter", "return image[:, :, dy:dy + h - max_shift, dx:dx + w - max_shift]",
          "return F.pad(image, (dx, max_shift - dx, dy, max_shift - dy))")),
    _bug("jitter_same_offset", "always the same offset (the centre)", JIT,
         ("jitter", "dy = int(torch.randint(0, max_shift + 1, (1,), generator=generator))", "dy = max_shift // 2"),
         ("jitter", "dx = int(torch.randint(0, max_shift + 1, (1,), generator=generator))", "dx = max_shift // 2")),
    _bug("jitter_exclusive_bound", "offsets never reach max_shift (randint's bound is exclusive)", JIT,
         ("jitter", "dy = int(torch.randint(0, max_shift + 1,", "dy = int(torch.randint(0, max_shift,"),
         ("jitter", "dx = int(torch.randint(0, max_shift + 1,", "dx = int(torch.randint(0, max_shift,")),
    _bug("visualize_sign_flipped", "minimizes the objective", VIS,
         ("visualize", "loss = -objective(recorded.output)", "loss = objective(recorded.output)")),
    _bug("optimizer_over_model", "Adam over the model's parameters, loss.backward()", VIS,
         ("visualize", "optimizer = torch.optim.Adam(params, lr=lr)",
          "optimizer = torch.optim.Adam(model.parameters(), lr=lr)"),
         ("visualize", "grads = torch.autograd.grad(loss, params)   # fresh gradients, the model's .grad untouched\n"
                       "        for p, g in zip(params, grads):\n            p.grad = g\n",
          "optimizer.zero_grad()\n        loss.backward()\n")),
    _bug("no_zero_grad", "gradients accumulate over the steps", VIS,
         ("visualize", "            p.grad = g\n", "            p.grad = g if p.grad is None else p.grad + g\n")),
    _bug("visualize_train_mode", "puts the model in train mode", VIS,
         ("visualize", "    params = image_param.parameters()\n", "    model.train()\n    params = image_param.parameters()\n")),
    _bug("visualize_hooks_left", "a forward hook registered at every step and never removed", VIS,
         ("visualize", CAPTURE,
          "        recorded = type('Recorded', (), {})()\n"
          "        layer.register_forward_hook(lambda m, i, o: setattr(recorded, 'output', o))\n"
          "        model(normalize(images))\n")),
    _bug("visualize_not_in_unit_range", "returns the normalized image, not one in [0, 1]", VIS,
         ("visualize", "return image_param.numpy()[0]",
          "return normalize(image_param())[0].detach().permute(1, 2, 0).numpy()")),
    _bug("visualize_transforms_ignored", "never applies the transforms", VIS,
         ("visualize", "        if transforms is not None:\n            images = transforms(images)\n", "")),
    _bug("visualize_not_normalized", "feeds the [0, 1] images to the model without normalizing them", VIS,
         ("visualize", "model(normalize(images))", "model(images)")),
    _bug("visualize_sgd", "plain SGD instead of Adam", VIS,
         ("visualize", "torch.optim.Adam(params, lr=lr)", "torch.optim.SGD(params, lr=lr)")),
    _bug("visualize_grads_into_model", "loss.backward(): the image is right, but the model's .grad is filled",
         frozenset({"test_visualize_visible", "test_visualize_hidden"}),
         ("visualize", "        grads = torch.autograd.grad(loss, params)   # fresh gradients, the model's .grad untouched\n"
                       "        for p, g in zip(params, grads):\n            p.grad = g\n",
          "        for p in params:\n            p.grad = None\n        loss.backward()\n")),
    _bug("deepdream_no_gradient_normalization", "raw gradient steps", DD,
         ("deepdream", DD_STEP, "x = (x + step_size * grad).clamp(0, 1)")),
    _bug("deepdream_no_clipping", "the image is never clipped to [0, 1]", DD,
         ("deepdream", DD_STEP, "x = x + step_size * grad / (grad.abs().mean() + 1e-8)")),
    _bug("deepdream_single_octave", "only the photo's own size (octaves ignored)", DD,
         ("deepdream", "for i in reversed(range(octaves))]", "for i in [0]]")),
    _bug("deepdream_largest_first", "octaves processed largest first", DD,
         ("deepdream", "for i in reversed(range(octaves))]", "for i in range(octaves)]")),
    _bug("deepdream_not_normalized", "feeds the [0, 1] image to the model without normalizing it", DD,
         ("deepdream", "model(normalize(x))", "model(x)")),
    _bug("deepdream_grads_into_model", "loss.backward(): the dream is right, but the model's .grad is filled", DD,
         ("deepdream", "            (grad,) = torch.autograd.grad(deepdream_objective(recorded.output), x)\n",
          "            deepdream_objective(recorded.output).backward()\n            grad = x.grad\n")),
]

# --- other correct implementations -----------------------------------------------------------
OBJECTIVES_B = {
    "channel_objective": "def channel_objective(acts, channel):\n    return acts.select(1, channel).mean()\n",
    "neuron_objective": ("def neuron_objective(acts, channel, y=None, x=None):\n"
                         "    _, _, h, w = acts.shape\n"
                         "    if y is None:\n        y = h // 2\n    if x is None:\n        x = w // 2\n"
                         "    return acts[:, channel][:, y][:, x].sum() / acts.shape[0]\n"),
    "deepdream_objective": "def deepdream_objective(acts):\n    return acts.pow(2).sum() / acts.numel()\n",
    "jitter": ("def jitter(image, max_shift, generator=None):\n"
               "    dy, dx = torch.randint(0, max_shift + 1, (2,), generator=generator).tolist()\n"
               "    H, W = image.shape[2], image.shape[3]\n"
               "    return image.narrow(2, dy, H - max_shift).narrow(3, dx, W - max_shift)\n"),
}

VISUALIZE_FREEZE = '''
def visualize(model, layer, objective, image_param, transforms, steps, lr):
    """Freeze the model while optimizing, loss.backward(), restore requires_grad afterwards."""
    flags = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    optimizer = torch.optim.Adam(image_param.parameters(), lr=lr)
    acts = {}
    handle = layer.register_forward_hook(lambda module, inputs, output: acts.update(out=output))
    try:
        for step in range(steps):
            optimizer.zero_grad()
            x = image_param()
            x = transforms(x) if transforms is not None else x
            model(normalize(x))
            (-objective(acts["out"])).backward()
            optimizer.step()
    finally:
        handle.remove()
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
    with torch.no_grad():
        return image_param()[0].permute(1, 2, 0).numpy()
'''

VISUALIZE_MAXIMIZE = '''
def visualize(model, layer, objective, image_param, transforms, steps, lr):
    """Adam(maximize=True) with gradients from torch.autograd.grad."""
    params = list(image_param.parameters())
    optimizer = torch.optim.Adam(params, lr=lr, maximize=True)
    for _ in range(steps):
        images = image_param() if transforms is None else transforms(image_param())
        with capture(layer) as rec:
            model(normalize(images))
        for p, g in zip(params, torch.autograd.grad(objective(rec.output), params)):
            p.grad = g
        optimizer.step()
    return image_param.numpy()[0].astype(np.float64)
'''

DEEPDREAM_B = '''
def deepdream(model, layer, image, steps=10, step_size=0.01, octaves=4, octave_scale=1.4):
    """The octave photos made first (largest first, then reversed), an explicit detail buffer,
    the gradient through loss.backward() on the image with the model frozen."""
    device = next(model.parameters()).device
    full = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None].to(device)
    H, W = full.shape[-2:]
    def resized(t, hw):
        return F.interpolate(t, size=hw, mode="bilinear", align_corners=False, antialias=True)
    photos = [resized(full, (round(H / octave_scale ** k), round(W / octave_scale ** k))) for k in range(octaves)]
    flags = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        detail = None
        for base in photos[::-1]:
            detail = torch.zeros_like(base) if detail is None else resized(detail, base.shape[-2:])
            img = torch.clamp(base + detail, 0.0, 1.0)
            for _ in range(steps):
                img = img.detach().requires_grad_(True)
                with capture(layer) as rec:
                    model(normalize(img))
                rec.output.pow(2).mean().backward()
                g = img.grad
                img = torch.clamp(img + step_size * g / (g.abs().mean() + 1e-8), 0.0, 1.0)
            detail = img.detach() - base
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
    return img.detach()[0].permute(1, 2, 0).cpu().numpy()
'''


CORRECT: list[Variant] = [
    Variant("solution", "the instructor's solution", lambda answers: answers),
    Variant("freeze_and_backward", "other objectives and jitter; frozen model + loss.backward(); octave pyramid",
            replace_cells(**OBJECTIVES_B, visualize=VISUALIZE_FREEZE, deepdream=DEEPDREAM_B)),
    Variant("adam_maximize", "Adam(maximize=True) with torch.autograd.grad", replace_cells(visualize=VISUALIZE_MAXIMIZE)),
]

_by_name = {v.name: v for v in BUGS}


#: The students of ``make demo``: None is the blank release notebook.
DEMO_SUBMISSIONS = {
    "demo_complete": CORRECT[0].answers,
    "demo_blank": None,
    "demo_buggy": combine(_by_name["channel_sign_flipped"], _by_name["jitter_pads"],
                           _by_name["deepdream_no_clipping"]),
}
