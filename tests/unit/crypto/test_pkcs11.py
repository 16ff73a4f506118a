from __future__ import annotations

import io
import os
from collections.abc import Iterator

import pytest

from bastion.crypto.keys.interface import (
    KeyNotFoundError,
    KeyProvider,
    KeyProviderError,
    KeyState,
    UnwrapError,
)
from bastion.crypto.keys.pkcs11 import Pkcs11Provider
from bastion.crypto.stream import decrypt_stream, encrypt_stream
from bastion.errors import ConfigError

pytestmark = pytest.mark.softhsm
DEK = os.urandom(32)


@pytest.fixture
def hsm(softhsm_token: tuple[str, str, str]) -> Iterator[Pkcs11Provider]:
    lib, label, pin = softhsm_token
    p = Pkcs11Provider(lib, label, pin)
    for info in p.list_keys():  # the token is shared by the session: start each test clean
        p.retire(info.key_id, info.active.version)
        p._objects()[(info.key_id, info.active.version)][0].destroy()
    p._handles.clear()
    p.create_key("kek")
    yield p
    p.close()


def test_wrap_unwrap_bound_to_context(hsm: Pkcs11Provider) -> None:
    assert isinstance(hsm, KeyProvider)
    w = hsm.wrap("kek", DEK, b"ctx-a")
    assert (w.provider, w.key_id, w.version) == ("pkcs11", "kek", 1)
    assert hsm.unwrap(w, b"ctx-a") == DEK
    with pytest.raises(UnwrapError, match="did not authenticate"):
        hsm.unwrap(w, b"ctx-b")
    bad = type(w)(w.provider, w.key_id, w.version, w.blob[:-1] + bytes([w.blob[-1] ^ 1]))
    with pytest.raises(UnwrapError):
        hsm.unwrap(bad, b"ctx-a")


def test_key_is_sensitive_and_not_extractable(hsm: Pkcs11Provider) -> None:
    import pkcs11

    key = hsm._handle("kek", 1)
    assert key[pkcs11.Attribute.SENSITIVE] is True
    assert key[pkcs11.Attribute.EXTRACTABLE] is False


def test_rotate_retire_and_reopen(hsm: Pkcs11Provider, softhsm_token: tuple[str, str, str]) -> None:
    old = hsm.wrap("kek", DEK, b"c")
    info = hsm.rotate("kek")
    assert [(v.version, v.state) for v in info.versions] == [(1, KeyState.DECRYPT_ONLY), (2, KeyState.ACTIVE)]
    new = hsm.wrap("kek", DEK, b"c")
    assert new.version == 2
    assert hsm.unwrap(old, b"c") == DEK
    lib, label, pin = softhsm_token
    again = Pkcs11Provider(lib, label, pin)  # a second provider in the same process
    assert again.unwrap(new, b"c") == DEK
    again.retire("kek", 2)
    with pytest.raises(KeyNotFoundError, match="version 1"):
        again.unwrap(old, b"c")
    assert [k.key_id for k in again.list_keys()] == ["kek"]
    again.close()


def test_streaming_file_through_hsm(hsm: Pkcs11Provider) -> None:
    data = os.urandom(5000)
    ct = io.BytesIO()
    encrypt_stream(
        io.BytesIO(data), ct, provider=hsm, key_id="kek", object_id="m", purpose="weights", segment_size=1024
    )
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(ct.getvalue()), out, provider=hsm)
    assert out.getvalue() == data


def test_check_and_errors(hsm: Pkcs11Provider, softhsm_token: tuple[str, str, str]) -> None:
    health = hsm.check()
    assert health.ok, health.detail
    lib, label, _pin = softhsm_token
    with pytest.raises(KeyProviderError, match="wrong PIN"):
        Pkcs11Provider(lib, label, "9999")
    with pytest.raises(KeyProviderError, match="not found"):
        Pkcs11Provider(lib, "no-such-token", "1234")
    with pytest.raises(ConfigError, match="does not exist"):
        Pkcs11Provider("/nonexistent/libsofthsm2.so", label, "1234")
    with pytest.raises(KeyProviderError, match="already exists"):
        hsm.create_key("kek")
