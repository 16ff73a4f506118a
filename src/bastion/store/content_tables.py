"""Tables of the encrypted content vault (prompts and responses under per-subject data keys).

Subjects appear only as SHA-256 digests. A subject's data key is stored *wrapped* by a KEK held in
a key provider (never here in the clear); erasing a subject nulls its wrapped keys, which makes
every record of that subject permanently unreadable while the ciphertexts (whose digests the
ledger covers) stay in place.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKeyConstraint, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from bastion.store.base import Base


class ContentSubjectKey(Base):
    """One generation of a subject's data key (a new generation starts after an erasure)."""

    __tablename__ = "content_subject_keys"

    subject_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64))
    key_version: Mapped[int] = mapped_column(Integer)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ContentRecord(Base):
    """One sealed prompt or response."""

    __tablename__ = "content_records"
    __table_args__ = (
        ForeignKeyConstraint(
            ["subject_sha256", "generation"],
            ["content_subject_keys.subject_sha256", "content_subject_keys.generation"],
        ),
        Index("ix_content_records_subject", "subject_sha256"),
        Index("ix_content_records_call", "call_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_sha256: Mapped[str] = mapped_column(String(64))
    generation: Mapped[int] = mapped_column(Integer)
    call_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
