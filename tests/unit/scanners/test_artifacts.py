from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import joblib  # type: ignore[import-untyped]  # joblib ships no type hints (no py.typed, no stubs)
import numpy as np
import pytest

from bastion.domain.findings import Severity
from bastion.scanners.model.artifacts import ModelScanOptions, scan_bytes, scan_model_paths
from bastion.scanners.model.interface import ScanLimits

from .builders import gguf, onnx_model, safetensors, saved_model, zip_of


class _Evil:
    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, ("echo pwned",))


EVIL = pickle.dumps(_Evil(), protocol=2)


def kinds(data: bytes, name: str) -> set[str]:
    r = scan_bytes(data, name)
    return {f.type for f in r.findings}


def test_pickle_named_safetensors_is_found_and_mismatch_reported() -> None:
    r = scan_bytes(EVIL, "model.safetensors")
    assert {"format.mismatch", "pickle.dangerous_global"} <= {f.type for f in r.findings}
    assert r.error is None


def test_torch_zip_scans_data_pkl_and_skips_storage() -> None:
    data = zip_of({"archive/data.pkl": EVIL, "archive/version": b"3\n", "archive/data/0": b"\x80\x04junk"})
    r = scan_bytes(data, "model.pt")
    assert {f.type for f in r.findings} == {"pickle.dangerous_global"} and r.error is None


def test_benign_torch_like_zip_is_clean() -> None:
    data = zip_of({"archive/data.pkl": pickle.dumps({"w": np.ones(3)}), "archive/data/0": os.urandom(64)})
    r = scan_bytes(data, "model.pt")
    assert r.findings == () and r.error is None


def test_numpy_object_array_payload_is_scanned() -> None:
    buf = io.BytesIO()
    np.save(buf, np.array([_Evil()], dtype=object), allow_pickle=True)
    assert "pickle.dangerous_global" in kinds(buf.getvalue(), "x.npy")
    clean = io.BytesIO()
    np.savez(clean, a=np.arange(10), b=np.ones((2, 2)))
    r = scan_bytes(clean.getvalue(), "x.npz")
    assert r.findings == () and r.error is None


def test_joblib_inline_arrays_are_skipped_exactly() -> None:
    ok, bad = io.BytesIO(), io.BytesIO()
    joblib.dump({"w": np.arange(5000.0), "names": np.array(["a", None], dtype=object)}, ok)
    joblib.dump({"w": np.arange(5000.0), "hook": _Evil()}, bad)
    r = scan_bytes(ok.getvalue(), "m.joblib")
    assert r.findings == () and r.error is None
    assert "pickle.dangerous_global" in kinds(bad.getvalue(), "m.joblib")


def test_safetensors_validation() -> None:
    good = safetensors({"w": ("F32", [2, 2], 0, 16)}, b"\0" * 16, {"format": "pt"})
    assert scan_bytes(good, "m.safetensors").findings == ()
    assert "safetensors.trailing_data" in kinds(good + b"EXTRA", "m.safetensors")
    assert "safetensors.overlap" in kinds(
        safetensors({"a": ("F32", [2], 0, 8), "b": ("F32", [2], 4, 12)}, b"\0" * 12), "m.safetensors"
    )
    bad_size = scan_bytes(safetensors({"w": ("F32", [3], 0, 8)}, b"\0" * 8), "m.safetensors")
    assert bad_size.error and "needs 12" in bad_size.error
    oob = scan_bytes(safetensors({"w": ("F32", [4], 0, 16)}, b"\0" * 8), "m.safetensors")
    assert oob.error and "outside" in oob.error


def test_gguf_chat_template_injection() -> None:
    evil = gguf(
        {"general.name": "x", "tokenizer.chat_template": "{{ cycler.__init__.__globals__.os.popen('id') }}"}
    )
    r = scan_bytes(evil, "m.gguf")
    assert [f.severity for f in r.findings] == [Severity.CRITICAL]
    benign = gguf({"tokenizer.chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"})
    assert scan_bytes(benign, "m.gguf").findings == ()
    assert scan_bytes(gguf({"a": "b"})[:-1], "m.gguf").error


def test_onnx_external_data_and_custom_domain() -> None:
    assert scan_bytes(onnx_model(), "m.onnx").findings == ()
    assert "onnx.external_data_traversal" in kinds(onnx_model(external="../../etc/passwd"), "m.onnx")
    assert "onnx.external_data_traversal" in kinds(onnx_model(external="/etc/shadow"), "m.onnx")
    assert "onnx.external_data_traversal" not in kinds(onnx_model(external="weights/w.bin"), "m.onnx")
    assert "onnx.custom_domain" in kinds(onnx_model(op="Evil", domain="com.attacker"), "m.onnx")


