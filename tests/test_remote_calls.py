"""The witness channel against a real sandboxed grading kernel (grading.sandbox + witness.kernel):
the grader calls the notebook's functions there and gets plain data back; side effects come back
onto the grader's own objects; the student's errors, hangs, deaths and forged answers are outcomes,
never the grader's crash; the checks score a kernel's functions exactly as local ones."""
from __future__ import annotations

import asyncio
import contextlib
import io
import os
import time

import pytest
import torch
from torch import nn

import autograder
from autograder import remote
from autograder.model_state import differences, snapshot
from grading.sandbox import SandboxKernelManager
from support import ROOT, cell_ids, instructor_answers, setup_source


class Kernel:
    """A sandboxed witness kernel with a blocking way to run cells and a RemoteKernel."""

    def __init__(self, workdir):
        self.loop = asyncio.new_event_loop()
        self.km = SandboxKernelManager(course_root=str(ROOT))
        self.loop.run_until_complete(self.km.start_kernel(cwd=str(workdir)))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.loop.run_until_complete(self.kc.wait_for_ready(timeout=120))
        self.connect()

    def connect(self):
        info = self.km.get_connection_info(session=False)
        self.remote = remote.RemoteKernel(remote.Channel(info, self.km.alive_now, self.km.interrupt_now))

    def run(self, code: str) -> dict:
        reply = self.loop.run_until_complete(self.kc.execute_interactive(code, timeout=300, output_hook=lambda m: None))
        assert reply["content"]["status"] == "ok", reply["content"]
        return reply

    def fn(self, name: str) -> remote.RemoteFunction:
        return remote.RemoteFunction(self.remote, name)

    def restart(self):
        self.remote.close()
        self.kc.stop_channels()
        self.loop.run_until_complete(self.km.restart_kernel(now=True))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.loop.run_until_complete(self.kc.wait_for_ready(timeout=120))
        self.connect()

    def close(self):
        self.remote.close()
        self.kc.stop_channels()
        self.loop.run_until_complete(self.km.shutdown_kernel(now=True))
        self.loop.close()


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    k = Kernel(tmp_path_factory.mktemp("work"))
    yield k
    k.close()


def test_plain_calls_values_errors_and_missing_names(kernel):
    kernel.run("def add(a, b):\n    print('noise'); return a + b\n"
               "def boom(x):\n    return [1][x]\n"
               "CONSTANT = {'a': [1, 2.5]}\nmodule_value = __import__('os')")
    assert kernel.fn("add")(2, 3) == 5
    assert torch.equal(kernel.fn("add")(torch.ones(2), torch.ones(2)), torch.full((2,), 2.0))
    with pytest.raises(remote.StudentError) as err:
        kernel.fn("boom")(5)
    assert err.value.type_name == "IndexError" and "list index out of range" in err.value.message
    assert "line 4 of your cell" in err.value.where
    with pytest.raises(remote.StudentError, match="NameError"):
        kernel.fn("not_defined")(1)
    found = kernel.remote.describe(["add", "CONSTANT", "module_value", "nothing"])
    assert found["add"]["kind"] == "callable" and found["nothing"]["kind"] == "missing"
    assert found["CONSTANT"] == {"kind": "data", "type": "builtins.dict", "value": {"a": [1, 2.5]}}
    assert found["module_value"]["kind"] == "other"


def test_side_effects_come_back_onto_the_graders_objects(kernel):
    kernel.run(
        "import torch\n"
        "def meddle(model, layer, x):\n"
        "    model.train()\n"
        "    with torch.no_grad():\n"
        "        layer.weight.data.mul_(2)\n"                      # .data: no version bump
        "    layer.register_forward_hook(lambda *a: None)\n"
        "    model(x).sum().backward()\n"
        "    x.add_(1)\n"
        "    return 0\n")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2)).eval()
    model(torch.randn(1, 3, 8, 8))
    x = torch.zeros(2, 3, 8, 8)
    before = snapshot(model)
    weight = model[0].weight.detach().clone()
    kernel.fn("meddle")(model, model[0], x)
    found = " | ".join(differences(model, before, grads=True))
    for fragment in ("parameter values changed", "train/eval mode", "hooks left registered", ".grad",
                     "buffers changed"):   # BatchNorm statistics moved in train mode
        assert fragment in found, found
    assert torch.equal(model[0].weight, 2 * weight) and torch.equal(x, torch.ones_like(x))


