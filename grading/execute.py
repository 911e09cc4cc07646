"""nbgrader's ``Execute`` step, made safe for a class: the kernel is a witness, never the judge.

:class:`TrustedExecute` replaces nbgrader's ``Execute`` in ``Autograde.autograde_preprocessors``
(see ``nbgrader_config.py``). The notebook it receives is the release's structure with the
student's sources (:mod:`grading.rebuild`). It runs:

- every cell that is not a test in the student's kernel, sandboxed
  (:class:`grading.sandbox.SandboxKernelManager`): set-up, answers, the student's own cells; their
  outputs are kept as data only (text and raster images; HTML, JavaScript and SVG are dropped,
  so that nothing a kernel printed can run in an instructor's browser);
- every test cell, visible and hidden, in the grader's own process (:mod:`grading.trusted_tests`),
  calling the student's functions in the kernel through the witness channel
  (:mod:`autograder.remote`); the grader writes the cell's outputs, which are what nbgrader
  scores. The locked set-up cells run in both places (the tests use their imports).

and keeps nbgrader's behaviour otherwise (every cell runs, errors are recorded, a cell past
``Execute.timeout`` is interrupted and scores 0), plus:

- **a dead kernel** (``os._exit``, a segfault, the memory limit's kill) no longer aborts the
  student's whole autograde: the cell gets an error output saying so, a fresh kernel is started,
  the earlier non-test cells are re-run silently, and grading goes on with the next cell;
- **a kernel that ignores the timeout's interrupt** is treated the same way;
- **output budget**: a cell's outputs beyond ``max_cell_output_bytes`` (and a notebook's beyond
  ``max_notebook_output_bytes``) are dropped with one note;
- **review flags**: test cells whose graded function uses a dynamic lookup are listed in
  ``resources["interp_review"]`` for :class:`grading.review.FlagForReview`.
"""
from __future__ import annotations

import asyncio
import importlib
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import nbformat
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Integer, Unicode

from grading import sandbox
from grading.cells import error, is_locked_code, is_test_cell, note

TIMEOUT_ENAME = "CellTimeoutError"
#: Output message types nbgrader reads scores from (errors: 0 points; a value: partial credit).
SCORED_OUTPUTS = ("error", "execute_result")
#: MIME types of a kernel's outputs that are kept (data, never markup or scripts).
KEPT_MIME_TYPES = ("text/plain", "image/png", "image/jpeg")


def describe_exit(returncode: int | None) -> str:
    """Words for a dead kernel's exit status (negative or >128: killed by a signal)."""
    if returncode is None:
        return "the kernel process stopped responding"
    signum = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    if signum:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        hint = {
            "SIGSEGV": " (a segmentation fault)",
            "SIGKILL": " (killed: memory, process or CPU-time limit, or an unrecoverable hang)",
            "SIGXCPU": " (the CPU-time limit)",
            "SIGABRT": " (aborted)",
        }.get(name, "")
        return f"the kernel was killed by {name}{hint}"
    return f"the kernel process exited with status {returncode}"


def keep_data_only(content: dict) -> dict:
    """A display message's content with only :data:`KEPT_MIME_TYPES` (a placeholder text when
    nothing is left)."""
    data = content.get("data")
    if not isinstance(data, dict):
        return content
    kept = {k: v for k, v in data.items() if k in KEPT_MIME_TYPES}
    if not kept:
        kept = {"text/plain": f"[output of type {', '.join(sorted(data))[:100]} not kept by the grader]"}
    return {**content, "data": kept, "metadata": {}}


def _warm_up(test_sources: list[str]) -> None:
    """Import the grader's side and build the cases of the notebook's checks (a thread)."""
    importlib.import_module("grading.trusted_tests")
    import autograder

    try:
        autograder.warm_up(test_sources)
    except Exception:  # noqa: BLE001 - building again at first use reports the error properly
        pass


