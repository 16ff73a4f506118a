"""Tables of the audit ledger: entries, stored complete subtrees, signed tree heads.

``ledger_entries`` is append-only by contract (nothing in Bastion updates or deletes a row); the
verifier catches any change made behind its back. ``seq`` is the position in the log (0-based). The
indexed columns (``timestamp``, ``tag``, ``actor``) repeat what the canonical bytes say, for queries;
``bastion ledger verify`` checks that they still agree.

``ledger_nodes`` holds the hash of every complete subtree of level >= ``bastion.ledger.merkle.TILE_LEVEL``
(8: 256 leaves), so that a proof in a log of millions of entries reads a few rows and at most two
tiles of 256 leaf hashes, instead of recomputing from all leaves.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bastion.store.base import Base

# On SQLite an INTEGER PRIMARY KEY is the rowid itself (no second index): faster appends and range reads.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


class LedgerEntryRow(Base):
    """One ledger entry."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_tag", "tag"),
        Index("ix_ledger_entries_actor", "actor"),
        Index("ix_ledger_entries_timestamp", "timestamp"),
    )

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=False)
    timestamp: Mapped[str] = mapped_column(String(32))
    tag: Mapped[str] = mapped_column(String(128))
    actor: Mapped[str] = mapped_column(Text)
    canonical: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LedgerNodeRow(Base):
    """The hash of the complete subtree ``(level, idx)``: leaves ``[idx << level, (idx + 1) << level)``."""

    __tablename__ = "ledger_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LedgerTreeHeadRow(Base):
    """A signed tree head (see ``bastion.ledger.heads`` for the signed message)."""

    __tablename__ = "ledger_tree_heads"

    tree_size: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    timestamp: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
