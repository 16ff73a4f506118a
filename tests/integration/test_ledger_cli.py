"""``bastion ledger`` end to end, and docs/examples/verify_export.py on a real and a tampered export."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bastion.cli.main import main
from bastion.config import load_settings
from bastion.domain.events import AuditEvent, EventTag
from bastion.services.audit import AuditLog

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "examples" / "verify_export.py"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cfg = tmp_path / "bastion.yaml"
    cfg.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "ledger": {"tree_head_every": 8}}))
    monkeypatch.setenv("BASTION_CONFIG", str(cfg))
    with AuditLog.open(load_settings(cfg)) as log:
        log.record_many(
            AuditEvent(
                EventTag.GATEWAY_REQUEST_BLOCKED, f"user-{i % 3}", "gpt-x", attributes={"rule": "pi", "n": i}
            )
            for i in range(30)
        )
    return cfg


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    data: dict[str, object] = json.loads(capsys.readouterr().out)
    return data


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_verify_tail_and_tamper(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "verify", "--format", "json"]) == 0
    report = _json(capsys)
    assert report["ok"] is True and report["entries_checked"] == 30 and report["first_bad_seq"] is None
    assert main(["ledger", "tail", "-n", "2", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["tag"] for r in rows] == [
        EventTag.GATEWAY_REQUEST_BLOCKED.value,
        EventTag.LEDGER_VERIFIED.value,
    ]
    assert rows[-1]["actor"].startswith("cli:")
    assert main(["ledger", "verify"]) == 0
    assert "ledger intact" in capsys.readouterr().out
    db = sqlite3.connect(tmp_path / "data" / "bastion.db")
    db.execute("UPDATE ledger_entries SET actor = 'someone-else' WHERE seq = 17")
    db.commit()
    db.close()
    assert main(["ledger", "verify", "--format", "json"]) == 1
    report = _json(capsys)
    assert report["ok"] is False and report["first_bad_seq"] == 17 and report["entries_checked"] == 17
    assert main(["ledger", "verify"]) == 1
    captured = capsys.readouterr()
    assert "first bad entry: 17" in captured.out and "NOT INTACT" in captured.err


def test_proof_and_public_key(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "proof", "5"]) == 0
    proof = _json(capsys)
    assert proof["inclusion_proof"]["seq"] == 5  # type: ignore[index]
    assert main(["ledger", "public-key"]) == 0
    assert capsys.readouterr().out.startswith("-----BEGIN PUBLIC KEY-----")


def _export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    out = tmp_path / "ledger.jsonl"
    assert main(["ledger", "export", "-o", str(out), "--format", "json"]) == 0
    summary = _json(capsys)
    assert summary["entries"] == 31 and summary["tree_size"] == 31  # + the export event itself
    assert main(["ledger", "public-key"]) == 0
    pem = tmp_path / "ledger.pub"
    pem.write_text(capsys.readouterr().out)
    return out, pem


def test_exported_ledger_verifies_with_the_standalone_script(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, pem = _export(tmp_path, capsys)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines[0]["type"] == "header"
    assert {x["type"] for x in lines} == {"header", "tree_head", "consistency_proof", "entry"}
    result = run_script(str(out), "--public-key", str(pem))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: 31 entries")
    without_key = run_script(str(out))
    assert without_key.returncode == 0 and "trusting the public keys" in without_key.stderr


def _rewrite(path: Path, lines: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))


@pytest.mark.parametrize("tamper", ["modify", "modify-and-rehash", "delete", "swap", "truncate", "resign"])
def test_tampered_export_is_caught_by_the_script(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tamper: str
) -> None:
    out, pem = _export(tmp_path, capsys)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    first = next(i for i, x in enumerate(lines) if x["type"] == "entry")
    expected = "first bad entry: 12"
    if tamper.startswith("modify"):
        line = lines[first + 12]
        line["entry"] = str(line["entry"]).replace('"n":12', '"n":13')
        if tamper == "modify-and-rehash":
            import hashlib

            line["leaf_hash"] = hashlib.sha256(b"\x00" + str(line["entry"]).encode()).hexdigest()
    elif tamper == "delete":
        del lines[first + 12]
    elif tamper == "swap":
        lines[first + 12], lines[first + 20] = lines[first + 20], lines[first + 12]
    elif tamper == "truncate":
        del lines[first + 29 :]
        expected = "first bad entry: 29"
    else:  # re-sign with another key: refused when the real key is pinned
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        other = Ed25519PrivateKey.generate()
        for x in lines:
            if x["type"] == "tree_head":
                x["signature"] = other.sign(b"anything").hex()
        expected = "not signed by a trusted key"
    _rewrite(out, lines)
    result = run_script(str(out), "--public-key", str(pem))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "NOT INTACT" in result.stdout and expected in result.stdout, result.stdout


def test_script_rejects_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "nope"}\n')
    assert run_script(str(bad)).returncode == 2
