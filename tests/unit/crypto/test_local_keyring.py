from __future__ import annotations

import json
from pathlib import Path

import pytest

from bastion.crypto.keys.interface import (
    KeyInfo,
    KeyNotFoundError,
    KeyProvider,
    KeyProviderError,
    KeyState,
    UnwrapError,
    key_providers,
    load_builtin_providers,
)
from bastion.crypto.keys.local import MIN_SCRYPT_N, LocalKeyring
from bastion.errors import ConfigError

DEK = bytes(range(32))


def test_is_a_key_provider(keyring: LocalKeyring) -> None:
    assert isinstance(keyring, KeyProvider)
    load_builtin_providers()
    assert key_providers.get("local") is LocalKeyring


def test_wrap_unwrap_round_trip_bound_to_context(keyring: LocalKeyring) -> None:
    w = keyring.wrap("k1", DEK, b"object-a")
    assert (w.provider, w.key_id, w.version) == ("local", "k1", 1)
    assert DEK not in w.blob
    assert keyring.unwrap(w, b"object-a") == DEK
    with pytest.raises(UnwrapError, match="did not authenticate"):
        keyring.unwrap(w, b"object-b")


def test_keyring_persists_and_rejects_wrong_passphrase(keyring: LocalKeyring) -> None:
    w = keyring.wrap("k1", DEK, b"ctx")
    again = LocalKeyring(keyring.path, "correct horse", scrypt_n=MIN_SCRYPT_N, create=False)
    assert again.unwrap(w, b"ctx") == DEK
    with pytest.raises(KeyProviderError, match="wrong passphrase"):
        LocalKeyring(keyring.path, "wrong horse", scrypt_n=MIN_SCRYPT_N)


def test_file_holds_no_key_material_in_clear(keyring: LocalKeyring) -> None:
    doc = json.loads(keyring.path.read_text())
    assert set(doc) == {"format", "version", "kdf", "nonce", "ciphertext"}
    assert keyring.path.stat().st_mode & 0o077 == 0


def test_modified_keyring_file_is_detected(keyring: LocalKeyring) -> None:
    doc = json.loads(keyring.path.read_text())
    ct = bytearray(doc["ciphertext"].encode())
    ct[10] = ord("A") if ct[10] != ord("A") else ord("B")
    doc["ciphertext"] = ct.decode()
    keyring.path.write_text(json.dumps(doc))
    with pytest.raises(KeyProviderError, match="wrong passphrase, or the file was modified"):
        LocalKeyring(keyring.path, "correct horse", scrypt_n=MIN_SCRYPT_N)


@pytest.mark.parametrize("env", ["staging", "production"])
def test_refused_outside_development(tmp_path: Path, env: str) -> None:
    with pytest.raises(ConfigError, match="refused outside environment: development"):
        LocalKeyring(tmp_path / "k.json", "pw", environment=env, scrypt_n=MIN_SCRYPT_N)
    assert not (tmp_path / "k.json").exists()


def test_empty_passphrase_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="passphrase"):
        LocalKeyring(tmp_path / "k.json", "", scrypt_n=MIN_SCRYPT_N)


def test_rotation_keeps_old_version_decrypt_only_until_retired(keyring: LocalKeyring) -> None:
    old = keyring.wrap("k1", DEK, b"c")
    info: KeyInfo = keyring.rotate("k1")
    assert [(v.version, v.state) for v in info.versions] == [(1, KeyState.DECRYPT_ONLY), (2, KeyState.ACTIVE)]
    new = keyring.wrap("k1", DEK, b"c")
    assert new.version == 2
    assert keyring.unwrap(old, b"c") == DEK
    with pytest.raises(KeyProviderError, match="active version"):
        keyring.retire("k1", 3)
    keyring.retire("k1", 2)
    with pytest.raises(KeyNotFoundError, match="version 1"):
        keyring.unwrap(old, b"c")
    assert keyring.unwrap(new, b"c") == DEK


def test_unknown_key_and_bad_key_ids(keyring: LocalKeyring) -> None:
    with pytest.raises(KeyNotFoundError):
        keyring.wrap("nope", DEK, b"")
    with pytest.raises(KeyProviderError, match="already exists"):
        keyring.create_key("k1")
    with pytest.raises(KeyProviderError, match="invalid key id"):
        keyring.create_key("../etc")


def test_wrong_data_key_length_refused(keyring: LocalKeyring) -> None:
    from bastion.errors import CryptoError

    with pytest.raises(CryptoError, match="32 bytes"):
        keyring.wrap("k1", b"short", b"")


def test_check_reports_round_trip(keyring: LocalKeyring) -> None:
    health = keyring.check()
    assert health.ok
    assert health.wrap_unwrap_us is not None
    assert "DEVELOPMENT" in health.detail


def test_cloud_providers_are_clear_stubs() -> None:
    load_builtin_providers()
    for name in ("aws-kms", "gcp-kms", "azure-keyvault"):
        with pytest.raises(ConfigError, match="not available in this build"):
            key_providers.create(name, environment="production")
    with pytest.raises(ConfigError, match="unknown key_providers plugin"):
        key_providers.get("nope")
