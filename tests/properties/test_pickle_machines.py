"""The compiled (mypyc) pickle machine and the pure-Python one give identical results.

Generated pickles: real ``pickle.dumps`` output of nested data and objects (protocols 0-5),
hand-assembled programs that import, call, memoise and build (the shapes scanner bypasses use),
random opcode soups, and byte-level mutations of all of them, so the error paths agree too.
Nothing is ever unpickled.
"""

from __future__ import annotations

import collections
import datetime
import io
import mmap
import os
import pickle
import re
import struct
from decimal import Decimal
from pathlib import Path

import joblib  # type: ignore[import-untyped]
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.scanners.model.interface import Deadline, ScanLimits
from bastion.scanners.model.pickle_machine import PickleMachine
from bastion.scanners.model.pickle_native import native_machine
from bastion.scanners.model.pickle_scan import scan_pickle_stream

NATIVE = native_machine()
_ADDRESS = re.compile(r"0x[0-9a-f]{6,}")
if NATIVE is None and os.environ.get("BASTION_EXPECT_NATIVE") == "1":
    # CI sets this: there, a missing compiled machine is a broken build, not a reason to skip.
    raise RuntimeError("BASTION_EXPECT_NATIVE=1 but no compiled pickle machine is installed (hatch_build.py)")
pytestmark = pytest.mark.skipif(
    NATIVE is None, reason="no compiled pickle machine in this install (see hatch_build.py)"
)
_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(data: bytes, machine: type[PickleMachine], *, joblib_mode: bool = False) -> object:
    """Everything a scan reports, or the error it raised (type and message)."""
    try:
        r = scan_pickle_stream(
            data,
            location="t",
            limits=ScanLimits(max_pickle_stack=5_000, max_memo=5_000),
            deadline=Deadline(30),
            joblib=joblib_mode,
            machine=machine,
        )
    except Exception as e:  # compared, not hidden: both machines must fail the same way
        return ("error", type(e).__name__, str(e))
    # a memory address in a message would differ between any two runs, not only between machines
    findings = [
        (f.type, f.severity, f.location, _ADDRESS.sub("0x?", f.message), dict(f.metadata)) for f in r.findings
    ]
    return ("ok", findings, r.globals, r.end, r.pickles)


def assert_same(data: bytes) -> None:
    assert NATIVE is not None
    for mode in (False, True):
        assert outcome(data, NATIVE, joblib_mode=mode) == outcome(data, PickleMachine, joblib_mode=mode)


# -- real pickles of data and objects ---------------------------------------------------------------
_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.binary(max_size=30)
    | st.sampled_from([Decimal("1.5"), datetime.date(2020, 1, 2), complex(1, 2), range(3)])
)
_values = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.dictionaries(st.text(max_size=6) | st.integers(), inner, max_size=6)
        | st.tuples(inner, inner)
        | st.frozensets(st.integers() | st.text(max_size=4), max_size=4)
        | st.sets(st.integers(), max_size=4)
        | st.builds(
            lambda d: collections.OrderedDict(d), st.dictionaries(st.text(max_size=4), inner, max_size=4)
        )
        | st.builds(lambda v: [v, v], inner)  # shared references: memo GETs
    ),
    max_leaves=40,
)


@_SETTINGS
@given(value=_values, proto=st.integers(0, 5))
def test_real_pickles_agree(value: object, proto: int) -> None:
    assert_same(pickle.dumps(value, protocol=proto))


# -- hand-assembled programs: imports, calls, memo tricks ------------------------------------------
_NAMES = ["os", "system", "builtins", "eval", "getattr", "collections", "OrderedDict", "numpy.core",
          "_ufunc_reconstruct", "numpy", "log1p", "torch._utils", "_rebuild_tensor_v2", "a\nb", "x" * 1500]  # fmt: skip


def _str(s: str) -> bytes:
    b = s.encode()
    if len(b) < 256:
        return b"\x8c" + bytes([len(b)]) + b
    return b"X" + struct.pack("<I", len(b)) + b


_name = st.sampled_from(_NAMES).map(_str)
_global = st.one_of(
    st.tuples(_name, _name).map(lambda t: t[0] + t[1] + b"\x93"),
    st.tuples(st.sampled_from(_NAMES[:13]), st.sampled_from(_NAMES[:13])).map(
        lambda t: f"c{t[0]}\n{t[1]}\n".encode()
    ),
    st.integers(1, 255).map(lambda c: b"\x82" + bytes([c])),
)
_memo = st.sampled_from([b"\x94", b"q\x00", b"q\x01", b"r\x02\x00\x00\x00", b"p3\n", b""])
_fetch = st.sampled_from([b"h\x00", b"h\x01", b"j\x02\x00\x00\x00", b"g3\n", b"h\x07"])
_atoms = st.one_of(
    _name,
    _global,
    _fetch,
    st.sampled_from(
        [
            b"N",
            b"\x88",
            b"\x89",
            b")",
            b"}",
            b"]",
            b"\x8f",
            b"K\x07",
            b"M\x01\x02",
            b"J\x01\x02\x03\x04",
            b"G" + bytes(8),
            b"K\x01K\x02K\x03",
            b"I01\n",
            b"F1.5\n",
            b"S'os'\n",
            b"Vsystem\n",
            b"U\x02os",
            b"T\x02\x00\x00\x00ab",
            b"C\x01z",
            b"\x8a\x01\x05",
            b"\x96" + bytes(8),
            b"L5\n",
            b"\x97",
            b"\x98",
        ]
    ),
)


