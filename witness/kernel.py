"""The grading kernel: ``python -P -m witness.kernel -f {connection_file}``.

An IPython kernel exactly as ``python -m ipykernel_launcher`` starts one, with one addition made
before any cell runs: the comm target ``interp.witness`` (:class:`witness.agent.Agent`), through
which the grader asks for the notebook's functions to be called. When ``WITNESS_INPUTS`` names a
folder (the sandbox shows the assignment's files there, read-only), its regular files are first
copied into the working directory, a private, size-limited scratch folder.

The sandbox (:class:`grading.sandbox.SandboxKernelManager`) starts it with ``python -P``: the
working directory holds the student's files, and none of them may replace this module.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

INPUTS_ENV = "WITNESS_INPUTS"


def copy_inputs(source: Path, dest: Path) -> None:
    """Regular files (and folders) of ``source`` into ``dest``; links and special files are
    skipped."""
    for path in sorted(source.rglob("*")):
        target = dest / path.relative_to(source)
        if path.is_symlink():
            continue
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def main() -> None:
    """Start the kernel with the witness registered; returns when the kernel shuts down."""
    # As ipykernel_launcher: the working directory leaves sys.path while the kernel loads.
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]
    inputs = os.environ.pop(INPUTS_ENV, "")
    if inputs and Path(inputs).is_dir():
        copy_inputs(Path(inputs), Path.cwd())
    from ipykernel.kernelapp import IPKernelApp

    from witness.agent import AGENT, COMM_TARGET

    app = IPKernelApp.instance()
    app.initialize()
    AGENT.shell = app.shell
    app.kernel.comm_manager.register_target(COMM_TARGET, AGENT.on_comm_open)
    app.start()


if __name__ == "__main__":
    main()
