"""Reference outputs computed once, not once per student.

The seeded cases are the same for every student, and so are the reference's answers to them.
:func:`cached` keeps each answer in memory for the life of the grading process (``nbgrader
autograde`` grades a class in one process) and on disk under :func:`cache_dir`, keyed by a hash
of the code that produces them (``solutions/``, ``autograder/``, ``interpkit/``, ``witness/``)
and the torch and numpy versions: editing any of it, or upgrading a library, starts a fresh
cache. Entries are written atomically in the plain-data format of :mod:`witness.codec` (no
pickle); an unreadable entry is recomputed. The folder is the grader's own: no kernel sees it.

Set ``INTERP_REFERENCE_CACHE`` to a folder to move it, or to ``off`` to keep answers in memory
only.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from witness import codec

CACHE_ENV = "INTERP_REFERENCE_CACHE"
COURSE_ROOT = Path(__file__).resolve().parent.parent
#: Folders whose code decides the reference answers (relative to the course root).
CODE = ("solutions", "autograder", "interpkit", "witness")

_MEMORY: dict[str, Any] = {}
_MISSING = object()


@lru_cache(maxsize=None)
def code_version() -> str:
    """sha256 over the reference code and the library versions (hex, 16 characters)."""
    import numpy
    import torch

    digest = hashlib.sha256(f"torch {torch.__version__} numpy {numpy.__version__}".encode())
    for folder in CODE:
        for path in sorted((COURSE_ROOT / folder).rglob("*.py")):
            digest.update(str(path.relative_to(COURSE_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_dir() -> Path | None:
    """Where entries of this code version live (None: memory only)."""
    setting = os.environ.get(CACHE_ENV, "")
    if setting.lower() == "off":
        return None
    base = Path(setting) if setting else COURSE_ROOT / ".grading-cache"
    return base / code_version()


def _key(parts: tuple) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def _read(path: Path) -> Any:
    blob = path.read_bytes()
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + size])
    offset, buffers = 8 + size, []
    for length in header["lengths"]:
        buffers.append(blob[offset:offset + length])
        offset += length
    return codec.decode(header["value"], buffers)


def _write(path: Path, value: Any) -> None:
    header, buffers = codec.encode(value)
    meta = json.dumps({"value": header, "lengths": [len(b) for b in buffers]}).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as out:
        out.write(len(meta).to_bytes(8, "little"))
        out.write(meta)
        for b in buffers:
            out.write(b)
    os.replace(tmp, path)


def cached(parts: tuple, compute: Callable[[], Any]) -> Any:
    """``compute()``'s plain-data result for the case named by ``parts`` (strings and numbers),
    computed at most once per code version. Values must be plain data (tensors, arrays, numbers,
    strings and containers of them): they are stored as such."""
    key = _key(parts)
    if key in _MEMORY:
        return _MEMORY[key]
    folder = cache_dir()
    path = folder / f"{key}.bin" if folder is not None else None
    value = _MISSING
    if path is not None and path.is_file():
        try:
            value = _read(path)
        except (OSError, ValueError, KeyError):
            value = _MISSING
    if value is _MISSING:
        value = compute()
        if path is not None:
            try:
                _write(path, value)
            except OSError:
                pass  # a read-only course: memory only
    _MEMORY[key] = value
    return value
