"""nbgrader's ``Execute`` step, made safe for a class: sandboxed, and never stopped by one notebook.

:class:`SandboxedExecute` replaces nbgrader's ``Execute`` in ``Autograde.autograde_preprocessors``
(see ``nbgrader_config.py``). It keeps nbgrader's behaviour (every cell runs, errors are recorded,
a cell past ``Execute.timeout`` is interrupted and scores 0) and adds:

- the kernel runs in the grading sandbox (:class:`grading.sandbox.SandboxKernelManager`);
- **a dead kernel** (``os._exit``, a segfault, the memory limit's kill) no longer aborts the
  student's whole autograde (nbgrader would drop the notebook and record no grades): the cell that
  killed it gets an error output saying so, a fresh kernel is started, the earlier non-test cells
  are re-run silently to rebuild the state, and grading goes on with the next cell;
- **a kernel that ignores the timeout's interrupt** (a loop that swallows ``KeyboardInterrupt``)
  is treated the same way instead of timing out every remaining cell;
- **output budget**: a cell's outputs beyond ``max_cell_output_bytes`` (and a notebook's beyond
  ``max_notebook_output_bytes``) are dropped with one note, so stdout floods and huge images
  cannot bloat the autograded notebook, the feedback or the grader's memory. Errors and results
  (what nbgrader scores from) are never dropped, nor is a test cell's output for what earlier
  cells printed.
"""
from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import Any

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from jupyter_core.utils import run_sync
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Integer

from grading import sandbox

TIMEOUT_ENAME = "CellTimeoutError"
#: Output message types nbgrader reads scores from (errors: 0 points; a value: partial credit).
SCORED_OUTPUTS = ("error", "execute_result")


def is_test_cell(cell: NotebookNode) -> bool:
    """An nbgrader grade cell that is not an answer (a visible or hidden test cell)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def _error_output(ename: str, message: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=message,
                        traceback=[f"\x1b[0;31m{ename}\x1b[0m: {message}"])


def _note_output(message: str) -> NotebookNode:
    # display_data, not a stream: nbgrader's LimitOutput truncates streams (and would cut the
    # note), and stderr output makes nbgrader score a grade cell 0.
    return NotebookNode(output_type="display_data", metadata={},
                        data={"text/plain": message})


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


class SandboxedExecute(Execute):
    """nbgrader's ``Execute`` with a sandboxed kernel, dead-kernel recovery and an output budget."""

    unresponsive_grace = Integer(
        20, config=True,
        help="Seconds a timed-out, interrupted kernel gets to answer before it is restarted.")
    max_cell_output_bytes = Integer(
        4 * 1024 * 1024, config=True, help="Outputs of one cell beyond this size are dropped.")
    max_notebook_output_bytes = Integer(
        24 * 1024 * 1024, config=True, help="Outputs of a notebook beyond this size are dropped.")

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("kernel_manager_class", sandbox.SandboxKernelManager)
        super().__init__(*args, **kwargs)
        self._reset_tracking()

    def _reset_tracking(self) -> None:
        self._replayable: list[int] = []
        self._cell_bytes: dict[int, int] = {}
        self._notebook_bytes = 0
        self._truncated: set[int] = set()

    def preprocess(self, nb, resources=None, km=None):
        self._reset_tracking()
        return super().preprocess(nb, resources, km)

    # --- output budget -------------------------------------------------------------------------

    def output(self, outs, msg, display_id, cell_index):
        if msg.get("msg_type") in SCORED_OUTPUTS:
            # nbgrader scores a grade cell from these: dropping one would turn a failing test
            # into a passing one (a flood of output must never buy points).
            return super().output(outs, msg, display_id, cell_index)
        size = len(json.dumps(msg.get("content", {}), default=str))
        used = self._cell_bytes.get(cell_index, 0) + size
        # A test cell's output is never dropped for what earlier cells printed.
        notebook_full = (self._notebook_bytes + size > self.max_notebook_output_bytes
                         and not is_test_cell(self.nb.cells[cell_index]))
        if used > self.max_cell_output_bytes or notebook_full:
            if cell_index not in self._truncated:
                self._truncated.add(cell_index)
                outs.append(_note_output(
                    "[grading] further output of this cell was dropped: it exceeded the output "
                    f"budget ({self.max_cell_output_bytes / 2**20:g} MB per cell, "
                    f"{self.max_notebook_output_bytes / 2**20:g} MB per notebook)."))
            return None
        self._cell_bytes[cell_index] = used
        self._notebook_bytes += size
        return super().output(outs, msg, display_id, cell_index)

    # --- dead and unresponsive kernels ---------------------------------------------------------

    async def async_execute_cell(self, cell, cell_index, execution_count=None,
                                 store_history=True):
        try:
            cell = await super().async_execute_cell(cell, cell_index, execution_count,
                                                    store_history)
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
        timed_out = any(o.get("output_type") == "error" and o.get("ename") == TIMEOUT_ENAME
                        for o in cell.get("outputs", []))
        if timed_out and not await self._responds():
            await self._recover(cell, "UnresponsiveKernel", self._hang_message())
        elif not timed_out and not is_test_cell(cell):
            self._replayable.append(cell_index)
        return cell

    # nbconvert calls the synchronous name; bind it to this class's coroutine.
    execute_cell = run_sync(async_execute_cell)

    def _hang_message(self) -> str:
        return (f"this cell ran past the {self.timeout} s limit and did not stop when "
                "interrupted.")

    async def _recover(self, cell: NotebookNode, ename: str, reason: str) -> None:
        """Record why the kernel was lost in the cell's outputs, then restart and replay."""
        self.log.warning("Restarting the grading kernel: %s", reason)
        cell.setdefault("outputs", []).append(_error_output(
            ename, f"{reason} Grading continued in a fresh kernel in which your earlier cells "
            "(not the tests) were run again."))
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