def _programs(inner: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    seq = st.lists(inner, max_size=4).map(b"".join)
    return st.one_of(
        st.tuples(inner, _memo).map(b"".join),  # a value, memoised
        st.tuples(_global, seq).map(lambda t: t[0] + b"(" + t[1] + b"tR"),  # call
        st.tuples(_global, inner).map(lambda t: t[0] + t[1] + b"\x85\x81"),  # NEWOBJ
        st.tuples(_global, seq).map(lambda t: t[0] + b")" + b"}(" + t[1] + b"ub"),  # BUILD
        st.tuples(_global, inner).map(lambda t: t[0] + t[1] + b"b"),  # attribute write
        seq.map(lambda s: b"(" + s + b"t"),
        seq.map(lambda s: b"}(" + s + b"u"),
        seq.map(lambda s: b"](" + s + b"e"),
        seq.map(lambda s: b"(" + s + b"l"),
        seq.map(lambda s: b"(" + s + b"\x91"),
        st.tuples(inner, inner).map(lambda t: t[0] + t[1] + b"\x86"),
        st.tuples(inner, inner, inner).map(lambda t: b"}" + t[0] + t[1] + b"s" + t[2] + b"0"),
        st.tuples(_global, inner, inner).map(lambda t: t[0] + t[1] + t[2] + b"\x92"),  # NEWOBJ_EX
        seq.map(lambda s: b"(" + s + b"cos\nsystem\no"),  # OBJ
        seq.map(lambda s: b"(" + s + b"icollections\nOrderedDict\n"),  # INST
        st.tuples(inner).map(lambda t: t[0] + b"2\x86"),  # DUP
    )


_program = st.recursive(_atoms, _programs, max_leaves=25)
_head = st.sampled_from([b"\x80\x04", b"\x80\x02", b"\x80\x05\x95" + struct.pack("<Q", 10), b""])


@_SETTINGS
@given(head=_head, body=_program, tail=st.sampled_from([b".", b"", b".N.", b"." + b"\x80\x04N.", b".junk"]))
def test_assembled_programs_agree(head: bytes, body: bytes, tail: bytes) -> None:
    assert_same(head + body + tail)


# Opcodes by their stack effect: (needed items above the innermost mark, net change); the
# mark-closing ones need a mark, the list/dict fillers also the container under it.
_STACK_OPS: list[tuple[bytes, int, int]] = [
    (b"R", 2, -1), (b"\x81", 2, -1), (b"b", 2, -1), (b"\x93", 2, -1), (b"\x92", 3, -2), (b"s", 3, -2),
    (b"a", 2, -1), (b"0", 1, -1), (b"2", 1, 1), (b"\x85", 1, 0), (b"\x86", 2, -1), (b"\x87", 3, -2),
    (b"Q", 1, 0),
]  # fmt: skip
_CLOSE_OPS = [b"t", b"l", b"d", b"\x91", b"o", b"icollections\nOrderedDict\n", b"ios\nsystem\n"]
_FILL_OPS = [b"u", b"e", b"\x90"]
_any_byte = st.sampled_from([bytes([b]) for b in range(256)])
_any_structural = st.sampled_from([o[0] for o in _STACK_OPS] + _CLOSE_OPS + _FILL_OPS + [b"(", b"1", b"."])


@st.composite
def stack_programs(draw: st.DrawFn) -> bytes:
    """Programs that keep the stack, marks and memo mostly consistent, so they run deep; one step
    in six is any opcode at all, which exercises every underflow and fence check on the way."""
    depth = [0]  # items above each open mark (depth[0]: above the stack bottom)
    memo = 0
    out = [draw(_head)]
    for _ in range(draw(st.integers(0, 60))):
        if draw(st.integers(0, 5)) == 0:
            out.append(draw(st.one_of(_any_structural, _any_structural, _atoms, _any_byte)))
            continue
        moves: list[str] = ["push", "push", "mark"]
        moves += ["stack"] * any(depth[-1] >= need for _, need, _ in _STACK_OPS)
        moves += ["memo"] * (depth[-1] >= 1) + ["fetch"] * (memo > 0)
        moves += ["close"] * (len(depth) > 1) + ["fill"] * (len(depth) > 1 and depth[-2] >= 1)
        move = draw(st.sampled_from(moves))
        if move == "push":
            out.append(
                draw(st.one_of(_name, _global, st.sampled_from([b"N", b")", b"}", b"]", b"K\x01", b"\x88"])))
            )
            depth[-1] += 1
        elif move == "mark":
            out.append(b"(")
            depth.append(0)
        elif move == "stack":
            op, _need, delta = draw(st.sampled_from([o for o in _STACK_OPS if depth[-1] >= o[1]]))
            out.append(op)
            depth[-1] += delta
        elif move == "memo":
            out.append(draw(st.sampled_from([b"\x94", b"q" + bytes([memo % 256]), b"p%d\n" % memo])))
            memo += 1
        elif move == "fetch":
            i = draw(st.integers(0, memo - 1))
            out.append(b"h" + bytes([i]) if i < 256 else b"j" + struct.pack("<I", i))
            depth[-1] += 1
        else:
            out.append(draw(st.sampled_from(_CLOSE_OPS if move == "close" else _FILL_OPS)))
            depth.pop()
            depth[-1] += 1 if move == "close" else 0
    out.append(draw(st.sampled_from([b".", b"", b".N.", b".\xff"])))
    return b"".join(out)


@_SETTINGS
@given(data=stack_programs())
def test_stack_programs_agree(data: bytes) -> None:
    assert_same(data)


_edit = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "cut"]), st.integers(0, 1 << 16), st.integers(0, 255)
)


