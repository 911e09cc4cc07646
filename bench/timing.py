"""Timing helpers shared by the benchmarks: interleaved repetitions, plain-text tables, load."""
from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class Method:
    """One timed operation: ``setup`` and ``teardown`` run outside the timed region; the time is
    divided by ``per`` (e.g. the number of optimization steps in one call)."""

    name: str
    run: Callable[[], object]
    setup: Callable[[], None] | None = None
    teardown: Callable[[], None] | None = None
    per: float = 1.0


def time_once(method: Method) -> float:
    """Seconds taken by one call of ``method.run`` divided by ``method.per`` (GC paused)."""
    if method.setup is not None:
        method.setup()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        method.run()
        elapsed = time.perf_counter() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    if method.teardown is not None:
        method.teardown()
    return elapsed / method.per


def measure(methods: list[Method], reps: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per call of each method, ``reps`` interleaved rounds after ``warmup`` rounds."""
    times: dict[str, list[float]] = {m.name: [] for m in methods}
    for round_ in range(warmup + reps):
        # Alternate the order so that no method always follows the same one (cache and
        # allocator state left behind by the previous call).
        for method in (methods if round_ % 2 == 0 else methods[::-1]):
            t = time_once(method)
            if round_ >= warmup:
                times[method.name].append(t)
        gc.collect()
    return times


def table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A plain-text table; the first ``left`` columns are left-aligned, the others right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    line = fmt(header)
    return "\n".join([line, "-" * len(line)] + [fmt(r) for r in rows])


def load_average() -> str:
    """The 1-minute load average, for the report (other work inflates absolute times)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "n/a"
