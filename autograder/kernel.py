"""The grading kernel: ``python -m autograder.kernel -f {connection_file}``.

Seals :mod:`autograder.integrity` (the snapshot of the grading modules and of the libraries they
compare with, and the audit hook that restores them before every cell) and then starts an IPython
kernel exactly as ``python -m ipykernel_launcher`` does, with the same command-line arguments. Use
it as a kernel spec's ``argv``::

    [sys.executable, "-m", "autograder.kernel", "-f", "{connection_file}"]

One difference, on purpose: matplotlib is imported while sealing (the toolbox uses pyplot), before
ipykernel sets its inline-backend default, so :func:`main` applies that default itself.

Sealing here, before any cell runs, is what makes the snapshot trustworthy: the modules are
imported and recorded before the notebook can touch them (:func:`autograder.integrity.sealed_early`
is then True). (``python -m`` imports the ``autograder`` package, which seals, before this module
runs; :func:`main` then marks the snapshot as taken before student code.)

The working directory holds the student's files, and ``python -m`` searches it first (for
``autograder`` itself and for everything sealing imports), so the sandbox
(:class:`grading.sandbox.SandboxKernelManager`) starts this module with ``python -P`` (no working
directory on ``sys.path``); the course root comes from ``PYTHONPATH``. Started any other way, start
it with ``-P`` too.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path


INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def _keep_inline_figures() -> None:
    """ipykernel makes matplotlib's inline backend the default by setting ``MPLBACKEND`` when it
    starts, which matplotlib only reads when imported. Sealing imports matplotlib first (the toolbox
    uses pyplot), so apply the same default here, before any figure exists; an explicit
    ``MPLBACKEND`` (e.g. Agg in tests) is left alone, as ipykernel does."""
    if os.environ.get("MPLBACKEND"):
        return
    os.environ["MPLBACKEND"] = INLINE_BACKEND
    matplotlib = sys.modules.get("matplotlib")
    if matplotlib is not None:
        matplotlib.rcParams["backend"] = INLINE_BACKEND  # pyplot resolves it at the first figure


def main() -> None:
    """Seal, then run ipykernel's ``IPKernelApp`` with this process's arguments (returns when the
    kernel shuts down)."""
    # As ipykernel_launcher: the working directory leaves sys.path while the kernel loads (IPython's
    # InteractiveShellApp.init_path puts it back for the notebook's own imports).
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]
    from autograder import integrity

    integrity.seal(early=True)
    _keep_inline_figures()
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