def test_models_are_sent_once_and_the_kernels_copy_stays_pristine(kernel, monkeypatch):
    kernel.run("def first_weight(model):\n    return float(next(model.parameters()).flatten()[0])\n"
               "def scribble(model):\n    next(model.parameters()).data.fill_(7.0)\n    return 0\n")
    sizes = []
    dumps = remote._dumps
    monkeypatch.setattr(remote, "_dumps", lambda v, k: sizes.append(len(b := dumps(v, k))) or b)
    big = nn.Linear(1000, 1000)
    w0 = float(big.weight.detach().flatten()[0])
    assert kernel.fn("first_weight")(big) == pytest.approx(w0)
    assert kernel.fn("first_weight")(big) == pytest.approx(w0)
    assert sizes[0] > 4_000_000 and sizes[1] < 10_000, sizes
    kernel.fn("scribble")(big)                  # changes the grader's copy too (mirrored) ...
    assert float(big.weight.detach().flatten()[0]) == 7.0
    with torch.no_grad():
        big.weight.flatten()[0] = w0            # ... so it is sent again after the grader's change
    assert kernel.fn("first_weight")(big) == pytest.approx(w0)


RETURNS_MODULES = (
    "import copy, torch\n"
    "def same(model):\n    return model\n"
    "def layer_of(model):\n    return model[0]\n"
    "def edited_copy(model):\n"
    "    c = copy.deepcopy(model)\n"
    "    torch.nn.init.zeros_(c[0].weight)\n"
    "    c[0].bias.requires_grad_(False)\n"
    "    return c.train()\n"
    "def in_place(model):\n"
    "    torch.nn.init.ones_(model[2].weight)\n    return model\n"
    "def other(model):\n    return torch.nn.Linear(2, 2)\n")


def _returned_modules(call) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).eval()
    before = {n: t.clone() for n, t in model.state_dict().items()}
    assert call("same", model) is model
    assert call("layer_of", model) is model[0]
    copied = call("edited_copy", model)
    assert isinstance(copied, nn.Sequential) and copied is not model and copied[0] is not model[0]
    assert torch.equal(copied[0].weight, torch.zeros(3, 4)) and torch.equal(copied[2].weight, model[2].weight)
    assert copied.training and not copied[0].bias.requires_grad and not model.training
    assert all(torch.equal(t, before[n]) for n, t in model.state_dict().items()), "the argument changed"
    assert call("in_place", model) is model and torch.equal(model[2].weight, torch.ones(2, 3))
    assert type(call("other", model)).__name__ == "Opaque"


def test_returned_modules_come_back_as_the_argument_or_a_rebuilt_copy(kernel):
    """A module is no plain data: the argument it is comes back as the grader's own object, a copy
    shaped like an argument is rebuilt from the grader's object with the kernel's tensors, modes
    and flags; anything else is its type's name. In-process calls see exactly the same."""
    kernel.run(RETURNS_MODULES)
    _returned_modules(lambda name, *args: kernel.fn(name)(*args))
    local: dict = {}
    exec(RETURNS_MODULES, local)
    _returned_modules(lambda name, *args: remote.observe(local[name], args).value)


def test_forged_module_reports_are_invalid_replies():
    model = nn.Linear(2, 2)
    good = {"value": None, "error": None, "grads": None, "changes": [], "notes": [], "seconds": 0.0}
    for forged in ({"like": 0, "state": {"weight": torch.zeros(3, 3)}, "training": {}, "requires_grad": {}},
                   {"like": 0, "state": {"weight": torch.zeros(2, 2)}, "training": {}, "requires_grad": {}},
                   {"arg": 5, "sub": ""}, {"arg": 0, "sub": "nothing.here"}, {"arg": 0}):
        with pytest.raises(remote.InvalidReply):
            observation, _ = remote.parse_observation(dict(good, module=forged), [], remote=True)
            remote.returned_module((model,), {}, observation.module)


def test_gradients_are_reported_on_request(kernel):
    kernel.run("def mean_sq(acts):\n    return (acts ** 2).mean()\ndef detached(acts):\n    return acts.mean().detach()")
    x = torch.arange(4.0).requires_grad_(True)
    obs = remote.observe(kernel.fn("mean_sq"), (x,), {}, grads_wrt=(0,))
    assert obs.value.requires_grad and torch.allclose(obs.grads[0], x.detach() / 2)
    obs = remote.observe(kernel.fn("detached"), (x,), {}, grads_wrt=(0,))
    assert not obs.value.requires_grad and obs.grads == [None]


