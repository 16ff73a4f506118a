"""One test per published pickle/model-scanner bypass, named after its advisory.

Each payload is assembled by hand (never unpickled) and must be reported — as a finding of at
least medium severity or as an error (fail closed).
"""

from __future__ import annotations

import io
import struct
import zipfile

import pytest

from bastion.domain.findings import Severity
from bastion.scanners.model.artifacts import scan_bytes


def _s(x: str) -> bytes:
    b = x.encode()
    return b"\x8c" + bytes([len(b)]) + b


def _call(module: str, name: str, *args: str) -> bytes:
    return b"\x80\x04" + _s(module) + _s(name) + b"\x93(" + b"".join(_s(a) for a in args) + b"tR."


def _flagged(data: bytes, name: str = "model.pkl", at_least: Severity = Severity.MEDIUM) -> bool:
    r = scan_bytes(data, name)
    return r.error is not None or any(f.severity.at_least(at_least) for f in r.findings)


def test_cve_2025_1716_pip_main() -> None:
    assert _flagged(_call("pip", "main", "install", "evil-package"), at_least=Severity.CRITICAL)


def test_ghsa_xp4f_hrf8_rxw7_ensurepip_run_pip() -> None:
    assert _flagged(_call("ensurepip", "_run_pip", "install"), at_least=Severity.CRITICAL)


def test_ghsa_v7x6_rv5q_mhwc_timeit() -> None:
    assert _flagged(_call("timeit", "timeit", "__import__('os').system('id')"), at_least=Severity.CRITICAL)


def test_ghsa_vvpj_8cmc_gx39_pkgutil_resolve_name() -> None:
    assert _flagged(_call("pkgutil", "resolve_name", "os:system"), at_least=Severity.CRITICAL)


def test_ghsa_7wx9_6375_f5wh_profile_run() -> None:
    assert _flagged(_call("cProfile", "run", "print(1)"), at_least=Severity.CRITICAL)
    assert _flagged(_call("profile", "run", "print(1)"), at_least=Severity.CRITICAL)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("uuid", "_get_command_stdout"),
        ("imaplib", "IMAP4_stream"),
        ("_pyrepl.pager", "pipe_pager"),
        ("_osx_support", "_read_output"),
        ("_aix_support", "_read_cmd_output"),
    ],
)
def test_cve_2026_56315_unlisted_stdlib_modules_caught_by_allow_list(module: str, name: str) -> None:
    # A deny-list missed these; an allow-list flags anything not known to be safe.
    assert _flagged(_call(module, name, "id"))


def test_ghsa_955r_x9j8_7rhh_operator_attrgetter() -> None:
    assert _flagged(_call("_operator", "attrgetter", "system"), at_least=Severity.CRITICAL)


def test_cve_2025_10157_subclass_of_dangerous_module() -> None:
    assert _flagged(_call("asyncio.unix_events", "_UnixSubprocessTransport"), at_least=Severity.CRITICAL)


def test_picklescan_issue_22_memo_confusion() -> None:
    # BINPUT overwrites a memo slot; a scanner that ignores the index resolves the wrong name.
    data = (
        b"\x80\x04"
        + _s("builtins")
        + b"q\x01"
        + _s("len")
        + b"q\x02"
        + b"00"
        + _s("os")
        + b"q\x01"
        + _s("system")
        + b"q\x02"
        + b"00"
        + b"h\x01h\x02\x93"
        + b"("
        + _s("id")
        + b"tR."
    )
    assert _flagged(data, at_least=Severity.CRITICAL)


def test_cve_2025_1889_and_cve_2025_10155_pickle_hidden_behind_extension() -> None:
    payload = _call("os", "system", "id")
    for name in ("model.safetensors", "weights.bin", "model.gguf", "README.md", "tokenizer.json"):
        assert _flagged(payload, name, at_least=Severity.CRITICAL), name


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in members.items():
            z.writestr(k, v)
    return buf.getvalue()


def test_cve_2025_1944_zip_local_and_central_names_differ() -> None:
    data = bytearray(_zip({"archive/data.pkl": _call("os", "system", "id")}))
    first = data.index(b"archive/data.pkl")  # local header copy of the name only
    data[first : first + 16] = b"archive/data.xyz"
    assert _flagged(bytes(data), "model.pt")


def test_cve_2025_1945_zip_flag_bits_tampered() -> None:
    data = bytearray(_zip({"archive/data.pkl": _call("os", "system", "id")}))
    cd = data.index(b"PK\x01\x02")
    flags = struct.unpack_from("<H", data, cd + 8)[0] | 0x1  # "encrypted" bit on a plain member
    struct.pack_into("<H", data, cd + 8, flags)
    assert _flagged(bytes(data), "model.pt")


def test_cve_2025_10156_zip_crc_mismatch() -> None:
    data = bytearray(_zip({"archive/data.pkl": _call("os", "system", "id")}))
    cd = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, cd + 16, 0xDEADBEEF)
    assert _flagged(bytes(data), "model.pt")


def test_pickle_in_non_standard_zip_member_name() -> None:
    assert _flagged(
        _zip({"model/weights.bin": _call("os", "system", "id")}), "model.pt", at_least=Severity.CRITICAL
    )


def test_cve_2024_34359_gguf_chat_template_ssti() -> None:
    tpl = "{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}"
    key, val = b"tokenizer.chat_template", tpl.encode()
    data = (
        b"GGUF"
        + struct.pack("<IQQ", 3, 0, 1)
        + struct.pack("<Q", len(key))
        + key
        + struct.pack("<I", 8)
        + struct.pack("<Q", len(val))
        + val
    )
    assert _flagged(data, "m.gguf", at_least=Severity.CRITICAL)


def test_cve_2024_3660_keras_lambda() -> None:
    cfg = b'{"class_name": "Functional", "config": {"layers": [{"class_name": "Lambda", "config": {}}]}}'
    assert _flagged(_zip({"config.json": cfg}), "m.keras", at_least=Severity.CRITICAL)


def test_cve_2025_1550_keras_module_import() -> None:
    cfg = b'{"module": "subprocess", "class_name": "Popen", "config": {}}'
    assert _flagged(_zip({"config.json": cfg}), "m.keras", at_least=Severity.HIGH)


def _field(num: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return bytes([num << 3, payload])
    assert len(payload) < 128
    return bytes([num << 3 | 2, len(payload)]) + payload


def test_cve_2024_27318_onnx_external_data_traversal() -> None:
    tensor = _field(8, b"w") + _field(13, _field(1, b"location") + _field(2, b"../../../../etc/passwd"))
    graph = _field(1, _field(4, b"Relu")) + _field(5, tensor)
    model = _field(1, 8) + _field(2, b"x") + _field(7, graph)
    assert _flagged(model, "m.onnx", at_least=Severity.HIGH)
