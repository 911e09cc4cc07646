"""What a grading kernel can import: the packages students get, and nothing the grader uses.

The sandbox (:mod:`grading.sandbox`) shows the course's Python installation read-only, but its
``site-packages`` folders are replaced by empty ones holding only the entries (package folders,
modules, ``.dist-info``, shared libraries) of :func:`kernel_distributions`: the distributions
the student bundle's ``requirements.txt`` names (:func:`grading.bundle.student_requirements`,
one source of truth), what they depend on, and what the kernel itself needs
(:data:`KERNEL_EXTRAS`). Test-only oracles (captum, grad-cam and everything only they pull in)
and the grading tools (nbgrader, pytest) are not there: ``import captum`` fails in a grading
kernel exactly as it does on a student's machine set up from the bundle.
"""
from __future__ import annotations

import importlib.metadata as metadata
import site
from functools import lru_cache
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from grading.course import COURSE_ROOT

#: Distributions the grading kernel needs beyond the students' own: the kernel, and cloudpickle
#: (the grader sends test arguments with it, lambdas included).
KERNEL_EXTRAS = ("ipykernel", "cloudpickle")


def student_distribution_names(root: Path | str = COURSE_ROOT) -> list[str]:
    """Requirement names of the student bundle (its Jupyter front end excluded: a kernel needs no
    web server)."""
    from grading.bundle import FRONT_END, student_requirements

    front_end = canonicalize_name(Requirement(FRONT_END).name)
    names = []
    for line in student_requirements(root).splitlines():
        spec = line.split("#", 1)[0].strip()
        if spec:
            name = canonicalize_name(Requirement(spec).name)
            if name != front_end:
                names.append(name)
    return names


def _requires(dist: metadata.Distribution, extras: frozenset[str]) -> list[tuple[str, frozenset[str]]]:
    """``(name, extras)`` of what ``dist`` needs when installed with ``extras``."""
    found = []
    for text in dist.requires or []:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        wanted = req.marker is None
        for extra in ("", *extras):
            env = default_environment()
            env["extra"] = extra
            wanted = wanted or req.marker.evaluate(env)
        if wanted:
            found.append((canonicalize_name(req.name), frozenset(req.extras)))
    return found


@lru_cache(maxsize=None)
def kernel_distributions(root: Path | str = COURSE_ROOT) -> tuple[metadata.Distribution, ...]:
    """The installed distributions a grading kernel may use: the closure of the student bundle's
    requirements and :data:`KERNEL_EXTRAS` under their (non-extra) dependencies."""
    todo = [(name, frozenset()) for name in [*student_distribution_names(root), *map(canonicalize_name, KERNEL_EXTRAS)]]
    seen: dict[str, metadata.Distribution] = {}
    done: set[tuple[str, frozenset]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in done:
            continue
        done.add((name, extras))
        try:
            dist = seen.get(name) or metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency that is not installed
        seen[name] = dist
        todo.extend(_requires(dist, extras))
    return tuple(seen[n] for n in sorted(seen))


def site_packages_dirs() -> list[Path]:
    """Every ``site-packages`` folder of this interpreter (the virtual environment's and the
    base installation's), resolved."""
    import sys

    dirs = [Path(p) for p in site.getsitepackages()]
    for prefix in {sys.base_prefix, sys.prefix}:
        dirs += list(Path(prefix).glob("lib/python3*/site-packages"))
    unique = []
    for d in dirs:
        d = d.resolve()
        if d.is_dir() and d not in unique:
            unique.append(d)
    return unique


def _entries(dist: metadata.Distribution) -> set[Path]:
    """Top-level entries of ``site-packages`` that ``dist`` installed (from its RECORD: the
    first path component of each line; ``dist.files`` would parse every hash, and torch's
    RECORD has tens of thousands of lines)."""
    base = Path(dist.locate_file("")).resolve()
    record = dist.read_text("RECORD")
    tops = set()
    if record:
        for line in record.splitlines():
            top = line.split(",", 1)[0].split("/", 1)[0]
            if top and top != "..":
                tops.add(top)
    else:
        for name in (dist.read_text("top_level.txt") or "").split():
            tops.update(p.name for p in base.glob(f"{name}*"))
    return {base / t for t in tops if (base / t).exists()}


@lru_cache(maxsize=None)
def visible_entries(root: Path | str = COURSE_ROOT) -> tuple[Path, ...]:
    """The top-level entries of the site-packages folders that the grading kernel sees (sorted),
    plus each folder's ``__pycache__`` (byte code of single-file modules; without their sources
    Python does not import them)."""
    found: set[Path] = set()
    for dist in kernel_distributions(root):
        found |= _entries(dist)
    for folder in site_packages_dirs():
        cache = folder / "__pycache__"
        if cache.is_dir():
            found.add(cache)
    return tuple(sorted(found))