def test_a_hang_is_interrupted_at_the_budget_and_the_kernel_goes_on(kernel):
    kernel.run("import time\ndef hang():\n    while True:\n        time.sleep(0.05)\ndef ok():\n    return 1")
    kernel.remote.budget = 2.0
    start = time.monotonic()
    with pytest.raises(remote.CallTimeout):
        kernel.fn("hang")()
    assert time.monotonic() - start < 20
    with pytest.raises(remote.CallTimeout):  # the budget is spent: nothing more is asked
        kernel.fn("ok")()
    kernel.remote.budget = float("inf")
    assert kernel.fn("ok")() == 1


def test_forged_or_missing_answers_are_invalid_replies(kernel, monkeypatch):
    monkeypatch.setattr(remote, "INTERRUPT_GRACE", 3.0)
    kernel.run(
        "from witness.agent import AGENT\n"
        "import comm\n"
        "real = AGENT.handle\n"
        "def forged(data, buffers):\n"
        "    if data.get('name') == 'lie':\n"
        "        return {'op': 'reply', 'header': {'t': 'pickle', 'v': 'cos\\nsystem\\n'}}, []\n"
        "    if data.get('name') == 'huge':\n"
        "        return {'op': 'reply', 'header': {'t': 'str', 'v': 'x' * (300 * 2**20)}}, []\n"
        "    return real(data, buffers)\n"
        "AGENT.handle = forged\n"
        "def fine():\n    return 2\n")
    try:
        with pytest.raises(remote.InvalidReply, match="not valid plain data"):
            kernel.fn("lie")()
        assert kernel.fn("fine")() == 2
        kernel.run("saved = {k: c._msg_callback for k, c in comm.get_comm_manager().comms.items()}\n"
                   "for c in comm.get_comm_manager().comms.values():\n    c._msg_callback = lambda msg: None")
        with pytest.raises(remote.InvalidReply, match="without answering"):
            kernel.fn("fine")()
        kernel.run("for k, cb in saved.items():\n    comm.get_comm_manager().comms[k]._msg_callback = cb")
        assert kernel.fn("fine")() == 2
        # A message over the size limit is dropped by ZeroMQ before the grader reads a byte of it:
        # the answer never comes, and the kernel is given up.
        kernel.remote.budget = 5.0
        with pytest.raises((remote.CallTimeout, remote.KernelLost)):
            kernel.fn("huge")()
    finally:
        kernel.restart()


def test_checks_score_a_kernels_functions_as_they_score_local_ones(kernel):
    answers = instructor_answers("L2A2_gradcam")
    kernel.run(setup_source("L2A2_gradcam") + "\n" + "\n".join(answers[g] for g in cell_ids("L2A2_gradcam", "answer")))
    kernel.run("def bad_grad_cam(model, layer, image, class_idx=None):\n"
               "    layer.register_forward_hook(lambda *a: None)\n"
               "    return grad_cam(model, layer, image, class_idx)\n")
    for check, name, points in [(autograder.check_grad_cam, "grad_cam", 6),
                                (autograder.check_localization_box, "localization_box", 2),
                                (autograder.check_target_layers, None, 3)]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            arg = kernel.remote.describe(["TARGET_LAYERS"])["TARGET_LAYERS"]["value"] if name is None else kernel.fn(name)
            assert check(arg, points=points) == points, out.getvalue()
    with contextlib.redirect_stdout(io.StringIO()) as out:
        score = autograder.check_grad_cam(kernel.fn("bad_grad_cam"), points=6)
    assert score == pytest.approx(5.4) and "hooks left registered" in out.getvalue()
    assert "as observed in your kernel" in out.getvalue()


def test_a_dead_kernel_is_lost_not_a_crash(kernel):
    kernel.run("import os\ndef die():\n    os._exit(3)")
    with pytest.raises(remote.KernelLost):
        kernel.fn("die")()
    with pytest.raises(remote.KernelLost):
        kernel.fn("die")()
    kernel.restart()
    kernel.run("def back():\n    return 'back'")
    assert kernel.fn("back")() == "back"