def test_saved_model_file_system_and_python_ops() -> None:
    assert scan_bytes(saved_model(["Placeholder", "MatMul"]), "saved_model.pb").findings == ()
    found = kinds(saved_model(["Placeholder", "ReadFile", "PyFunc"]), "saved_model.pb")
    assert found == {"tensorflow.dangerous_op"}


def test_keras_lambda_and_custom_module() -> None:
    cfg = {"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", "config": {}}]}}
    data = zip_of({"config.json": json.dumps(cfg).encode(), "model.weights.h5": b"\x89HDF\r\n\x1a\n"})
    assert "keras.lambda_layer" in kinds(data, "m.keras")
    cfg2 = {"module": "os", "class_name": "system", "config": {}}
    assert "keras.custom_module" in kinds(zip_of({"config.json": json.dumps(cfg2).encode()}), "m.keras")
    h5 = b"\x89HDF\r\n\x1a\n" + b"\0" * 64 + json.dumps(cfg).encode() + b"\0"
    assert "keras.lambda_layer" in kinds(h5, "m.h5")
    assert scan_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64 + b'Lambda {"class_name": broken', "m.h5").error


def test_zip_bomb_nesting_and_duplicates() -> None:
    bomb = zip_of({"x.bin": b"\0" * (20 << 20)}, zipfile.ZIP_DEFLATED)
    r = scan_bytes(bomb, "m.zip")
    assert r.error and "zip bomb" in r.error
    nested = EVIL
    for i in range(6):
        nested = zip_of({f"l{i}.zip" if i else "data.pkl": nested})
    deep = scan_bytes(nested, "deep.zip")
    assert deep.error and "nested deeper" in deep.error
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("data.pkl", pickle.dumps(1))
        with pytest.warns(UserWarning, match="Duplicate name"):
            z.writestr("data.pkl", EVIL)
    assert {"zip.duplicate_name", "pickle.dangerous_global"} <= kinds(buf.getvalue(), "m.zip")


def test_tar_and_gzip_members() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("../escape.pkl")
        info.size = len(EVIL)
        tf.addfile(info, io.BytesIO(EVIL))
    assert {"tar.path_traversal", "pickle.dangerous_global"} <= kinds(buf.getvalue(), "m.tar")
    assert "pickle.dangerous_global" in kinds(gzip.compress(EVIL), "m.pkl.gz")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80",
        EVIL[:10],
        b"PK\x03\x04garbage",
        b"GGUF\x03\0\0\0",
        b"\x93NUMPY\x01\x00\xff\xff",
        os.urandom(3000),
    ],
)
def test_bad_input_is_an_error_or_finding_never_clean_pickle_claims(data: bytes) -> None:
    r = scan_bytes(data, "model.pt")
    assert r.error is not None or r.findings, r


def test_scan_model_paths_walks_directories(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "evil.bin").write_bytes(EVIL)
    (tmp_path / "ok.safetensors").write_bytes(safetensors({"w": ("F32", [1], 0, 4)}, b"\0" * 4))
    (tmp_path / "README.md").write_text("# model")
    (tmp_path / "link").symlink_to("/etc/passwd")
    report = scan_model_paths([tmp_path], ModelScanOptions(limits=ScanLimits(max_seconds_per_file=10)))
    by_name = {Path(r.target).name: r for r in report.results}
    assert set(by_name) == {"evil.bin", "ok.safetensors", "README.md", "link"}
    assert by_name["evil.bin"].findings[0].severity is Severity.CRITICAL
    assert by_name["ok.safetensors"].findings == () and by_name["ok.safetensors"].digest
    assert by_name["link"].findings[0].type == "file.symlink"
    assert report.fails(Severity.HIGH)


def test_sklearn_models_pickle_and_joblib_are_clean() -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.random.default_rng(0).normal(size=(60, 4))
    y = (x[:, 0] > 0).astype(int)
    for est in (
        RandomForestClassifier(n_estimators=3, random_state=0),
        make_pipeline(StandardScaler(), LogisticRegression()),
    ):
        est.fit(x, y)
        buf = io.BytesIO()
        joblib.dump(est, buf)  # structured dtypes (tree nodes) and small shapes inline
        for data, name in ((buf.getvalue(), "m.joblib"), (pickle.dumps(est), "m.pkl")):
            r = scan_bytes(data, name)
            assert r.error is None and r.findings == (), (name, r)
