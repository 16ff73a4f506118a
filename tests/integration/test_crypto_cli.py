"""The encryption CLI end to end: real files, a real local keyring, a real SQLite database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from bastion.cli.main import main
from bastion.config import load_settings
from bastion.domain.events import EventTag
from bastion.services.audit import AuditLog
from bastion.services.content_vault import ContentErasedError, ContentVault
from bastion.services.keys import KeyService, TrustedLocalOperator, local_operator, provider_from_settings
from bastion.store.engine import make_engine
from bastion.store.schema import create_all


class _Events:
    def __init__(self) -> None:
        self.events: list[object] = []

    def record(self, event: object) -> None:
        self.events.append(event)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cfg = tmp_path / "bastion.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp_path / "data"),
                "crypto": {
                    "provider": "local",
                    "key_id": "main",
                    "local": {"path": str(tmp_path / "keys" / "ring.json"), "scrypt_n": 1024},
                },
            }
        )
    )
    monkeypatch.setenv("BASTION_CONFIG", str(cfg))
    monkeypatch.setenv("BASTION_KEYRING_PASSPHRASE", "test passphrase")
    (tmp_path / "work").mkdir()
    assert main(["keys", "create-kek"]) == 0
    return cfg


def test_encrypt_decrypt_round_trip(config: Path, tmp_path: Path) -> None:
    src = tmp_path / "work" / "weights.bin"
    data = os.urandom(3 * (1 << 20) + 123)
    src.write_bytes(data)
    enc = tmp_path / "work" / "weights.bin.bst"
    assert main(["encrypt", str(src), "-o", str(enc), "--purpose", "model"]) == 0
    assert data[:4096] not in enc.read_bytes()
    out = tmp_path / "work" / "weights.out"
    assert main(["decrypt", str(enc), "-o", str(out), "--expect-object-id", "weights.bin"]) == 0
    assert out.read_bytes() == data
    # refuses to overwrite without --force
    assert main(["decrypt", str(enc), "-o", str(out)]) == 2
    # every key use went to the ledger, which still verifies
    with AuditLog.open(load_settings(config)) as audit:
        used = [e for e in audit.tail(100) if e.event.tag is EventTag.KEY_USED]
        assert len(used) >= 2  # wrap on encrypt, unwrap on decrypt
        assert audit.verify().ok


def test_tampered_file_fails_cleanly_without_output(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "work" / "data.csv"
    src.write_bytes(os.urandom(2 * (1 << 20) + 5))
    enc = tmp_path / "work" / "data.bst"
    assert main(["encrypt", str(src), "-o", str(enc)]) == 0
    blob = bytearray(enc.read_bytes())
    blob[4096 + (1 << 20) + 100] ^= 0x40  # inside segment 1
    enc.write_bytes(blob)
    out = tmp_path / "work" / "data.out"
    assert main(["decrypt", str(enc), "-o", str(out)]) == 3
    assert "segment 1" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["data.bst", "data.csv"]
    assert main(["decrypt", str(enc), "-o", str(tmp_path / "work" / "x"), "--expect-object-id", "other"]) == 3


def test_wrong_passphrase_is_named(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BASTION_KEYRING_PASSPHRASE", "wrong")
    assert main(["keys", "provider-check"]) == 3
    assert "wrong passphrase" in capsys.readouterr().err


def test_local_keyring_refused_in_production(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BASTION_ENVIRONMENT", "production")
    assert main(["keys", "provider-check"]) == 2
    assert "refused outside environment: development" in capsys.readouterr().err


def test_missing_provider_is_named(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BASTION_CRYPTO__PROVIDER", "gcp-kms")
    assert main(["keys", "provider-check"]) == 2
    assert "not available in this build" in capsys.readouterr().err


def test_keys_never_written_beside_the_keyring(config: Path, tmp_path: Path) -> None:
    src = tmp_path / "work" / "a"
    src.write_bytes(b"a")
    assert main(["encrypt", str(src), "-o", str(tmp_path / "keys" / "a.bst")]) == 2
    assert not (tmp_path / "keys" / "a.bst").exists()


def test_rotate_rewraps_files_and_vault_then_retires(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "work" / "ds.parquet"
    src.write_bytes(os.urandom(70_000))
    enc = tmp_path / "work" / "ds.bst"
    assert main(["encrypt", str(src), "-o", str(enc)]) == 0
    bulk_before = enc.read_bytes()[4096:]
    settings = load_settings(config)
    engine = make_engine(settings.database_url)
    create_all(engine)
    provider = provider_from_settings(settings)
    vault = ContentVault(engine, KeyService(provider, TrustedLocalOperator(), _Events()), key_id="main")
    rec = vault.record_call(local_operator(), "subject-1", "call-1", prompt="hello")
    provider.close()
    assert main(["keys", "rotate-kek", "--rewrap", str(enc), "--retire"]) == 0
    assert "re-wrapped 1 content subject key" in capsys.readouterr().err
    assert enc.read_bytes()[4096:] == bulk_before
    out = tmp_path / "work" / "ds.out"
    assert main(["decrypt", str(enc), "-o", str(out)]) == 0
    assert out.read_bytes() == src.read_bytes()
    provider = provider_from_settings(settings)
    vault = ContentVault(engine, KeyService(provider, TrustedLocalOperator(), _Events()), key_id="main")
    assert [v.version for v in provider.key_info("main").versions] == [2]
    assert vault.read(local_operator(), rec.records[0].record_id) == "hello"
    # crypto-shredding through the CLI
    assert main(["erase", "subject-1", "--yes"]) == 0
    with pytest.raises(ContentErasedError):
        vault.read(local_operator(), rec.records[0].record_id)
    assert vault.ciphertext_digest(rec.records[0].record_id) == rec.records[0].ciphertext_sha256
    engine.dispose()


def test_provider_check_and_dev_cert(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "provider-check", "--format", "json"]) == 0
    assert '"ok": true' in capsys.readouterr().out
    assert main(["tls", "dev-cert", "--out", str(tmp_path / "tls"), "--client", "ingest"]) == 0
    assert {p.name for p in (tmp_path / "tls").iterdir()} >= {
        "ca.pem",
        "server.pem",
        "server-key.pem",
        "client-ingest.pem",
    }
