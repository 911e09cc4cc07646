"""The bad-submission catalog: broken, damaged, cheating and hostile notebooks, graded by nbgrader.

Every case is a student in a mixed batch with two correct students, graded by ONE
``nbgrader autograde`` call on a scratch course, with the sandbox on (never opted out: the
memory-hog and fork-bomb cases rely on its limits). For each case the test states its outcome:

- ``zero``: test cells that must score 0; ``lose``: test cells that must lose points;
  ``allowed``: cells that may lose points (the student's notebook broke its own state); every
  other test cell of that student must keep full marks (the damage stays where it is);
- tampering with the grading modules, torch or numpy is restored at once, and every check that
  runs after it scores 0 (autograder/integrity.py states the policy);
- ``says``: what the student's feedback HTML must contain (it says what happened);
- ``check``: extra assertions on the course's files (nothing the student reached changed).

For the whole batch: every student is scored and has feedback, the correct students get full
marks in every cell (exactly as when graded alone, see test_determinism), and no file of the
course or of another student changed.

The catalog is split into two batches (the two pytest workers grade in parallel). Most cases are
L2A2 notebooks; a few are L2A3 notebooks (``assignment=A3``: tricks on what only L2A3 has, a
returned model), graded by a second ``nbgrader autograde`` call in the same batch and course,
with the same correct classmates (``ok_*`` submit both assignments).
"""
from __future__ import annotations

import hashlib
import os
from html import unescape
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat
import pytest
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell

from grading import course, scores
from grading.submissions import fill, patch
from support import cell_ids, instructor_answers, release_notebook

A = "L2A2_gradcam"
NB = "L2A2_gradcam.ipynb"
#: Short cell timeout for the catalog (the slowest hidden check takes a few seconds).
TIMEOUT = 60
#: Address-space limit of the catalog's kernels: the memory hog holds at most ~5 GB of this.
MEMORY = 8 * 1024 ** 3

GC = {"test_grad_cam_visible", "test_grad_cam_hidden"}
CF = {"test_counterfactual_visible", "test_counterfactual_hidden"}
SEG = {"test_threshold_segmentation_visible", "test_threshold_segmentation_hidden"}
BOX = {"test_localization_box_visible", "test_localization_box_hidden"}
ALL_TESTS = set(cell_ids(A, "test"))
A3 = "L2A3_saliency"
NB3 = "L2A3_saliency.ipynb"
TESTS = {A: ALL_TESTS, A3: set(cell_ids(A3, "test"))}
SAL3 = {"test_saliency_visible", "test_saliency_hidden"}
GGC3 = {"test_guided_grad_cam_visible", "test_guided_grad_cam_hidden"}
RL3 = {"test_randomize_layers_visible", "test_randomize_layers_hidden"}

WRAPPER = "    return _grad_cam(model, layer, image, class_idx, negate_gradient=False)"
SEG_RETURN = "    return segmented.astype(image.dtype), mask"
HOOK_LINE = "    with capture(layer) as recorded:"


def answers() -> dict[str, str]:
    return instructor_answers(A)


def correct() -> NotebookNode:
    return fill(release_notebook(A), answers())


def answer_patch(cell: str, old: str, new: str) -> Callable[[], NotebookNode]:
    return lambda: fill(release_notebook(A), patch(answers(), cell, old, new))


def extra_cell(after: str, code: str, base: Callable[[], NotebookNode] = correct):
    """The correct notebook with a student's own code cell inserted after grade cell ``after``."""
    def build() -> NotebookNode:
        nb = base()
        index = next(i for i, c in enumerate(nb.cells) if _gid(c) == after)
        nb.cells.insert(index + 1, new_code_cell(code))
        return nb
    return build


