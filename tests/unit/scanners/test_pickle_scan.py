from __future__ import annotations

import collections
import os
import pickle
import struct

import numpy as np
import pytest

from bastion.domain.findings import Severity
from bastion.scanners.model.interface import Deadline, MalformedArtifact, ScanLimits
from bastion.scanners.model.pickle_policy import GlobalClass, classify
from bastion.scanners.model.pickle_scan import PickleScan, scan_pickle_stream

from .pickles import call, global_call, short_str


def scan(data: bytes) -> PickleScan:
    return scan_pickle_stream(data, location="t", limits=ScanLimits(), deadline=Deadline(30))


def types(data: bytes) -> set[str]:
    return {f.type for f in scan(data).findings}


class _Evil:
    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("proto", range(6))
def test_os_system_is_critical_in_every_protocol(proto: int) -> None:
    res = scan(pickle.dumps(_Evil(), protocol=proto))
    assert [f.severity for f in res.findings] == [Severity.CRITICAL]
    f = res.findings[0]
    offset = f.metadata["offset"]
    assert "system" in f.message and isinstance(offset, int) and offset >= 0 and f.hint
    assert "LLM03:2025" in f.controls


@pytest.mark.parametrize("proto", range(6))
def test_benign_data_with_dangerous_looking_strings_is_clean(proto: int) -> None:
    obj = {
        "cmd": "os.system",
        "arr": np.arange(6).reshape(2, 3),
        "od": collections.OrderedDict(a=1),
        "f": 1.5,
    }
    res = scan(pickle.dumps(obj, protocol=proto))
    assert res.findings == []
    assert all(v == "safe" for v in res.globals.values())


def test_unknown_global_is_flagged_not_ignored() -> None:
    res = scan(call("mypkg.hooks", "run", "x"))
    assert [(f.type, f.severity) for f in res.findings] == [("pickle.unknown_global", Severity.MEDIUM)]


def test_memo_indirection_resolves_stack_global_names() -> None:
    # "os" and "system" are memoised, unrelated strings pushed, then fetched back with BINGET.
    data = (
        b"\x80\x04"
        + short_str("os")
        + b"q\x07"
        + short_str("system")
        + b"q\x08"
        + b"0"
        + b"0"
        + short_str("collections")
        + b"0"
        + b"h\x07h\x08\x93"
        + b"("
        + short_str("id")
        + b"tR."
    )
    res = scan(data)
    assert res.findings[0].severity is Severity.CRITICAL and "os.system" in res.findings[0].message


def test_computed_stack_global_name_is_flagged() -> None:
    # module name produced by a call (builtins.str is allow-listed), so it is not a constant
    data = b"\x80\x04" + call("builtins", "str", "os")[2:-1] + short_str("system") + b"\x93" + b")R."
    res = scan(data)
    assert "pickle.dynamic_global" in {f.type for f in res.findings}


def test_inst_and_obj_opcodes_are_checked() -> None:
    inst = b"(S'echo'\nios\nsystem\n."
    assert scan(inst).findings[0].severity is Severity.CRITICAL
    obj = b"(cos\nsystem\nS'echo'\no."
    assert scan(obj).findings[0].severity is Severity.CRITICAL


def test_python2_names_are_mapped() -> None:
    assert scan(global_call("__builtin__", "eval", "1", proto=0)).findings[0].severity is Severity.CRITICAL


def test_extension_codes_and_attribute_writes_are_flagged() -> None:
    assert "pickle.extension_code" in types(b"\x80\x02\x82\x01)R.")
    assert "pickle.attribute_write" in types(b"\x80\x02ctorch\nSize\n}b.")


def test_indirect_call_of_computed_object() -> None:
    # collections.OrderedDict() -> result called again
    data = b"\x80\x02ccollections\nOrderedDict\n)R)R."
    assert "pickle.indirect_call" in types(data)


def test_ufunc_reconstruct_gadget() -> None:
    good = b"\x80\x02cnumpy.core\n_ufunc_reconstruct\n" + short_str("numpy") + short_str("log1p") + b"\x86R."
    bad = b"\x80\x02cnumpy.core\n_ufunc_reconstruct\n" + short_str("os") + short_str("system") + b"\x86R."
    assert types(good) == set()
    assert types(bad) == {"pickle.dangerous_global"}


def test_finding_messages_name_objects_without_memory_addresses() -> None:
    # _ufunc_reconstruct called with an imported global and a call result as its arguments
    data = b"\x80\x02cnumpy.core\n_ufunc_reconstruct\ncos\nsystem\nccollections\nOrderedDict\n)R\x86R."
    messages = [f.message for f in scan(data).findings]
    assert any("(<global os.system>, <call result>)" in m for m in messages)
    assert not any("0x" in m for m in messages)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\x04",
        b"\x80\x04\x8c\x10ab",  # string runs past the end
        b"\x80\x04\xff.",  # unknown opcode
        b"\x80\x09N.",  # unsupported protocol
        b"\x80\x02t.",  # mark not found
        b"\x80\x02h\x05.",  # memo key missing
        b"\x80\x02R.",  # stack underflow
        b"\x80\x02.",  # STOP on empty stack
    ],
)
def test_malformed_pickles_raise(data: bytes) -> None:
    with pytest.raises(MalformedArtifact):
        scan(data) if data else scan(b"\x80")


def test_second_pickle_is_scanned_and_junk_after_is_reported() -> None:
    data = pickle.dumps({"a": 1}) + pickle.dumps(_Evil())
    assert scan(data).pickles == 2 and "pickle.dangerous_global" in types(data)
    assert "pickle.trailing_data" in types(pickle.dumps([1]) + b"\xffjunk")


def test_stack_limit_fails_closed() -> None:
    data = b"\x80\x04" + b"N" * (1 << 21) + b"."
    with pytest.raises(MalformedArtifact, match="limit"):
        scan_pickle_stream(
            data, location="t", limits=ScanLimits(max_pickle_stack=1000), deadline=Deadline(30)
        )


def test_long_strings_are_not_decoded_as_names() -> None:
    long_name = "x" * 5000
    data = (
        b"\x80\x04"
        + short_str("os")
        + b"X"
        + struct.pack("<I", len(long_name))
        + long_name.encode()
        + b"\x93."
    )
    assert "pickle.dynamic_global" in types(data)


@pytest.mark.parametrize(
    ("module", "name", "kind"),
    [
        ("collections", "OrderedDict", GlobalClass.SAFE),
        ("torch._utils", "_rebuild_tensor_v2", GlobalClass.SAFE),
        ("torch", "FloatStorage", GlobalClass.SAFE),
        ("sklearn.linear_model._logistic", "LogisticRegression", GlobalClass.SAFE),
        ("numpy", "load", GlobalClass.DANGEROUS),
        ("torch", "load", GlobalClass.DANGEROUS),
        ("builtins", "getattr", GlobalClass.DANGEROUS),
        ("numpy", "testing.os", GlobalClass.DANGEROUS),  # attribute chain into a module
        ("torch.serialization", "os.system", GlobalClass.DANGEROUS),
        ("os\nsystem", "x", GlobalClass.DANGEROUS),
        ("pandas", "HDFStore", GlobalClass.DANGEROUS),
        ("sklearn.base", "clone", GlobalClass.UNKNOWN),  # lowercase function outside the reconstructors
    ],
)
def test_classify(module: str, name: str, kind: GlobalClass) -> None:
    assert classify(module, name).kind is kind
