from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta

import pytest

from bastion.config import load_settings
from bastion.crypto.keys.local import LocalKeyring
from bastion.crypto.stream import decrypt_stream, encrypt_stream
from bastion.errors import AuthorizationError, ConfigError
from bastion.services.keys import KeyService, TrustedLocalOperator, local_operator, provider_from_settings

from .fakes import GATEWAY, SECADMIN, VIEWER, RecordingAudit, RoleAuthorizer

DEK = os.urandom(32)


@pytest.fixture
def audit() -> RecordingAudit:
    return RecordingAudit()


@pytest.fixture
def service(keyring: LocalKeyring, audit: RecordingAudit) -> KeyService:
    return KeyService(keyring, RoleAuthorizer(), audit, rotation_days=30, rotation_overrides={"fast": 1})


def test_gateway_may_wrap_and_unwrap_and_each_use_is_recorded(
    service: KeyService, audit: RecordingAudit
) -> None:
    w = service.wrap(GATEWAY, "k1", DEK, b"ctx", purpose="content", object_id="subject-1")
    assert service.unwrap(GATEWAY, w, b"ctx", purpose="content", object_id="subject-1") == DEK
    assert audit.tags() == ["crypto:key:used", "crypto:key:used"]
    used = audit.events[0]
    assert used.actor == "svc-gateway"
    assert used.attributes["use"] == "wrap"
    assert "subject-1" not in str(used.attributes)  # object ids are hashed


def test_gateway_may_not_rotate_or_destroy(service: KeyService, audit: RecordingAudit) -> None:
    with pytest.raises(AuthorizationError, match="kms:rotate"):
        service.rotate(GATEWAY, "k1")
    with pytest.raises(AuthorizationError, match="kms:destroy"):
        service.retire(GATEWAY, "k1", 1)
    assert [e.outcome for e in audit.events] == ["denied", "denied"]
    assert service.provider.key_info("k1").active.version == 1


def test_security_admin_rotates_but_may_not_unwrap(service: KeyService, audit: RecordingAudit) -> None:
    w = service.wrap(GATEWAY, "k1", DEK, b"c", purpose="p", object_id="o")
    assert service.rotate(SECADMIN, "k1").active.version == 2
    with pytest.raises(AuthorizationError, match="kms:unwrap"):
        service.unwrap(SECADMIN, w, b"c", purpose="p", object_id="o")
    with pytest.raises(AuthorizationError):
        service.wrap(VIEWER, "k1", DEK, b"c", purpose="p", object_id="o")
    assert "crypto:key:rotated" in audit.tags()


def test_audit_failure_fails_the_operation(service: KeyService, audit: RecordingAudit) -> None:
    audit.fail = True
    with pytest.raises(RuntimeError, match="ledger unavailable"):
        service.wrap(GATEWAY, "k1", DEK, b"c", purpose="p", object_id="o")


def test_provider_view_routes_file_encryption_through_policy(
    service: KeyService, audit: RecordingAudit
) -> None:
    view = service.provider_for(GATEWAY, purpose="dataset", object_id="ds-1")
    ct = io.BytesIO()
    encrypt_stream(io.BytesIO(b"rows"), ct, provider=view, key_id="k1", object_id="ds-1", purpose="dataset")
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(ct.getvalue()), out, provider=view)
    assert out.getvalue() == b"rows"
    assert audit.tags() == ["crypto:key:used", "crypto:key:used"]
    denied = service.provider_for(VIEWER, purpose="dataset", object_id="ds-1")
    with pytest.raises(AuthorizationError):
        decrypt_stream(io.BytesIO(ct.getvalue()), io.BytesIO(), provider=denied)


def test_overdue_keys_are_recorded(service: KeyService, audit: RecordingAudit) -> None:
    service.create(SECADMIN, "fast")
    now = datetime.now(UTC)
    assert service.check_rotation(now) == []
    late = service.check_rotation(now + timedelta(days=2))
    assert [k.key_id for k in late] == ["fast"]
    assert audit.events[-1].tag.value == "crypto:key:overdue"
    assert audit.events[-1].actor == "system"
    assert {k.key_id for k in service.overdue(now + timedelta(days=31))} == {"fast", "k1"}
    service.rotate(SECADMIN, "fast")
    assert [k.key_id for k in service.overdue(now + timedelta(hours=1))] == []


def test_local_operator_is_trusted_but_recorded(keyring: LocalKeyring, audit: RecordingAudit) -> None:
    svc = KeyService(keyring, TrustedLocalOperator(), audit)
    op = local_operator()
    svc.rotate(op, "k1")
    assert audit.events[0].actor == op.id


def test_provider_from_settings(tmp_path: os.PathLike[str]) -> None:
    s = load_settings(
        None, crypto={"provider": "local", "local": {"path": f"{tmp_path}/ring.json", "scrypt_n": 1024}}
    )
    p = provider_from_settings(s, env={"BASTION_KEYRING_PASSPHRASE": "pw"})
    assert p.name == "local"
    with pytest.raises(ConfigError, match="passphrase"):
        provider_from_settings(s, env={})
    s2 = load_settings(None, crypto={"provider": "aws-kms"})
    with pytest.raises(ConfigError, match="not available in this build"):
        provider_from_settings(s2, env={})
    s3 = load_settings(None, crypto={"provider": "pkcs11", "pkcs11": {"library": "/nonexistent.so"}})
    with pytest.raises(ConfigError, match="does not exist"):
        provider_from_settings(s3, env={"BASTION_PKCS11_PIN": "1"})
