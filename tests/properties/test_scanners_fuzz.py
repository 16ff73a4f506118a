"""Bounded fuzzing of the artifact parsers: any input gives a result (finding or error), never a crash."""

from __future__ import annotations

import pickle

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.scanners.model.artifacts import ModelScanOptions, scan_bytes
from bastion.scanners.model.interface import ScanLimits

_OPTS = ModelScanOptions(limits=ScanLimits(max_seconds_per_file=5, max_member_bytes=1 << 20), digest=False)
_PREFIXES = [b"\x80\x04", b"\x80\x02", b"PK\x03\x04", b"\x93NUMPY\x01\x00", b"GGUF\x03\x00\x00\x00",
             b"\x89HDF\r\n\x1a\n", b"\x08\x07\x12", b"\x1f\x8b", b"(", b"c"]  # fmt: skip

_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=5), inner, max_size=5)
        | st.tuples(inner, inner)
    ),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.sampled_from(_PREFIXES),
    body=st.binary(max_size=400),
    name=st.sampled_from(["m.pt", "m.bin", "x"]),
)
def test_random_bytes_never_crash(prefix: bytes, body: bytes, name: str) -> None:
    r = scan_bytes(prefix + body, name, _OPTS)
    assert r.error is None or "internal scanner error" not in r.error


@settings(max_examples=150, deadline=None)
@given(value=_values, proto=st.integers(0, 5))
def test_plain_data_pickles_are_clean(value: object, proto: int) -> None:
    r = scan_bytes(pickle.dumps(value, protocol=proto), "data.pkl", _OPTS)
    assert r.error is None and r.findings == ()


@settings(max_examples=100, deadline=None)
@given(value=_values, proto=st.integers(0, 5), cut=st.integers(1, 50))
def test_truncated_pickles_are_never_clean(value: object, proto: int, cut: int) -> None:
    data = pickle.dumps(value, protocol=proto)
    truncated = data[: max(len(data) - cut, 1)]
    r = scan_bytes(truncated, "data.pkl", _OPTS)
    assert r.error is not None or r.findings
