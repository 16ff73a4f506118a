"""Encrypted content recording: prompts and responses sealed under per-subject data keys.

* Each subject (a data subject in the GDPR sense: an end user, a customer) has its own random data
  key, stored only *wrapped* by a KEK in the key provider (``content_subject_keys``).
* Each record is sealed with AES-256-GCM; the associated data binds it to its record id, subject,
  call and kind, so a ciphertext moved to another row does not decrypt.
* :meth:`ContentVault.record_call` returns the SHA-256 of each CIPHERTEXT; the caller puts
  :meth:`RecordedCall.audit_attributes` into the call's ledger event, so the ledger's hashes cover
  exactly the bytes stored here.
* :meth:`ContentVault.erase` destroys the subject's wrapped keys (crypto-shredding, GDPR Art. 17):
  the records become unreadable, their ciphertexts and the ledger stay intact and verifiable.

Audit events are recorded outside database transactions (the ledger may share a SQLite file).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bastion.crypto.envelope import new_data_key, object_context, seal, unseal
from bastion.crypto.keys.interface import WrappedKey
from bastion.domain.access import Operation, Resource
from bastion.domain.events import AuditEvent, EventTag
from bastion.domain.identity import Principal
from bastion.errors import CryptoError, NotFoundError, StoreError
from bastion.services.keys import KeyService, digest
from bastion.store.content_tables import ContentRecord, ContentSubjectKey

Kind = Literal["prompt", "response"]
_PURPOSE = "content"


class ContentErasedError(CryptoError):
    """The subject's key was destroyed on request: the content is gone for good."""

    code = "content_erased"
    hint = "The content was crypto-shredded (an erasure request); it cannot be recovered."


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """Where one sealed record lives and the digest the ledger covers."""

    record_id: str
    kind: str
    ciphertext_sha256: str


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """The sealed prompt/response of one call."""

    call_id: str
    subject_sha256: str
    records: tuple[StoredRecord, ...]

    def audit_attributes(self) -> dict[str, str]:
        """Attributes for the call's ledger event: record ids and ciphertext digests, no content."""
        attrs = {"content_subject_sha256": self.subject_sha256}
        for r in self.records:
            attrs[f"content_{r.kind}_record"] = r.record_id
            attrs[f"content_{r.kind}_sha256"] = r.ciphertext_sha256
        return attrs


@dataclass(frozen=True, slots=True)
class Erasure:
    """The outcome of :meth:`ContentVault.erase`."""

    subject_sha256: str
    keys_destroyed: int
    records_unreadable: int


def _key_context(subject_sha256: str, generation: int) -> bytes:
    return object_context("content-subject-key", subject_sha256, str(generation))


def _record_aad(record_id: str, subject_sha256: str, call_id: str, kind: str) -> bytes:
    return object_context("content-record", record_id, f"{subject_sha256}/{call_id}/{kind}")