class TrustedExecute(Execute):
    """nbgrader's ``Execute``: sandboxed kernel for the student's cells, the grader for the tests."""

    unresponsive_grace = Integer(
        20, config=True,
        help="Seconds a timed-out, interrupted kernel gets to answer before it is restarted.")
    max_cell_output_bytes = Integer(
        4 * 1024 * 1024, config=True, help="Outputs of one cell beyond this size are dropped.")
    max_notebook_output_bytes = Integer(
        24 * 1024 * 1024, config=True, help="Outputs of a notebook beyond this size are dropped.")
    course_root = Unicode("", config=True, help="The course root (where release/ is).")

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("kernel_manager_class", sandbox.SandboxKernelManager)
        super().__init__(*args, **kwargs)
        self._reset_tracking()

    def _reset_tracking(self) -> None:
        self._replayable: list[int] = []
        self._cell_bytes: dict[int, int] = {}
        self._notebook_bytes = 0
        self._truncated: set[int] = set()
        self._trusted = None
        self.review: dict[str, list[str]] = {}

    def _release(self, resources: dict) -> NotebookNode:
        """The assignment's release notebook (an empty one outside nbgrader: no contract)."""
        info = (resources or {}).get("nbgrader")
        if not info:
            return nbformat.v4.new_notebook()
        root = Path(self.course_root or Path.cwd())
        return nbformat.read(str(root / "release" / info["assignment"] / f"{info['notebook']}.ipynb"), as_version=4)

    def preprocess(self, nb, resources=None, km=None):
        self._reset_tracking()
        self._release_nb = self._release(resources)
        # The grader's side (torch, the checks, their cases) loads while the kernel starts.
        tests = [c.source for c in nb.cells if is_test_cell(c)]
        self._warm_up = threading.Thread(target=_warm_up, args=(tests,), daemon=True)
        self._warm_up.start()
        try:
            nb, resources = super().preprocess(nb, resources, km)
        finally:
            if self._trusted is not None:
                self._trusted.close()
        resources["interp_review"] = dict(self.review)
        return nb, resources

    @property
    def trusted(self):
        """The notebook's :class:`grading.trusted_tests.TrustedTests` (made at first use)."""
        if self._trusted is None:
            self._warm_up.join()
            from autograder import TOOLBOX_IMPLEMENTATIONS
            from grading.trusted_tests import TrustedTests

            self._trusted = TrustedTests(self._release_nb, self.nb, self._connect, float(self.timeout or 180),
                                         TOOLBOX_IMPLEMENTATIONS)
        return self._trusted

    # --- the witness channel --------------------------------------------------------------------

    def _connect(self):
        from autograder import remote

        km = self.km
        info = km.get_connection_info(session=False)
        channel = remote.Channel(info, alive=km.alive_now, interrupt=km.interrupt_now,
                                 ready_timeout=float(self.startup_timeout or 60))
        return remote.RemoteKernel(channel)

    async def _run_trusted(self, cell: NotebookNode, cell_index: int) -> None:
        start = time.perf_counter()
        outputs, review = self.trusted.run_test(cell.source)
        self.log.debug("Test cell %s graded in %.1f s", cell.metadata["nbgrader"]["grade_id"],
                       time.perf_counter() - start)
        cell.outputs = outputs
        cell.execution_count = None
        if review:
            self.review[cell.metadata["nbgrader"]["grade_id"]] = review
        if self.trusted.kernel_lost:
            self.log.warning("The kernel was lost during test cell %s: restarting", cell_index)
            self.trusted.reset_kernel()
            await self._restart_and_replay()

    # --- output budget and data only ------------------------------------------------------------

    def output(self, outs, msg, display_id, cell_index):
        if msg.get("msg_type") in ("display_data", "execute_result", "update_display_data"):
            msg = {**msg, "content": keep_data_only(msg.get("content") or {})}
        if msg.get("msg_type") in SCORED_OUTPUTS:
            return super().output(outs, msg, display_id, cell_index)
        size = len(json.dumps(msg.get("content", {}), default=str))
        used = self._cell_bytes.get(cell_index, 0) + size
        if used > self.max_cell_output_bytes or self._notebook_bytes + size > self.max_notebook_output_bytes:
            if cell_index not in self._truncated:
                self._truncated.add(cell_index)
                outs.append(note(
                    "[grading] further output of this cell was dropped: it exceeded the output "
                    f"budget ({self.max_cell_output_bytes / 2**20:g} MB per cell, "
                    f"{self.max_notebook_output_bytes / 2**20:g} MB per notebook)."))
            return None
        self._cell_bytes[cell_index] = used
        self._notebook_bytes += size
        return super().output(outs, msg, display_id, cell_index)

    # --- cells ------------------------------------------------------------------------------------

    async def async_execute_cell(self, cell, cell_index, execution_count=None,
                                 store_history=True):
        if is_test_cell(cell):
            await self._run_trusted(cell, cell_index)
            return cell
        start = time.perf_counter()
        try:
            cell = await super().async_execute_cell(cell, cell_index, execution_count,
                                                    store_history)
            self.log.debug("Cell %s ran in %.1f s", cell_index, time.perf_counter() - start)
        except DeadKernelError:
            reason = describe_exit(await self._exit_status())
            self.log.warning("Kernel died in cell %s: %s", cell_index, reason)
            await self._recover(cell, "DeadKernelError", f"{reason} while running this cell.")
            return cell
        except CellTimeoutError:
            # nbclient gave up waiting for the interrupted cell's last output.
            await self._recover(cell, "UnresponsiveKernel", self._hang_message())
            return cell
        if cell.get("cell_type") != "code":
            return cell
        if is_locked_code(cell):
            self.trusted.run_locked(cell.source)
        timed_out = any(o.get("output_type") == "error" and o.get("ename") == TIMEOUT_ENAME
                        for o in cell.get("outputs", []))
        if timed_out and not await self._responds():
            await self._recover(cell, "UnresponsiveKernel", self._hang_message())
        elif not timed_out:
            self._replayable.append(cell_index)
        return cell

    # nbconvert calls the synchronous name; bind it to this class's coroutine.
    execute_cell = run_sync(async_execute_cell)

    # --- dead and unresponsive kernels ---------------------------------------------------------

    def _hang_message(self) -> str:
        return (f"this cell ran past the {self.timeout} s limit and did not stop when "
                "interrupted.")

    async def _recover(self, cell: NotebookNode, ename: str, reason: str) -> None:
        """Record why the kernel was lost in the cell's outputs, then restart and replay."""
        self.log.warning("Restarting the grading kernel: %s", reason)
        cell.setdefault("outputs", []).append(error(
            ename, f"{reason} Grading continued in a fresh kernel in which your earlier cells "
            "(not the tests) were run again."))
        if self._trusted is not None:
            self._trusted.reset_kernel()
        await self._restart_and_replay()

    async def _exit_status(self) -> int | None:
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        if process is None:
            return None
        for _ in range(20):
            if process.poll() is not None:
                return process.returncode
            await asyncio.sleep(0.1)
        return None

    async def _responds(self) -> bool:
        """Whether the kernel answers a kernel_info request within ``unresponsive_grace``."""
        try:
            return await self._wait_reply(self.kc.kernel_info(), self.unresponsive_grace) is not None
        except Exception:  # noqa: BLE001 - a dead channel is an unresponsive kernel
            return False

    async def _restart_and_replay(self) -> None:
        """A fresh kernel, then the earlier non-test cells re-run silently (outputs discarded)."""
        try:
            self.kc.stop_channels()
        except Exception:  # noqa: BLE001 - the old channels may already be gone
            pass
        await self.km.restart_kernel(now=True)
        await self.async_start_new_kernel_client()
        for index in list(self._replayable):
            source = self.nb.cells[index].source
            msg_id = self.kc.execute(source, silent=True, store_history=False)
            reply = await self._wait_reply(msg_id, self.timeout or 180)
            if reply is None:  # the replay itself hung or died: stop, grade what is left
                if not await self.km.is_alive():
                    await self.km.restart_kernel(now=True)
                    await self.async_start_new_kernel_client()
                break

    async def _wait_reply(self, msg_id: str, timeout: float) -> dict | None:
        """The shell reply to ``msg_id``, or None after ``timeout`` s or when the kernel died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = await self.kc.shell_channel.get_msg(timeout=1)
            except Exception:  # noqa: BLE001 - queue.Empty
                if not await self.km.is_alive():
                    return None
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg
        return None
