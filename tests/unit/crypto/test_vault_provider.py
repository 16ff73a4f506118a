"""The Vault Transit adapter against an in-memory stand-in, plus a live test when Vault answers."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bastion.crypto.keys.interface import KeyNotFoundError, KeyState, UnwrapError
from bastion.crypto.keys.vault import VaultTransitProvider

DEK = os.urandom(32)


class InvalidPath(Exception):
    pass


class InvalidRequest(Exception):
    pass


class FakeTransit:
    """Enough of hvac's Transit API: derived aes256-gcm96 keys, versions, min_decryption_version."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {}

    def create_key(self, *, name: str, key_type: str, derived: bool, mount_point: str) -> None:
        assert derived and key_type == "aes256-gcm96"
        self.keys[name] = {"versions": {1: os.urandom(32)}, "min": 1}

    def _key(self, name: str) -> dict[str, Any]:
        if name not in self.keys:
            raise InvalidPath(name)
        return self.keys[name]

    def read_key(self, *, name: str, mount_point: str) -> dict[str, Any]:
        k = self._key(name)
        return {"data": {"latest_version": max(k["versions"]), "min_decryption_version": k["min"],
                         "keys": {str(v): 1_700_000_000 + v for v in k["versions"]}}}  # fmt: skip

    def list_keys(self, *, mount_point: str) -> dict[str, Any]:
        return {"data": {"keys": sorted(self.keys)}}

    def encrypt_data(self, *, name: str, plaintext: str, context: str, mount_point: str) -> dict[str, Any]:
        k = self._key(name)
        v = max(k["versions"])
        nonce = os.urandom(12)
        ct = AESGCM(k["versions"][v]).encrypt(nonce, base64.b64decode(plaintext), context.encode())
        return {"data": {"ciphertext": f"vault:v{v}:" + base64.b64encode(nonce + ct).decode()}}

    def decrypt_data(self, *, name: str, ciphertext: str, context: str, mount_point: str) -> dict[str, Any]:
        k = self._key(name)
        _, ver, body = ciphertext.split(":", 2)
        v = int(ver[1:])
        if v < k["min"] or v not in k["versions"]:
            raise InvalidRequest("version too old")
        raw = base64.b64decode(body)
        try:
            pt = AESGCM(k["versions"][v]).decrypt(raw[:12], raw[12:], context.encode())
        except InvalidTag:
            raise InvalidRequest("cipher: message authentication failed") from None
        return {"data": {"plaintext": base64.b64encode(pt).decode()}}

    def rotate_key(self, *, name: str, mount_point: str) -> None:
        k = self._key(name)
        k["versions"][max(k["versions"]) + 1] = os.urandom(32)

    def update_key_configuration(self, *, name: str, min_decryption_version: int, mount_point: str) -> None:
        self._key(name)["min"] = min_decryption_version


class FakeClient:
    def __init__(self) -> None:
        self.secrets = type("S", (), {"transit": FakeTransit()})()


@pytest.fixture
def vault() -> VaultTransitProvider:
    p = VaultTransitProvider("http://fake", "", client=FakeClient())
    p.create_key("kek")
    return p


def test_wrap_unwrap_rotate_retire(vault: VaultTransitProvider) -> None:
    w1 = vault.wrap("kek", DEK, b"ctx")
    assert w1.blob.startswith(b"vault:v1:")
    assert vault.unwrap(w1, b"ctx") == DEK
    with pytest.raises(UnwrapError):
        vault.unwrap(w1, b"other")
    info = vault.rotate("kek")
    assert [(v.version, v.state) for v in info.versions] == [(1, KeyState.DECRYPT_ONLY), (2, KeyState.ACTIVE)]
    w2 = vault.wrap("kek", DEK, b"ctx")
    assert w2.version == 2
    vault.retire("kek", 2)
    assert [v.version for v in vault.key_info("kek").versions] == [2]
    with pytest.raises(UnwrapError):
        vault.unwrap(w1, b"ctx")
    assert vault.unwrap(w2, b"ctx") == DEK
    with pytest.raises(KeyNotFoundError):
        vault.wrap("missing", DEK, b"")
    assert vault.check().ok


def test_live_vault_when_available() -> None:
    addr, token = os.environ.get("VAULT_ADDR"), os.environ.get("VAULT_TOKEN")
    if not addr or not token:
        pytest.skip("no Vault: set VAULT_ADDR and VAULT_TOKEN (with a transit engine mounted) to run this")
    p = VaultTransitProvider(addr, token)
    health = p.check()
    if not health.ok and "Connection" in health.detail:
        pytest.skip(f"no Vault answers at {addr}: {health.detail}")
    assert health.ok, health.detail
