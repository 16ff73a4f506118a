"""Small generated model artifacts for tests (built in memory; no framework needed)."""

from __future__ import annotations

import io
import json
import struct
import zipfile


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return varint(num << 3) + varint(payload)
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def onnx_model(*, op: str = "Relu", domain: str = "", external: str | None = None) -> bytes:
    node = (
        field(1, b"x")
        + field(2, b"y")
        + field(4, op.encode())
        + (field(7, domain.encode()) if domain else b"")
    )
    tensor = field(8, b"w")
    if external is not None:
        tensor += field(13, field(1, b"location") + field(2, external.encode())) + field(14, 1)
    graph = field(1, node) + field(2, b"g") + field(5, tensor)
    return (
        field(1, 8)
        + field(2, b"pytorch")
        + field(7, graph)
        + field(8, field(1, domain.encode()) + field(2, 1))
    )


def saved_model(ops: list[str]) -> bytes:
    nodes = b"".join(field(1, field(1, f"n{i}".encode()) + field(2, op.encode())) for i, op in enumerate(ops))
    return field(1, 1) + field(2, field(2, nodes))


def safetensors(
    tensors: dict[str, tuple[str, list[int], int, int]], data: bytes, meta: dict[str, str] | None = None
) -> bytes:
    header: dict[str, object] = {
        k: {"dtype": d, "shape": s, "data_offsets": [a, b]} for k, (d, s, a, b) in tensors.items()
    }
    if meta is not None:
        header["__metadata__"] = meta
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def gguf(kv: dict[str, str], version: int = 3) -> bytes:
    def s(x: str) -> bytes:
        b = x.encode()
        return struct.pack("<Q", len(b)) + b

    body = b"".join(s(k) + struct.pack("<I", 8) + s(v) for k, v in kv.items())
    return b"GGUF" + struct.pack("<IQQ", version, 0, len(kv)) + body


def zip_of(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()
