"""Appending to the log (pure): assign seq, time and the chain link, hash, and track the right edge.

:class:`Appender` is the state a writer needs at the end of the log — its size, the last leaf hash,
the last timestamp and the :class:`~bastion.ledger.merkle.CompactRange` — and turns pre-encoded events
into :class:`AppendedEntry` values plus the complete subtrees (level >= ``TILE_LEVEL``) to store.
:class:`MemoryLog` is a whole log in memory (tests, benchmarks, examples).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bastion.domain.events import AuditEvent
from bastion.ledger.encoding import ZERO_HASH_HEX, EncodedEvent, encode_event, format_time
from bastion.ledger.heads import TreeHead, key_id, sign_tree_head
from bastion.ledger.merkle import TILE_LEVEL, ClosedNode, CompactRange, MemorySource, TreeReader, leaf_hash
from bastion.ledger.verify import EntryRecord, VerifyReport, index_key, verify_records


@dataclass(frozen=True, slots=True)
class AppendedEntry:
    """An entry ready to be stored: the row of the entries table."""

    seq: int
    time: str
    tag: str
    actor: str
    data: bytes
    leaf: bytes

    def record(self) -> EntryRecord:
        return (self.seq, index_key(self.time, self.tag, self.actor), self.data, self.leaf)


class Appender:
    """The right edge of the log and the rules for appending to it."""

    def __init__(
        self, cr: CompactRange | None = None, last_leaf: bytes | None = None, last_time: str = ""
    ) -> None:
        self.range = cr if cr is not None else CompactRange()
        self.last_leaf = last_leaf
        self.last_time = last_time
        self._closed: list[ClosedNode] = []

    @property
    def size(self) -> int:
        return self.range.size

    def copy(self) -> Appender:
        return Appender(self.range.copy(), self.last_leaf, self.last_time)

    def append(self, event: EncodedEvent, now: datetime) -> AppendedEntry:
        """Append one event at ``now`` (never earlier than the previous entry's time)."""
        return self.append_at(event, format_time(now))

    def append_at(self, event: EncodedEvent, time: str) -> AppendedEntry:
        """Append one event at ``time`` (text from :func:`format_time`; clamped to the previous time)."""
        if time < self.last_time:
            time = self.last_time  # clocks of several writers may differ: time never goes backwards
        seq = self.range.size
        prev = self.last_leaf.hex() if self.last_leaf is not None else ZERO_HASH_HEX
        data = event.entry_bytes(seq, time, prev)
        leaf = leaf_hash(data)
        self.range.append(leaf, self._closed, TILE_LEVEL)
        self.last_leaf, self.last_time = leaf, time
        return AppendedEntry(seq, time, event.event.tag.value, event.event.actor, data, leaf)

    def take_closed(self) -> list[ClosedNode]:
        """The complete subtrees (level >= TILE_LEVEL) closed since the last call."""
        closed, self._closed = self._closed, []
        return closed

    def root(self) -> bytes:
        return self.range.root()


@dataclass
class MemoryLog:
    """A whole ledger in memory, signing a tree head every ``tree_head_every`` entries."""

    key: Ed25519PrivateKey
    tree_head_every: int = 1000
    entries: list[AppendedEntry] = field(default_factory=list)
    heads: list[TreeHead] = field(default_factory=list)
    appender: Appender = field(default_factory=Appender)

    def record(self, event: AuditEvent, now: datetime | None = None) -> AppendedEntry:
        entry = self.appender.append(encode_event(event), now or datetime.now(UTC))
        self.appender.take_closed()
        self.entries.append(entry)
        if self.appender.size % self.tree_head_every == 0:
            self.sign_tree_head(now)
        return entry

    def record_many(self, events: Iterable[AuditEvent]) -> None:
        for event in events:
            self.record(event)

    def sign_tree_head(self, now: datetime | None = None) -> TreeHead:
        head = sign_tree_head(self.key, self.appender.size, self.appender.root(), now or datetime.now(UTC))
        self.heads.append(head)
        return head

    @property
    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        public = self.key.public_key()
        return {key_id(public): public}

    def reader(self) -> TreeReader:
        return TreeReader(MemorySource([e.leaf for e in self.entries]), len(self.entries))

    def verify(self) -> VerifyReport:
        return verify_records([[e.record() for e in self.entries]], self.heads, self.public_keys)
