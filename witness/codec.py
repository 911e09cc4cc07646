"""The plain-data format of the witness channel: what a student's kernel may send to the grader.

A value travels as a JSON-able *header* and a list of raw byte *buffers*, one per array. Only
these kinds exist (``t`` in the header):

=========== =================================================================================
``none``     ``None``
``bool``     ``True`` / ``False``
``int``      an integer with ``|v| < 2**63``
``float``    a float, as ``float.hex`` (exact, NaN and infinities included)
``str``      a string of at most :attr:`Limits.max_string` characters
``list``,    a sequence of encoded values
``tuple``
``dict``     string keys and encoded values, in order
``tensor``   a dense torch tensor: ``dtype``, ``shape``, ``requires_grad``, one buffer
``ndarray``  a numpy array: ``dtype``, ``shape``, one buffer
``npscalar`` a numpy scalar (``np.float32(1.0)``...): ``dtype``, one buffer
``opaque``   anything else, by its type's name only (decodes to :class:`Opaque`)
=========== =================================================================================

:func:`encode` runs in the student's kernel (and in-process for instructors). :func:`decode` runs
in the grader and is strict: an unknown kind, a wrong field type, a dtype outside
:data:`DTYPES`, a shape that does not match its buffer, a buffer used twice, or anything beyond
:class:`Limits` raises :class:`InvalidData`. Nothing is ever unpickled or executed: a hostile
kernel can make the grader see wrong *numbers*, never run code or exhaust its memory.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Array dtypes that may cross the channel (numpy names; ``bfloat16`` exists for tensors only and
#: travels as its 16-bit pattern).
DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64",
          "bfloat16")

_INT_BOUND = 2 ** 63


class InvalidData(ValueError):
    """What came over the channel is not a well-formed plain value within the limits."""


@dataclass(frozen=True)
class Limits:
    """Bounds on one decoded value (the grader's memory and time stay bounded whatever a kernel
    sends). ``max_bytes`` bounds the sum of all array buffers."""

    max_depth: int = 12
    max_items: int = 100_000
    max_string: int = 1_000_000
    max_bytes: int = 512 * 1024 ** 2
    max_dims: int = 8


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Opaque:
    """A value the channel cannot carry (a module, a function, a custom object): only the name of
    its type came back."""

    type_name: str

    def __repr__(self) -> str:
        return f"<{self.type_name} object>"


# --------------------------------------------------------------------------------------- encode
def _torch():
    import sys

    return sys.modules.get("torch")


def _array_header(kind: str, array: np.ndarray, buffers: list, dtype_name: str | None = None) -> dict:
    buffers.append(np.ascontiguousarray(array).tobytes())
    return {"t": kind, "dtype": dtype_name or array.dtype.name, "shape": list(array.shape),
            "buf": len(buffers) - 1}


def _encode_tensor(value, buffers: list) -> dict:
    torch = _torch()
    plain = torch.Tensor.detach(value)
    if plain.layout != torch.strided or plain.is_complex() or plain.is_quantized:
        return {"t": "opaque", "type": f"torch.Tensor ({plain.layout}, {plain.dtype})"}
    plain = plain.to("cpu").contiguous()
    if plain.dtype == torch.bfloat16:
        header = _array_header("tensor", plain.view(torch.int16).numpy(), buffers, "bfloat16")
    else:
        array = plain.numpy()
        if array.dtype.name not in DTYPES:
            return {"t": "opaque", "type": f"torch.Tensor ({plain.dtype})"}
        header = _array_header("tensor", array, buffers)
    header["requires_grad"] = bool(value.requires_grad)
    return header


def _encode(value: Any, buffers: list, depth: int) -> dict:
    if depth > DEFAULT_LIMITS.max_depth:
        return {"t": "opaque", "type": "too deeply nested"}
    kind = type(value)
    if value is None:
        return {"t": "none"}
    if kind is bool:
        return {"t": "bool", "v": value}
    if kind is int:
        return {"t": "int", "v": value} if abs(value) < _INT_BOUND else {"t": "opaque", "type": "int (too large)"}
    if kind is float:
        return {"t": "float", "v": value.hex()}
    if kind is str:
        return {"t": "str", "v": value}
    if kind in (list, tuple):
        return {"t": kind.__name__, "items": [_encode(v, buffers, depth + 1) for v in value]}
    if kind is dict and all(type(k) is str for k in value):
        return {"t": "dict", "keys": list(value), "values": [_encode(v, buffers, depth + 1) for v in value.values()]}
    torch = _torch()
    if torch is not None and isinstance(value, torch.Tensor):
        return _encode_tensor(value, buffers)
    if isinstance(value, np.ndarray) and value.dtype.name in DTYPES and value.dtype.name != "bfloat16":
        return _array_header("ndarray", value, buffers)
    if isinstance(value, np.generic) and value.dtype.name in DTYPES:
        return _array_header("npscalar", np.asarray(value), buffers)
    return {"t": "opaque", "type": f"{kind.__module__}.{kind.__qualname__}"[:200]}


def encode(value: Any) -> tuple[dict, list[bytes]]:
    """``(header, buffers)`` describing ``value`` as plain data (never raises for odd values:
    what cannot travel becomes ``opaque``)."""
    buffers: list[bytes] = []
    return _encode(value, buffers, 0), buffers


def is_plain(value: Any) -> bool:
    """Whether ``value`` travels whole (nothing in it becomes ``opaque``)."""
    def walk(header: dict) -> bool:
        kind = header["t"]
        if kind == "opaque":
            return False
        if kind in ("list", "tuple"):
            return all(walk(h) for h in header["items"])
        if kind == "dict":
            return all(walk(h) for h in header["values"])
        return True
    return walk(encode(value)[0])


# --------------------------------------------------------------------------------------- decode
class _Decoder:
    def __init__(self, buffers: list, limits: Limits, as_torch: bool):
        self.buffers = buffers
        self.limits = limits
        self.used: set[int] = set()
        self.items = 0
        self.bytes = 0
        self.as_torch = as_torch

    def fail(self, why: str):
        raise InvalidData(why)

    def field(self, header: dict, name: str, kind: type | tuple):
        value = header.get(name)
        if type(value) not in (kind if isinstance(kind, tuple) else (kind,)):
            self.fail(f"field {name!r} of a {header.get('t')!r} value is missing or of the wrong type")
        return value

    def array(self, header: dict) -> np.ndarray:
        dtype_name = self.field(header, "dtype", str)
        if dtype_name not in DTYPES:
            self.fail(f"dtype {dtype_name!r} is not allowed")
        if header["t"] != "tensor" and dtype_name == "bfloat16":
            self.fail("bfloat16 exists for tensors only")
        shape = self.field(header, "shape", list) if header["t"] != "npscalar" else []
        if len(shape) > self.limits.max_dims or any(type(s) is not int or s < 0 for s in shape):
            self.fail(f"invalid shape {shape!r}")
        index = self.field(header, "buf", int)
        if not 0 <= index < len(self.buffers) or index in self.used:
            self.fail(f"buffer {index} is missing or used twice")
        self.used.add(index)
        storage = np.dtype("int16" if dtype_name == "bfloat16" else dtype_name)
        count = math.prod(shape)
        raw = self.buffers[index]
        size = len(raw) if isinstance(raw, (bytes, bytearray)) else memoryview(raw).nbytes
        if size != count * storage.itemsize:
            self.fail(f"buffer {index} holds {size} bytes, the shape {shape} needs "
                      f"{count * storage.itemsize}")
        self.bytes += size
        if self.bytes > self.limits.max_bytes:
            self.fail(f"arrays larger than {self.limits.max_bytes} bytes in all")
        array = np.frombuffer(raw, dtype=storage).reshape(shape).copy()
        if storage == np.bool_ and array.size and array.view(np.uint8).max() > 1:
            self.fail("a bool array holds values other than 0 and 1")
        return array

    def value(self, header: Any, depth: int) -> Any:
        if depth > self.limits.max_depth:
            self.fail("nested too deeply")
        if type(header) is not dict:
            self.fail(f"a value must be described by a dict, got {type(header).__name__}")
        self.items += 1
        if self.items > self.limits.max_items:
            self.fail(f"more than {self.limits.max_items} values")
        kind = header.get("t")
        if kind == "none":
            return None
        if kind == "bool":
            return self.field(header, "v", bool)
        if kind == "int":
            v = self.field(header, "v", int)
            if abs(v) >= _INT_BOUND:
                self.fail("integer out of range")
            return v
        if kind == "float":
            text = self.field(header, "v", str)
            if len(text) >= 64:
                self.fail("float text too long")
            try:
                return float.fromhex(text)
            except ValueError:
                self.fail(f"invalid float {text[:40]!r}")
        if kind == "str":
            text = self.field(header, "v", str)
            if len(text) > self.limits.max_string:
                self.fail(f"string longer than {self.limits.max_string} characters")
            return text
        if kind in ("list", "tuple"):
            items = [self.value(v, depth + 1) for v in self.field(header, "items", list)]
            return items if kind == "list" else tuple(items)
        if kind == "dict":
            keys, values = self.field(header, "keys", list), self.field(header, "values", list)
            if len(keys) != len(values) or any(type(k) is not str for k in keys) or len(set(keys)) != len(keys):
                self.fail("a dict needs as many distinct string keys as values")
            return {k: self.value(v, depth + 1) for k, v in zip(keys, values)}
        if kind == "opaque":
            name = self.field(header, "type", str)
            return Opaque(name[:200])
        if kind == "ndarray":
            return self.array(header)
        if kind == "npscalar":
            return self.array(header)[()]
        if kind == "tensor":
            array = self.array(header)
            requires_grad = self.field(header, "requires_grad", bool)
            if not self.as_torch:
                return array
            import torch

            tensor = torch.from_numpy(array)
            if header["dtype"] == "bfloat16":
                tensor = tensor.view(torch.bfloat16)
            if requires_grad and tensor.is_floating_point():
                tensor.requires_grad_(True)
            return tensor
        self.fail(f"unknown kind {kind!r}")


def decode(header: Any, buffers: list, limits: Limits = DEFAULT_LIMITS, as_torch: bool = True) -> Any:
    """The value described by ``header`` and ``buffers``; :class:`InvalidData` if anything is
    malformed or out of bounds. Every array is copied (the result owns its memory); a decoded
    tensor that required grad is a fresh leaf with ``requires_grad=True`` (no graph travels)."""
    decoder = _Decoder(list(buffers), limits, as_torch)
    return decoder.value(header, 0)
