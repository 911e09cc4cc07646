"""The witness channel's plain-data format (witness/codec.py): values survive the round trip, and
the grader's decoder refuses anything malformed, oversized or executable, whatever a kernel sends."""
from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from witness import codec
from witness.codec import InvalidData, Limits


def roundtrip(value):
    return codec.decode(*codec.encode(value))


@pytest.mark.parametrize("value", [
    None, True, False, 0, -5, 2 ** 62, 1.5, -0.0, "text", "", [], (), {}, [1, (2, "x")],
    {"a": [1.0, None], "b": {"c": (True,)}},
])
def test_plain_values_round_trip(value):
    assert roundtrip(value) == value and type(roundtrip(value)) is type(value)


def test_floats_round_trip_exactly_nan_and_infinities_included():
    for x in (0.1, 1e-300, 1e300, math.pi, float("inf"), float("-inf")):
        assert roundtrip(x) == x
    assert math.isnan(roundtrip(float("nan")))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64,
                                   torch.int8, torch.uint8, torch.bool])
def test_tensors_round_trip_with_dtype_shape_and_requires_grad(dtype):
    t = (torch.arange(24).reshape(2, 3, 4) % 2).to(dtype)
    got = roundtrip(t)
    assert type(got) is torch.Tensor and got.dtype == dtype and got.shape == t.shape and torch.equal(got, t)
    if dtype.is_floating_point:
        leaf = roundtrip(t.clone().requires_grad_(True))
        assert leaf.requires_grad and leaf.is_leaf and leaf.grad_fn is None


def test_arrays_scalars_and_non_contiguous_views():
    a = np.arange(12, dtype=np.float32).reshape(3, 4).T
    got = roundtrip(a)
    assert type(got) is np.ndarray and got.dtype == np.float32 and np.array_equal(got, a)
    assert got.flags.writeable and got.flags.owndata
    s = roundtrip(np.float32(2.5))
    assert type(s) is np.float32 and s == 2.5
    assert roundtrip(torch.arange(10)[::3]).tolist() == [0, 3, 6, 9]


def test_subclasses_become_plain_values():
    class Sneaky(torch.Tensor):
        pass

    p = torch.nn.Parameter(torch.ones(2))
    assert type(roundtrip(p)) is torch.Tensor
    assert type(roundtrip(torch.ones(2).as_subclass(Sneaky))) is torch.Tensor


def test_anything_else_travels_as_its_type_name_only():
    got = roundtrip({"model": torch.nn.Linear(2, 2), "f": len, "big": 2 ** 70, "c": torch.zeros(2, dtype=torch.complex64)})
    assert all(isinstance(v, codec.Opaque) for v in got.values())
    assert got["model"].type_name == "torch.nn.modules.linear.Linear"
    assert not codec.is_plain(torch.nn.Linear(2, 2)) and codec.is_plain({"x": [np.zeros(2)]})


def _tensor_header(**changes):
    header, buffers = codec.encode(torch.zeros(2, 3))
    header.update(changes)
    return header, buffers


@pytest.mark.parametrize("header, buffers, why", [
    ({"t": "pickle", "v": "..."}, [], "unknown kind"),
    ({"t": "int", "v": "5"}, [], "wrong type"),
    ({"t": "int", "v": 2 ** 80}, [], "out of range"),
    ({"t": "bool", "v": 1}, [], "wrong type"),
    ({"t": "float", "v": "not a float"}, [], "invalid float"),
    ({"t": "float", "v": "0x1." + "0" * 100}, [], "too long"),
    ({"t": "dict", "keys": ["a", "a"], "values": [{"t": "none"}, {"t": "none"}]}, [], "distinct"),
    ({"t": "dict", "keys": [1], "values": [{"t": "none"}]}, [], "string keys"),
    ({"t": "list", "items": "abc"}, [], "wrong type"),
    ("not a dict", [], "must be described by a dict"),
    (*_tensor_header(dtype="object"), "not allowed"),
    (*_tensor_header(shape=[2, 4]), "needs"),
    (*_tensor_header(shape=[-1, 6]), "invalid shape"),
    (*_tensor_header(buf=3), "missing"),
    (*_tensor_header(requires_grad="yes"), "wrong type"),
])
def test_malformed_headers_are_refused(header, buffers, why):
    with pytest.raises(InvalidData, match=why):
        codec.decode(header, buffers)


def test_a_buffer_cannot_serve_two_arrays():
    h, b = codec.encode(torch.zeros(3))
    with pytest.raises(InvalidData, match="used twice"):
        codec.decode({"t": "list", "items": [h, h]}, b)


def test_bool_arrays_hold_only_zeros_and_ones():
    h, _ = codec.encode(np.zeros(4, dtype=bool))
    with pytest.raises(InvalidData, match="bool"):
        codec.decode(h, [bytes([0, 1, 2, 1])])


def test_limits_bound_depth_items_strings_and_bytes():
    deep = {"t": "none"}
    for _ in range(50):
        deep = {"t": "list", "items": [deep]}
    with pytest.raises(InvalidData, match="deeply"):
        codec.decode(deep, [])
    with pytest.raises(InvalidData, match="more than"):
        codec.decode(*codec.encode(list(range(200))), limits=Limits(max_items=100))
    with pytest.raises(InvalidData, match="longer"):
        codec.decode(*codec.encode("x" * 50), limits=Limits(max_string=10))
    with pytest.raises(InvalidData, match="bytes in all"):
        codec.decode(*codec.encode([np.zeros(100), np.zeros(100)]), limits=Limits(max_bytes=1000))


def test_decoding_never_unpickles():
    """A pickle where a buffer is expected is just bytes of the wrong length, never loaded."""
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pwned')",))

    payload = pickle.dumps(Boom())
    header = {"t": "ndarray", "dtype": "uint8", "shape": [len(payload)], "buf": 0}
    got = codec.decode(header, [payload])
    assert type(got) is np.ndarray and got.tobytes() == payload