def _mutate(data: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    for kind, at, byte in edits:
        if not data:
            break
        i = at % len(data)
        if kind == "flip":
            data = data[:i] + bytes([byte]) + data[i + 1 :]
        elif kind == "insert":
            data = data[:i] + bytes([byte]) + data[i:]
        elif kind == "delete":
            data = data[:i] + data[i + 1 :]
        else:
            data = data[:i]
    return data


@_SETTINGS
@given(
    base=st.one_of(
        st.tuples(_values, st.integers(0, 5)).map(lambda t: pickle.dumps(t[0], protocol=t[1])),
        st.tuples(_head, _program).map(lambda t: t[0] + t[1] + b"."),
    ),
    edits=st.lists(_edit, min_size=1, max_size=4),
)
def test_mutated_pickles_agree(base: bytes, edits: list[tuple[str, int, int]]) -> None:
    assert_same(_mutate(base, edits))


# -- joblib: inline arrays, object arrays, nested pickles ------------------------------------------
def _joblib_bytes(value: object) -> bytes:
    buf = io.BytesIO()
    joblib.dump(value, buf)
    return buf.getvalue()


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 50),
    dtype=st.sampled_from(["<f4", "<i8", "u1", "O"]),
    extra=_values,
    edits=st.lists(_edit, max_size=2),
)
def test_joblib_files_agree(n: int, dtype: str, extra: object, edits: list[tuple[str, int, int]]) -> None:
    arr = np.arange(n).astype(dtype) if dtype != "O" else np.array([str(i) for i in range(n)], dtype=object)
    assert_same(_mutate(_joblib_bytes({"w": arr, "extra": extra}), edits))


def test_bundled_advisory_style_pickles_agree() -> None:
    """The shapes of the published bypasses, as fixed inputs (cheap, always run)."""
    cases = [
        b"\x80\x04"
        + _str("os")
        + b"q\x07"
        + _str("system")
        + b"q\x080"
        + b"h\x07h\x08\x93("
        + _str("id")
        + b"tR.",
        b"\x80\x02cnumpy.core\n_ufunc_reconstruct\n" + _str("os") + _str("system") + b"\x86R.",
        b"(S'echo'\nios\nsystem\n.",
        b"\x80\x02ccollections\nOrderedDict\n)R)R.",
        b"\x80\x02\x82\x01)R.",
        b"\x80\x02ctorch\nSize\n}b.",
        pickle.dumps(collections.OrderedDict(a=[1, 2.5, "os.system"]), protocol=5) + b"\xffjunk",
    ]
    for data in cases:
        assert_same(data)


@pytest.mark.parametrize(
    "op", [o[0] for o in _STACK_OPS] + _CLOSE_OPS + _FILL_OPS + [b"1", b"\x94", b"q\x00", b"p0\n"]
)
def test_every_stack_check_agrees_at_the_mark_fence(op: bytes) -> None:
    """Each opcode with too few items above the innermost mark (but enough below it)."""
    for above in range(4):
        for proto in (b"", b"\x80\x04"):
            assert_same(proto + b"NNN(" + b"N" * above + op + b".")
            assert_same(proto + b"NNN(" + b"N" * above + op + b"t.")


def test_memory_mapped_file_gives_the_same_result(tmp_path: Path) -> None:
    """A mapped file is copied for the compiled machine; the result is the reference's."""
    path = tmp_path / "m.pkl"
    path.write_bytes(
        pickle.dumps([{"k": i, "v": str(i)} for i in range(2000)], protocol=4) + b"\x80\x02cos\nsystem\n."
    )
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        got = scan_pickle_stream(mm, location="t", limits=ScanLimits(), deadline=Deadline(30))  # type: ignore[arg-type]
        ref = scan_pickle_stream(
            mm,  # type: ignore[arg-type]
            location="t",
            limits=ScanLimits(),
            deadline=Deadline(30),
            machine=PickleMachine,
        )
    assert [f.message for f in got.findings] == [f.message for f in ref.findings]
    assert got.pickles == ref.pickles == 2 and got.end == ref.end
    assert got.findings and got.findings[0].type == "pickle.dangerous_global"