def _gid(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def l2a3_patch(*edits: tuple[str, str, str]) -> Callable[[], NotebookNode]:
    """The L2A3 instructor's notebook with ``(cell, old, new)`` patches applied in order."""
    def build() -> NotebookNode:
        found = instructor_answers(A3)
        for cell, old, new in edits:
            found = patch(found, cell, old, new)
        return fill(release_notebook(A3), found)
    return build


def blank() -> NotebookNode:
    return release_notebook(A)


def edit(fn: Callable[[NotebookNode], None], base: Callable[[], NotebookNode] = correct) -> Callable[[], NotebookNode]:
    def build() -> NotebookNode:
        nb = base()
        fn(nb)
        return nb
    return build


def retag(nb: NotebookNode) -> None:
    """Forged metadata, no code: tests skipped, tagged to raise, worth nothing or turned into
    answers; answers turned into locked tests; the kernelspec replaced."""
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            cell.metadata["tags"] = ["skip-execution", "raises-exception"]
            meta.update(grade=False, points=0)
        elif meta.get("solution") and cell.cell_type == "code":
            meta.update(solution=False, grade=True, locked=True, points=100)
    nb.metadata["kernelspec"] = {"name": "bash", "display_name": "bash", "language": "bash"}


def delete_cell(gid: str) -> Callable[[NotebookNode], None]:
    return lambda nb: nb.cells.pop(next(i for i, c in enumerate(nb.cells) if _gid(c) == gid))


def set_source(gid: str, source: str) -> Callable[[NotebookNode], None]:
    def fn(nb):
        next(c for c in nb.cells if _gid(c) == gid).source = source
    return fn


def swap_cells(a: str, b: str) -> Callable[[NotebookNode], None]:
    def fn(nb):
        i = next(k for k, c in enumerate(nb.cells) if _gid(c) == a)
        j = next(k for k, c in enumerate(nb.cells) if _gid(c) == b)
        nb.cells[i], nb.cells[j] = nb.cells[j], nb.cells[i]
    return fn


def raw_bytes(fn: Callable[[bytes], bytes]) -> Callable[[], bytes]:
    return lambda: fn(nbformat.writes(correct()).encode())


@dataclass
class Case:
    name: str
    build: Callable[[], NotebookNode | bytes]
    zero: set = field(default_factory=set)
    lose: set = field(default_factory=set)
    allowed: set = field(default_factory=set)  # may lose points (state the student broke)
    says: tuple = ()
    filename: str = NB
    files: dict = field(default_factory=dict)  # more files in the submission folder
    check: Callable[[Path], list[str]] | None = None
    links: dict = field(default_factory=dict)  # symbolic links in the submission folder
    assignment: str = A


def _absent(*relative: str) -> Callable[[Path], list[str]]:
    def check(root: Path) -> list[str]:
        return [f"{r} was created" for r in relative if (root / r).exists()]
    return check


ROOT = "COURSE_ROOT"  # replaced by the scratch course's absolute path when the batch is built

CASES = [
    # --- wrong code ------------------------------------------------------------------------------
    Case("syntax_error", answer_patch("grad_cam", WRAPPER, WRAPPER + "\n\ndef broken(:\n    pass"),
         zero=GC | CF, says=("SyntaxError",)),
    Case("import_error", answer_patch("localization_box", "import skimage.measure",
                                      "import skimage.measure\nimport cv2_is_not_installed"),
         zero=BOX, says=("ModuleNotFoundError", "cv2_is_not_installed")),
    Case("returns_none", answer_patch("grad_cam", WRAPPER, WRAPPER.replace("return ", "")),
         zero=GC, says=("got NoneType",)),
    Case("wrong_shape", answer_patch("grad_cam", WRAPPER, WRAPPER + "[None]"),
         lose=GC, says=("expected a float32 torch tensor of shape",)),
    Case("nan_output", answer_patch("grad_cam", WRAPPER, WRAPPER + " * float('nan')"),
         lose=GC, says=("range [nan, nan]",)),
    Case("numpy_not_tensor", answer_patch("grad_cam", WRAPPER, WRAPPER + ".numpy()"),
         lose=GC, says=("got ndarray",)),
    Case("tensor_not_numpy", answer_patch(
        "threshold_segmentation", SEG_RETURN,
        "    import torch\n    return torch.from_numpy(segmented.astype(image.dtype)), torch.from_numpy(mask)"),
        zero={"test_threshold_segmentation_hidden"}, lose=SEG, says=("expected numpy arrays",)),
    Case("cuda_on_cpu", answer_patch("grad_cam", HOOK_LINE, "    image = image.cuda()\n" + HOOK_LINE),
         zero=GC | CF, says=("NVIDIA",)),
    # --- time --------------------------------------------------------------------------------------
    Case("infinite_loop_cell", extra_cell("setup", "while True:\n    pass"),
         says=("CellTimeoutError",)),
    Case("sleep_cell", extra_cell("setup", "import time\ntime.sleep(10_000)"), says=("CellTimeoutError",)),
    Case("loop_in_graded_function", answer_patch(
        "localization_box", '    cam = np.asarray(cam, dtype=float)',
        '    while True:\n        pass\n    cam = np.asarray(cam, dtype=float)'),
        zero=BOX, says=("CellTimeoutError",)),
    Case("interrupt_swallowed", extra_cell(
        "setup", "import time\nwhile True:\n    try:\n        time.sleep(1)\n    except KeyboardInterrupt:\n        pass"),
        says=("did not stop when interrupted",)),
    # --- kernel death and resources ------------------------------------------------------------------
    Case("os_exit", extra_cell("grad_cam", "import os\nos._exit(1)"), says=("exited with status 1",)),
    Case("segfault", extra_cell("grad_cam", "import ctypes\nctypes.string_at(0)"), says=("SIGSEGV",)),
    Case("huge_allocation", extra_cell("setup", "import torch\nbig = torch.empty(10**11)"),
         says=("RuntimeError",)),
    # The traceback IPython keeps holds the hog's memory: checks after it may run short of memory.
    Case("memory_exhaustion", extra_cell(
        "setup", "def hog():\n    blocks = []\n    while True:\n        blocks.append(np.ones(10**8))\nhog()"),
        allowed=ALL_TESTS, says=("MemoryError",)),
    Case("fork_bomb", extra_cell(
        "test_localization_box_hidden",
        "import os\ndef bomb():\n    while True:\n        if os.fork() == 0:\n            try:\n"
        "                bomb()\n            finally:\n                os._exit(0)\nbomb()"),
        # Contained by the process limit; the bomb's unreaped children keep the student's own
        # kernel at that limit, so the checks after it may fail (never other students').
        allowed=CF, says=("Resource temporarily unavailable",)),
    Case("output_flood", extra_cell(
        "setup", "import sys\nfor i in range(300_000):\n    print('spam', i)\n    print('err', i, file=sys.stderr)"),
        says=("output budget",)),
    Case("huge_image", extra_cell(
        "setup", "import os\nfrom IPython.display import Image, display\n"
                 "display(Image(data=b'\\x89PNG\\r\\n\\x1a\\n' + os.urandom(30_000_000), format='png'))"),
        says=("output budget",)),
    # --- notebook damage ------------------------------------------------------------------------------
    Case("deleted_test_cell", edit(delete_cell("test_grad_cam_hidden")), says=("was missing and was restored",)),
    Case("edited_test_cell", edit(set_source("test_grad_cam_hidden", "print('all good')\n6")),
         says=("grad_cam: 6 / 6 points",)),
    Case("deleted_answer_cell", edit(delete_cell("localization_box")), zero=BOX,
         says=("answer cell `localization_box` was missing",)),
    Case("cells_reordered", edit(swap_cells("grad_cam", "threshold_segmentation")), says=("out of order",)),
    Case("truncated_json", raw_bytes(lambda b: b[: len(b) // 2]), zero=ALL_TESTS, says=("could not be read", "not a valid notebook")),
    Case("empty_file", lambda: b"", zero=ALL_TESTS, says=("the file is empty",)),
    Case("renamed_notebook", correct, filename=f"Copy of {NB}", says=("was named",)),
    # --- cheating ----------------------------------------------------------------------------------
    Case("imports_solutions", answer_patch("grad_cam", WRAPPER, WRAPPER + "\n\nfrom solutions.gradcam import grad_cam"),
         zero=GC, says=("No credit for `grad_cam`", "solutions.gradcam")),
    Case("sys_modules_and_importlib", answer_patch(
        "threshold_segmentation", SEG_RETURN,
        SEG_RETURN + "\n\nimport importlib, sys\nimportlib.import_module('solutions.segmentation')\n"
        "threshold_segmentation = sys.modules['solutions.segmentation'].threshold_segmentation"),
        zero=SEG, says=("No credit for `threshold_segmentation`", "Flagged for the instructor's review")),
    Case("patches_the_check", extra_cell(
        "localization_box", "import autograder\nautograder.check_localization_box = lambda *a, **k: 2.0",
        base=answer_patch("localization_box", "    return int(rows.min())", "    return 0, 0, 0, 0\n    return int(rows.min())")),
        zero=BOX, says=("No module named 'autograder'",)),  # the checks are not in the kernel
    Case("ships_fake_autograder", answer_patch(
        "localization_box", "    return int(rows.min())", "    return 0, 0, 0, 0\n    return int(rows.min())"),
        files={"autograder/__init__.py": "def check_localization_box(*args, **kwargs):\n    return 2.0\n"},
        zero=BOX, says=("localization_box: 0 / 2 points",)),
    Case("patches_torch_and_numpy", extra_cell(
        "setup", "import torch, numpy\ntorch.allclose = lambda *a, **k: True\n"
                 "numpy.allclose = lambda *a, **k: True\nnumpy.array_equal = lambda *a, **k: True",
        base=answer_patch("threshold_segmentation", "    mask = cam >= threshold", "    mask = cam > threshold")),
        lose=SEG, says=("0.4 is kept",)),  # the tests run in the grader: the patches change nothing there
    Case("hardcoded_visible_outputs", answer_patch(
        "localization_box", "    cam = np.asarray(cam, dtype=float)",
        "    return (5, 4, 8, 9)  # the box the visible test expects, memorised\n    cam = np.asarray(cam, dtype=float)"),
        zero={"test_localization_box_hidden"}, says=("localization_box: 0 / 2 points",)),
    Case("reads_hidden_tests", extra_cell(
        "setup", f"open('{ROOT}/source/{A}/{NB}').read()"), says=("FileNotFoundError",)),
    # --- hostile -------------------------------------------------------------------------------------
    Case("reads_other_student", extra_cell(
        "setup", f"print(open('{ROOT}/submitted/ok_1/{A}/{NB}').read()[:100])"), says=("FileNotFoundError",)),
    Case("writes_gradebook", extra_cell(
        "setup", f"open('{ROOT}/gradebook.db', 'ab').write(b'pwned')"), says=("Error",)),
    Case("writes_source", extra_cell(
        "setup", f"open('{ROOT}/source/{A}/pwned.py', 'w').write('x')"), says=("Error",),
        check=_absent(f"source/{A}/pwned.py")),
    Case("writes_other_student", extra_cell(
        "setup", "import os\n"
                 f"for p in ['{ROOT}/submitted/ok_1/{A}/pwned.txt', '../../ok_1/{A}/pwned.txt', '{ROOT}/autograded/ok_1/{A}/pwned.txt']:\n"
                 "    try:\n        open(p, 'w').write('x')\n        print('WROTE', p)\n"
                 "    except OSError as err:\n        print('refused:', type(err).__name__)"),
        says=("refused:",),
        check=_absent(f"submitted/ok_1/{A}/pwned.txt", f"autograded/ok_1/{A}/pwned.txt")),
    Case("network", extra_cell(
        "setup", "import socket\nsocket.create_connection(('pypi.org', 443), timeout=5)"),
        says=("gaierror",)),
    # --- the grade channel: blank answers plus one trick; every test must score 0 ----------------
    Case("display_machinery", extra_cell("setup", (
        "ip = get_ipython()\n"
        "for mime in ('text/plain', 'text/html'):\n"
        "    ip.display_formatter.formatters[mime].for_type(float, lambda *a: '6.0')\n"
        "ip.display_formatter.formatters['text/plain'].for_type(type(None), lambda *a: '6.0')\n"
        "ip.ast_node_interactivity = 'none'\nimport sys\nsys.displayhook = lambda value: print(6.0)\n"
        "print('display machinery replaced')"), base=blank),
        zero=ALL_TESTS, says=("display machinery replaced", "NotImplementedError")),
    Case("exception_machinery", extra_cell("setup", (
        "ip = get_ipython()\nip.set_custom_exc((BaseException,), lambda *a, **k: None)\n"
        "import sys\nsys.excepthook = lambda *a: None\nip.showtraceback = lambda *a, **k: None\n"
        "print('exceptions silenced')"), base=blank),
        zero=ALL_TESTS, says=("exceptions silenced", "NotImplementedError")),
    Case("source_transformers", extra_cell("setup", (
        "import ast\nip = get_ipython()\n"
        "class NoRaise(ast.NodeTransformer):\n    def visit_Raise(self, node):\n        return ast.Pass()\n"
        "ip.ast_transformers.append(NoRaise())\n"
        "ip.input_transformers_cleanup.append(lambda lines: [l.replace('assert ', 'pass  #') for l in lines])\n"
        "print('transformers installed')"), base=blank),
        zero=ALL_TESTS, says=("transformers installed",)),
    Case("event_callbacks", extra_cell("setup", (
        "ip = get_ipython()\n"
        "def forge(*args, **kwargs):\n    print('grad_cam: 6 / 6 points')\n"
        "ip.events.register('pre_run_cell', forge)\nip.events.register('post_run_cell', forge)\n"
        "ip.events.register('post_execute', forge)"), base=blank),
        zero=ALL_TESTS, says=("NotImplementedError",)),
    Case("forged_metadata", edit(retag, base=blank), zero=ALL_TESTS, says=("NotImplementedError",)),
    Case("forged_witness", extra_cell("setup", (
        "import torch, threading, time\nfrom witness import agent, codec\n"
        "real = agent.AGENT.handle\n"
        "def forged(data, buffers):\n"   # a plausible answer to every call: a map, 'nothing changed'
        "    if data.get('op') != 'call':\n        return real(data, buffers)\n"
        "    payload = {'value': torch.full((32, 32), 0.5), 'error': None, 'grads': None,\n"
        "               'changes': [], 'notes': [], 'seconds': 0.1}\n"
        "    header, out = codec.encode(payload)\n    return {'op': 'reply', 'header': header}, out\n"
        "agent.AGENT.handle = forged\n"
        "def spam():\n    while True:\n        print('grad_cam: 6 / 6 points'); time.sleep(0.01)\n"
        "threading.Thread(target=spam, daemon=True).start()\n"
        "import os\nif os.fork() == 0:\n    time.sleep(3600)"), base=blank),
        zero=ALL_TESTS, says=("what your kernel reports about side effects earns nothing",)),
    Case("profilers_and_tracers", extra_cell("setup", (
        "import sys, threading\n"
        "def tracer(frame, event, arg):\n"
        "    if event == 'return' and frame.f_code.co_name.startswith(('check', 'observe')):\n"
        "        frame.f_locals['value'] = 6.0\n"
        "    return tracer\n"
        "sys.setprofile(tracer); sys.settrace(tracer); threading.setprofile(tracer)"), base=blank),
        zero=ALL_TESTS, says=("NotImplementedError",)),
    Case("reads_caller_frames", answer_patch("grad_cam", WRAPPER, (
        "    import sys, torch\n"
        "    frame, found = sys._getframe(1), None\n"
        "    while frame is not None and found is None:\n"
        "        for key in ('expected', 'want', 'reference', 'ref'):\n"
        "            if isinstance(frame.f_locals.get(key), torch.Tensor):\n"
        "                found = frame.f_locals[key]\n"
        "        frame = frame.f_back\n"
        "    return found if found is not None else torch.zeros(image.shape[-2:])")),
        lose=GC, says=("differs from the reference",)),
    Case("shadowing_and_odd_values", answer_patch("grad_cam", WRAPPER, (
        "    import torch\n"
        "    class Always(torch.Tensor):\n"
        "        def __eq__(self, other): return True\n"
        "        def __sub__(self, other): return torch.zeros(())\n"
        "        def __array__(self, *a, **k): raise RuntimeError('no')\n"
        "    return torch.ones(image.shape[-2:]).as_subclass(Always)")),
        lose=GC, says=("max |yours - reference|",)),
    Case("global_library_state", extra_cell("grad_cam", (
        "import torch, numpy, witness.agent\nimport torch.nn.functional as F\n"
        "torch.manual_seed = lambda *a: None\nnumpy.random.seed = lambda *a: None\n"
        "torch.nn.modules.module.register_module_forward_hook(lambda m, i, o: o)\n"
        "real_call = witness.agent.Agent._call\n"
        "def zero_models(self, data, buffers):\n"       # scribble on the kernel's cached models
        "    for m in self.handles.values():\n"
        "        with torch.no_grad():\n"
        "            for p in m.parameters(): p.mul_(0.5)\n"
        "    return real_call(self, data, buffers)\n"
        "witness.agent.Agent._call = zero_models")),
        lose={"test_grad_cam_hidden", "test_counterfactual_hidden"},  # the visible tests' models are fresh
        says=("parameter values changed",)),
    Case("imports_test_only_libraries", answer_patch("grad_cam", WRAPPER, (
        "    from pytorch_grad_cam import GradCAM\n    import captum\n" + WRAPPER)),
        zero=GC, says=("No credit for `grad_cam`", "pytorch_grad_cam")),
    # --- the grader's files ---------------------------------------------------------------------
    Case("links_fifos_devices", extra_cell("setup", (
        "import os\n"
        f"targets = ['/etc/shadow', '{ROOT}/gradebook.db', '{ROOT}/submitted/ok_1', '{ROOT}/source', '/root']\n"
        "for folder in ['.', '/tmp', '/dev/shm', '/sandbox/kernel']:\n"
        "    for i, target in enumerate(targets):\n"
        "        for name in (f'link{i}', 'timestamp.txt', 'L2A2_gradcam.ipynb'):\n"
        "            try:\n                os.symlink(target, os.path.join(folder, name))\n"
        "            except OSError:\n                pass\n"
        "    for name in ('fifo', 'L2A2_gradcam.html'):\n"
        "        try:\n            os.mkfifo(os.path.join(folder, name))\n        except OSError:\n            pass\n"
        "    try:\n        os.mknod(os.path.join(folder, 'dev'), 0o600 | 0o020000, os.makedev(1, 3))\n"
        "    except OSError as err:\n        print('no device:', err.strerror)\n"
        "    try:\n        os.link('/etc/passwd', os.path.join(folder, 'hard'))\n"
        "    except OSError as err:\n        print('no hard link:', err.strerror)\n"
        "print('planted')")),
        says=("planted", "no device")),
    Case("fills_disk_and_tmpfs", extra_cell("setup", (
        "for folder in ['.', '/tmp', '/dev/shm']:\n"
        "    try:\n"
        "        with open(folder + '/fill', 'wb') as f:\n"
        "            for _ in range(4096):\n                f.write(b'x' * 2**20)\n"
        "    except OSError as err:\n        print('stopped:', folder, err.strerror)")),
        says=("No space left on device",)),
    Case("plants_timestamp", extra_cell("setup", (
        f"for path in ['timestamp.txt', '../timestamp.txt', '{ROOT}/autograded/plants_timestamp/{A}/timestamp.txt',\n"
        f"             '{ROOT}/submitted/plants_timestamp/{A}/timestamp.txt']:\n"
        "    try:\n        open(path, 'w').write('2099-01-01 00:00:00.000000 UTC'); print('wrote', path)\n"
        "    except OSError as err:\n        print('refused', path, type(err).__name__)")),
        says=("refused",), check=lambda root: [] if (
            root / "autograded" / "plants_timestamp" / A / "timestamp.txt").read_text().startswith("2030")
        else ["a planted timestamp reached autograded/"]),
    Case("submitted_links", correct, links={"secret.txt": f"{ROOT}/gradebook.db", "shadow": "/etc/shadow",
                                             "classmate": f"{ROOT}/submitted/ok_1/{A}/{NB}"},
         says=("not regular files, set aside",)),
    # --- L2A3 (the second assignment of each batch) ----------------------------------------------
    # Randomizes the caller's model in place, then returns a deep copy of it: the copy is right,
    # but the kernel reports the caller's model changed; the grader mirrors that onto its own model.
    Case("l2a3_randomized_in_place_returns_copy", l2a3_patch(
        ("randomize_layers", "randomized = copy.deepcopy(model)", "randomized = model"),
        ("randomize_layers", "    return randomized", "    return copy.deepcopy(randomized)")),
        assignment=A3, filename=NB3, lose=RL3, says=("the caller's model changed",)),
    # captum and pytorch-grad-cam are not in the kernel, and using them earns nothing anyway.
    Case("l2a3_imports_captum_and_grad_cam", l2a3_patch(
        ("saliency", "    grad, _ = class_gradient(model, image, class_idx)\n    return grad[0].abs().amax(dim=0)",
         "    from captum.attr import Saliency\n"
         "    return Saliency(model).attribute(image, target=class_idx, abs=True)[0].amax(dim=0)"),
        ("guided_grad_cam", "    cam = grad_cam(model, layer, image, class_idx)",
         "    from pytorch_grad_cam import GuidedBackpropReLUModel\n    cam = grad_cam(model, layer, image, class_idx)")),
        assignment=A3, filename=NB3, zero=SAL3 | GGC3 | {"test_smoothgrad_visible"},   # that test compares with saliency
        says=("No credit for `saliency`", "captum", "No credit for `guided_grad_cam`", "pytorch_grad_cam")),
    # The kernel's witness forges how a returned module travels back: a "copy" whose every tensor
    # is 0.5. The grader rebuilds it from its own model and judges those values, never trusting them.
    Case("l2a3_forged_returned_module", extra_cell("setup", (
        "import witness.agent as agent\n"
        "honest = agent.returned_module\n"
        "def forged(value, args, kwargs):\n"
        "    found = honest(value, args, kwargs)\n"
        "    if found is not None and 'like' in found:\n"
        "        found['state'] = {n: t * 0 + 0.5 for n, t in found['state'].items()}\n"
        "    return found\n"
        "agent.returned_module = forged"), base=l2a3_patch()),
        assignment=A3, filename=NB3, lose=RL3, says=("does not follow the layer's default initialization",)),
]

OK_STUDENTS = ("ok_1", "ok_2")
#: Planted in a correct classmate's notebook and in the instructor's folder: must never reach
#: another student's autograded notebook or feedback.
CANARY = "CANARY-7f3e-not-for-other-students"


def _tree_hashes(root: Path, skip: set[str]) -> dict[str, str]:
    """sha256 of every file under ``root`` except the top-level entries in ``skip``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        if rel.parts and (rel.parts[0] in skip or rel.parts[0] == ".grading-cache"):
            continue  # the grader's own reference cache changes by design
        if not rel.parts:
            filenames = [f for f in filenames if f not in skip]
        if rel.parts[:1] == ("submitted",) and len(rel.parts) >= 2 and rel.parts[1] not in OK_STUDENTS:
            continue  # a damaged student's own folder gets .original/ (tested per case)
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _write_submission(root: Path, student: str, case: Case) -> None:
    content = case.build()
    folder = root / "submitted" / student / case.assignment
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        (folder / case.filename).write_bytes(content)
    else:
        text = nbformat.writes(content).replace(ROOT, str(root))
        (folder / case.filename).write_text(text)
    for name, text in case.files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    for name, target in case.links.items():
        os.symlink(target.replace(ROOT, str(root)), folder / name)
    (folder / "timestamp.txt").write_text("2030-01-01 12:00:00.000000 UTC")


def batch_assignments(cases: list[Case]) -> list[str]:
    """L2A2 (every batch), then each other assignment some case of the batch submits."""
    return [A] + [a for a in TESTS if a != A and any(c.assignment == a for c in cases)]


def grade_batch(root: Path, cases: list[Case]) -> dict:
    assignments = batch_assignments(cases)
    for assignment in assignments:
        course.generate_release(assignment, root)
    (root / "instructor_notes.txt").write_text(CANARY)
    for student in OK_STUDENTS:   # correct classmates in every assignment of the batch
        for assignment in assignments:
            nb = correct() if assignment == A else l2a3_patch()()
            nb.cells.insert(0, nbformat.v4.new_markdown_cell(CANARY))
            course.submit(root, student, assignment, nb, NB if assignment == A else NB3)
    for case in cases:
        _write_submission(root, case.name, case)
    before = _tree_hashes(root, skip={"autograded", "feedback", "gradebook.db", "release"})
    for assignment in assignments:
        course.nbgrader("autograde", assignment, "--force", f"--Execute.timeout={TIMEOUT}",
                        f"--SandboxKernelManager.memory_bytes={MEMORY}", root=root)
        course.generate_feedback(root, assignment)
    after = _tree_hashes(root, skip={"autograded", "feedback", "gradebook.db", "release"})
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k)
                     and not k.endswith((".log",)))
    return {"changed": changed}


@pytest.mark.parametrize("batch", [0, 1])
def test_bad_submission_catalog(batch, tmp_path):
    cases = CASES[batch::2]
    root = course.copy_course(tmp_path / "course")
    result = grade_batch(root, cases)
    problems = [f"course files changed: {result['changed']}"] if result["changed"] else []
    assignments = batch_assignments(cases)
    graded = {a: set(scores.submitted_students(root, a)) for a in assignments}
    released = {A: NB, A3: NB3}
    everyone = [*((s, a) for s in OK_STUDENTS for a in assignments), *((c.name, c.assignment) for c in cases)]
    for student, assignment in everyone:
        if student not in graded[assignment]:
            problems.append(f"{student}: {assignment} not scored at all")
        html = root / "feedback" / student / assignment / released[assignment].replace(".ipynb", ".html")
        if not html.is_file():
            problems.append(f"{student}: no feedback for {assignment}")
    for student in OK_STUDENTS:
        for assignment in assignments:
            if student in graded[assignment]:
                lost = {g: s for g, s in scores.cell_scores(root, assignment, student).items()
                        if g in TESTS[assignment] and s[0] != s[1]}
                if lost:
                    problems.append(f"{student} (correct) lost points in {assignment} next to bad "
                                    f"submissions: {lost}")
    for top in ("autograded", "feedback"):   # only files the grader wrote, nothing followed
        for path in (root / top).rglob("*"):
            student = path.relative_to(root / top).parts[0]
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                problems.append(f"{path.relative_to(root)} is not a regular file")
            elif path.is_file() and student not in OK_STUDENTS and CANARY.encode() in path.read_bytes():
                problems.append(f"{path.relative_to(root)} holds a classmate's or the instructor's data")
    for case in cases:
        if case.name not in graded[case.assignment]:
            continue
        got = scores.cell_scores(root, case.assignment, case.name)
        for cell in sorted(TESTS[case.assignment]):
            score, top = got[cell]
            if cell in case.zero and score != 0:
                problems.append(f"{case.name}: {cell} scored {score}, expected 0")
            elif cell in case.lose and cell not in case.zero and score == top:
                problems.append(f"{case.name}: {cell} kept full marks, expected a loss")
            elif cell not in case.zero | case.lose | case.allowed and score != top:
                problems.append(f"{case.name}: {cell} scored {score}/{top}, expected full marks")
        html = root / "feedback" / case.name / case.assignment / released[case.assignment].replace(".ipynb", ".html")
        text = unescape(html.read_text()) if html.is_file() else ""
        for phrase in case.says:
            if phrase.replace("`", "") not in text.replace("<code>", "").replace("</code>", "") \
                    and phrase not in text:
                problems.append(f"{case.name}: feedback does not say {phrase!r}")
        if case.check:
            problems += [f"{case.name}: {p}" for p in case.check(root)]
    assert not problems, "\n".join(problems)


def test_catalog_is_complete():
    """At least 25 cases, every name unique (a student id), every case with a stated outcome."""
    names = [c.name for c in CASES]
    assert len(CASES) >= 25 and len(set(names)) == len(names)
    assert all(c.says for c in CASES)
