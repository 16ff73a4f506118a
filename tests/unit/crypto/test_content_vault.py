from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from bastion.crypto.envelope import IntegrityError
from bastion.crypto.keys.local import LocalKeyring
from bastion.errors import AuthorizationError, NotFoundError
from bastion.services.content_vault import ContentErasedError, ContentVault
from bastion.services.keys import KeyService
from bastion.store.content_tables import ContentRecord, ContentSubjectKey

from .fakes import GATEWAY, SECADMIN, RecordingAudit, RoleAuthorizer


@pytest.fixture
def audit() -> RecordingAudit:
    return RecordingAudit()


@pytest.fixture
def vault(engine: Engine, keyring: LocalKeyring, audit: RecordingAudit) -> ContentVault:
    return ContentVault(engine, KeyService(keyring, RoleAuthorizer(), audit), key_id="k1")


def test_record_and_read_back_with_ciphertext_digests(vault: ContentVault, engine: Engine) -> None:
    call = vault.record_call(GATEWAY, "user-42", "call-1", prompt="my secret prompt", response="an answer")
    attrs = call.audit_attributes()
    assert attrs["content_subject_sha256"] == hashlib.sha256(b"user-42").hexdigest()
    with Session(engine) as s:
        rows = {r.kind: r for r in s.scalars(select(ContentRecord))}
        keys = s.scalars(select(ContentSubjectKey)).all()
    assert set(rows) == {"prompt", "response"}
    for kind, row in rows.items():
        assert attrs[f"content_{kind}_sha256"] == hashlib.sha256(row.ciphertext).hexdigest()
        assert b"secret" not in row.ciphertext
    assert len(keys) == 1 and keys[0].wrapped_key is not None
    assert b"user-42" not in keys[0].wrapped_key and keys[0].subject_sha256 != "user-42"
    assert vault.read(GATEWAY, attrs["content_prompt_record"]) == "my secret prompt"
    assert vault.read(GATEWAY, attrs["content_response_record"]) == "an answer"
    assert vault.ciphertext_digest(attrs["content_prompt_record"]) == attrs["content_prompt_sha256"]


def test_one_key_per_subject(vault: ContentVault, engine: Engine) -> None:
    vault.record_call(GATEWAY, "a", "c1", prompt="p1")
    vault.record_call(GATEWAY, "a", "c2", prompt="p2")
    vault.record_call(GATEWAY, "b", "c3", prompt="p3")
    with Session(engine) as s:
        assert len(s.scalars(select(ContentSubjectKey)).all()) == 2


def test_ciphertext_moved_to_another_row_does_not_decrypt(vault: ContentVault, engine: Engine) -> None:
    a = vault.record_call(GATEWAY, "u", "c1", prompt="first").records[0].record_id
    b = vault.record_call(GATEWAY, "u", "c2", prompt="second").records[0].record_id
    with Session(engine) as s, s.begin():
        ct = s.get(ContentRecord, a).ciphertext  # type: ignore[union-attr]
        s.execute(update(ContentRecord).where(ContentRecord.id == b).values(ciphertext=ct))
    with pytest.raises(IntegrityError):
        vault.read(GATEWAY, b)


def test_erase_shreds_subject_only(vault: ContentVault, audit: RecordingAudit, engine: Engine) -> None:
    gone = vault.record_call(GATEWAY, "erase-me", "c1", prompt="p", response="r")
    kept = vault.record_call(GATEWAY, "keep-me", "c2", prompt="stay")
    with pytest.raises(AuthorizationError, match="content:erase"):
        vault.erase(GATEWAY, "erase-me")
    result = vault.erase(SECADMIN, "erase-me")
    assert (result.keys_destroyed, result.records_unreadable) == (1, 2)
    assert audit.events[-1].tag.value == "crypto:content:erased"
    assert "erase-me" not in str(audit.events[-1])
    for r in gone.records:
        with pytest.raises(ContentErasedError):
            vault.read(GATEWAY, r.record_id)
        # the ciphertext (and so the ledger's digest) is untouched
        assert vault.ciphertext_digest(r.record_id) == r.ciphertext_sha256
    assert vault.read(GATEWAY, kept.records[0].record_id) == "stay"
    with Session(engine) as s:
        assert all(k.wrapped_key is None for k in s.scalars(select(ContentSubjectKey).where(
            ContentSubjectKey.subject_sha256 == result.subject_sha256)))  # fmt: skip
    # the subject may come back later: a new key generation, old content stays shredded
    again = vault.record_call(GATEWAY, "erase-me", "c3", prompt="new")
    assert vault.read(GATEWAY, again.records[0].record_id) == "new"
    with pytest.raises(ContentErasedError):
        vault.read(GATEWAY, gone.records[0].record_id)


def test_unknown_record(vault: ContentVault) -> None:
    with pytest.raises(NotFoundError):
        vault.read(GATEWAY, "nope")


def test_rewrap_after_rotation_then_retire(
    vault: ContentVault, keyring: LocalKeyring, engine: Engine
) -> None:
    a = vault.record_call(GATEWAY, "s1", "c1", prompt="one")
    b = vault.record_call(GATEWAY, "s2", "c2", prompt="two")
    vault.erase(SECADMIN, "s2")
    keyring.rotate("k1")
    assert vault.rewrap_keys(GATEWAY) == 1
    keyring.retire("k1", 2)
    assert vault.read(GATEWAY, a.records[0].record_id) == "one"
    with pytest.raises(ContentErasedError):
        vault.read(GATEWAY, b.records[0].record_id)
    with Session(engine) as s:
        versions = {k.key_version for k in s.scalars(select(ContentSubjectKey)) if k.wrapped_key is not None}
    assert versions == {2}