class ContentVault:
    """Stores and reads sealed content; erases subjects."""

    def __init__(self, engine: Engine, keys: KeyService, *, key_id: str) -> None:
        self.engine = engine
        self.keys = keys
        self.key_id = key_id

    # -- subject keys --------------------------------------------------------------------------

    def _live_key(self, s: Session, subject: str) -> ContentSubjectKey | None:
        return s.scalars(
            select(ContentSubjectKey)
            .where(ContentSubjectKey.subject_sha256 == subject, ContentSubjectKey.erased_at.is_(None))
            .order_by(ContentSubjectKey.generation.desc())
        ).first()

    def _subject_key(self, principal: Principal, subject: str) -> tuple[int, bytes]:
        """The live (generation, data key) of ``subject``, creating one if needed."""
        for _attempt in range(3):
            with Session(self.engine) as s:
                row = self._live_key(s, subject)
                if row is not None and row.wrapped_key is not None:
                    wrapped = WrappedKey(row.provider, row.key_id, row.key_version, row.wrapped_key)
                    gen = row.generation
                else:
                    wrapped = None
                    gen = (s.scalar(select(ContentSubjectKey.generation).where(
                        ContentSubjectKey.subject_sha256 == subject
                    ).order_by(ContentSubjectKey.generation.desc()).limit(1)) or 0) + 1  # fmt: skip
            if wrapped is not None:
                data_key = self.keys.unwrap(
                    principal, wrapped, _key_context(subject, gen), purpose=_PURPOSE, object_id=subject
                )
                return gen, data_key
            data_key = new_data_key()
            w = self.keys.wrap(
                principal,
                self.key_id,
                data_key,
                _key_context(subject, gen),
                purpose=_PURPOSE,
                object_id=subject,
            )
            try:
                with Session(self.engine) as s, s.begin():
                    s.add(
                        ContentSubjectKey(
                            subject_sha256=subject, generation=gen, provider=w.provider, key_id=w.key_id,
                            key_version=w.version, wrapped_key=w.blob, created_at=datetime.now(UTC),
                        )
                    )  # fmt: skip
                return gen, data_key
            except DBIntegrityError:
                continue  # another writer created this generation first: use theirs
        raise StoreError("could not create a content key for the subject (concurrent writers)")

    # -- use cases -----------------------------------------------------------------------------

    def record_call(
        self, principal: Principal, subject: str, call_id: str, *, prompt: str, response: str | None = None
    ) -> RecordedCall:
        """Seal the prompt (and response) of one call under the subject's data key."""
        subject_sha = digest(subject)
        gen, data_key = self._subject_key(principal, subject_sha)
        now = datetime.now(UTC)
        rows: list[ContentRecord] = []
        items: list[tuple[Kind, str]] = [("prompt", prompt)]
        if response is not None:
            items.append(("response", response))
        for kind, text in items:
            rid = str(uuid.uuid4())
            ct = seal(data_key, text.encode(), _record_aad(rid, subject_sha, call_id, kind))
            rows.append(
                ContentRecord(
                    id=rid, subject_sha256=subject_sha, generation=gen, call_id=call_id, kind=kind,
                    ciphertext=ct, ciphertext_sha256=hashlib.sha256(ct).hexdigest(), created_at=now,
                )
            )  # fmt: skip
        stored = tuple(StoredRecord(r.id, r.kind, r.ciphertext_sha256) for r in rows)
        try:
            with Session(self.engine) as s, s.begin():
                s.add_all(rows)
        except SQLAlchemyError as e:
            raise StoreError(f"content records could not be stored: {type(e).__name__}") from e
        return RecordedCall(call_id, subject_sha, stored)

    def read(self, principal: Principal, record_id: str) -> str:
        """The plaintext of one record; :class:`ContentErasedError` after an erasure."""
        with Session(self.engine) as s:
            rec = s.get(ContentRecord, record_id)
            if rec is None:
                raise NotFoundError(f"content record {record_id!r} does not exist")
            key = s.get(ContentSubjectKey, (rec.subject_sha256, rec.generation))
            if key is None or key.wrapped_key is None:
                raise ContentErasedError(
                    f"content record {record_id!r} was erased (its subject key is destroyed)"
                )
            wrapped = WrappedKey(key.provider, key.key_id, key.key_version, key.wrapped_key)
            subject, gen, call_id, kind, ct = (
                rec.subject_sha256,
                rec.generation,
                rec.call_id,
                rec.kind,
                rec.ciphertext,
            )
        data_key = self.keys.unwrap(
            principal, wrapped, _key_context(subject, gen), purpose=_PURPOSE, object_id=subject
        )
        return unseal(data_key, ct, _record_aad(record_id, subject, call_id, kind)).decode()

    def ciphertext_digest(self, record_id: str) -> str:
        """SHA-256 of the stored ciphertext, recomputed from the bytes (what the ledger holds)."""
        with Session(self.engine) as s:
            rec = s.get(ContentRecord, record_id)
            if rec is None:
                raise NotFoundError(f"content record {record_id!r} does not exist")
            return hashlib.sha256(rec.ciphertext).hexdigest()

    def erase(self, principal: Principal, subject: str) -> Erasure:
        """Destroy every data key of ``subject`` (operation ``content:erase``)."""
        subject_sha = digest(subject)
        resource = Resource(type="content-subject", id=subject_sha)
        self.keys.authorize(principal, Operation.CONTENT_ERASE, resource, EventTag.CONTENT_ERASED)
        now = datetime.now(UTC)
        with Session(self.engine) as s, s.begin():
            live = ContentSubjectKey.subject_sha256 == subject_sha, ContentSubjectKey.erased_at.is_(None)
            destroyed = len(s.scalars(select(ContentSubjectKey.generation).where(*live)).all())
            s.execute(update(ContentSubjectKey).where(*live).values(wrapped_key=None, erased_at=now))
            records = len(
                s.scalars(select(ContentRecord.id).where(ContentRecord.subject_sha256 == subject_sha)).all()
            )
        self.keys.audit.record(
            AuditEvent(
                EventTag.CONTENT_ERASED,
                principal.id,
                f"content-subject:{subject_sha}",
                attributes={"keys_destroyed": destroyed, "records_unreadable": records},
            )
        )
        return Erasure(subject_sha, destroyed, records)

    def rewrap_keys(self, principal: Principal) -> int:
        """Re-wrap every live subject key under the active KEK version (after a rotation).

        The data keys, and so the sealed records, do not change. Returns how many were re-wrapped.
        """
        with Session(self.engine) as s:
            rows = s.scalars(
                select(ContentSubjectKey).where(
                    ContentSubjectKey.erased_at.is_(None), ContentSubjectKey.wrapped_key.is_not(None)
                )
            ).all()
            todo = [(r.subject_sha256, r.generation, WrappedKey(r.provider, r.key_id, r.key_version, r.wrapped_key or b""))
                    for r in rows]  # fmt: skip
        done = 0
        for subject, gen, wrapped in todo:
            ctx = _key_context(subject, gen)
            data_key = self.keys.unwrap(principal, wrapped, ctx, purpose=_PURPOSE, object_id=subject)
            new = self.keys.wrap(principal, self.key_id, data_key, ctx, purpose=_PURPOSE, object_id=subject)
            with Session(self.engine) as s, s.begin():
                # only if nobody erased it meanwhile
                s.execute(
                    update(ContentSubjectKey)
                    .where(
                        ContentSubjectKey.subject_sha256 == subject,
                        ContentSubjectKey.generation == gen,
                        ContentSubjectKey.erased_at.is_(None),
                    )
                    .values(
                        provider=new.provider,
                        key_id=new.key_id,
                        key_version=new.version,
                        wrapped_key=new.blob,
                    )
                )
            done += 1
        return done
