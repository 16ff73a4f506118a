"""``AuditLog``: the one way Bastion records security-relevant events.

Appends go through a single writer thread that *group-commits*: concurrent ``record`` calls are
batched into one transaction (what queued during the previous commit, up to
``ledger.group_commit_max_batch`` events; with ``ledger.group_commit_max_wait_ms`` > 0 and several callers
active it also waits that long for more) and each caller is told
"recorded" only after that transaction committed. Several processes may share one database: every
append transaction takes the append lock (PostgreSQL advisory lock, SQLite ``BEGIN IMMEDIATE``),
reads the current end of the log *inside* the lock and only then appends, so the log never forks and
no entry is lost. A tree head is signed every ``ledger.tree_head_every`` entries, at exact multiples,
and on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine, PoolProxiedConnection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bastion.config import LedgerSettings, Settings
from bastion.domain.events import AuditEvent, EventTag
from bastion.errors import BastionError, InputError, LedgerError, StoreError
from bastion.ledger.appender import AppendedEntry, Appender
from bastion.ledger.encoding import EncodedEvent, LedgerEntry, decode_entry, encode_event, format_time
from bastion.ledger.heads import ConsistencyProof, InclusionProof, TreeHead, key_id, sign_tree_head
from bastion.ledger.merkle import CompactRange, NodeSource, TreeReader
from bastion.ledger.verify import VerifyReport, verify_records
from bastion.services.ledger_export import EXPORT_FORMAT, EXPORT_VERSION, ExportSummary, write_export
from bastion.services.ledger_keys import load_or_create_signing_key, public_key_pem
from bastion.store import ledger_repo as repo
from bastion.store.engine import make_engine
from bastion.store.migrate import upgrade

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "RECORD_TIMEOUT_S",
    "AuditLog",
    "ExportSummary",
    "Receipt",
    "load_or_create_signing_key",
    "public_key_pem",
]

#: How long ``record`` waits for its commit before reporting failure (the writer normally answers in ms).
RECORD_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Receipt:
    """Proof of recording: the entry's position, leaf hash and time. Given only after commit."""

    seq: int
    leaf_hash: bytes
    time: str


class _Request:
    """Events waiting for the writer, and how to tell their caller (a thread or an event loop)."""

    __slots__ = ("done", "error", "events", "future", "loop", "receipts", "waited_for")

    def __init__(
        self,
        events: list[EncodedEvent],
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        waited_for: bool = True,
    ) -> None:
        self.events = events
        #: a caller waits for this commit (False: it may be held back to go with others)
        self.waited_for = waited_for
        self.receipts: list[Receipt] = []
        self.error: BaseException | None = None
        self.loop = loop
        self.future: asyncio.Future[list[Receipt]] | None = loop.create_future() if loop is not None else None
        self.done: threading.Lock | None = None
        if loop is None:
            self.done = threading.Lock()
            self.done.acquire()  # released by the writer once the outcome is known

    def wait(self) -> list[Receipt]:
        """Block until the writer answered (thread callers)."""
        assert self.done is not None
        if not self.done.acquire(timeout=RECORD_TIMEOUT_S):
            raise StoreError(f"the ledger did not confirm the entry within {RECORD_TIMEOUT_S:.0f} s")
        if self.error is not None:
            raise self.error
        return self.receipts

    def settle(self) -> None:
        """Wake a thread caller (event-loop callers are woken by :func:`_settle_futures`)."""
        if self.done is not None:
            self.done.release()


def _settle_futures(requests: list[_Request]) -> None:
    """Runs on the callers' event loop: resolve their futures in one go."""
    for r in requests:
        if r.future is not None and not r.future.done():
            if r.error is not None:
                r.future.set_exception(r.error)
            else:
                r.future.set_result(r.receipts)


_STOP = object()


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AuditLog:
    """The tamper-evident audit ledger, on a database engine and an Ed25519 signing key."""

    def __init__(
        self,
        engine: Engine,
        signing_key: Ed25519PrivateKey,
        ledger: LedgerSettings | None = None,
        *,
        trusted_keys: Iterable[Ed25519PublicKey] = (),
        owns_engine: bool = False,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        cfg = ledger or LedgerSettings()
        self._engine = engine
        self._key = signing_key
        self._max_batch = cfg.group_commit_max_batch
        self._max_wait_s = cfg.group_commit_max_wait_ms / 1000.0
        self._detached_wait_s = cfg.detached_max_wait_ms / 1000.0
        self._every = cfg.tree_head_every
        self._clock = clock
        self._owns_engine = owns_engine
        public = signing_key.public_key()
        self._keys = {key_id(public): public, **{key_id(k): k for k in trusted_keys}}
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._submit_lock = threading.Lock()
        self._state_lock = threading.Lock()  # the cached right edge, shared by appends and signing
        self._closed = False
        self._cached: Appender | None = None
        self._last_requests = 0
        # SQLite: the writer keeps one DB-API connection (a file does not go stale) and appends on
        # it directly, sparing a pool checkout and SQLAlchemy's transaction layer per commit;
        # PostgreSQL goes through the pool's pre-ping and SQLAlchemy each time.
        self._hold_connection = engine.dialect.name == "sqlite"
        self._held: PoolProxiedConnection | None = None
        self._held_pool: object = None
        dbapi = engine.dialect.loaded_dbapi
        self._integrity_errors: tuple[type[BaseException], ...] = (IntegrityError, dbapi.IntegrityError)
        self._db_errors: tuple[type[BaseException], ...] = (SQLAlchemyError, dbapi.Error)
        self._writer = threading.Thread(target=self._run, name="bastion-ledger-writer", daemon=True)
        self._writer.start()

    @classmethod
    def open(cls, settings: Settings) -> AuditLog:
        """Open the ledger of ``settings``: engine, schema (migrated to the newest revision), signing key.

        The key is created (mode 0600) if missing. Tests and the app may instead pass an engine and a
        key to the constructor.
        """
        engine = make_engine(settings.database_url, pool_size=settings.database.pool_size)
        try:
            upgrade(engine)  # the same schema path as the server and the CLI (Alembic)
            key = load_or_create_signing_key(settings.signing_key_path)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, key, settings.ledger, owns_engine=True)

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Commit what is queued, stop the writer and (if owned) dispose of the engine."""
        with self._submit_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._writer.join()
        if self._owns_engine:
            self._engine.dispose()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    @property
    def trusted_keys(self) -> dict[str, Ed25519PublicKey]:
        """Public keys whose tree heads verify, by key id."""
        return dict(self._keys)

    # -- recording -------------------------------------------------------------------------------

    def _submit(
        self,
        events: Sequence[AuditEvent],
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        waited_for: bool = True,
    ) -> _Request:
        # bad input fails here, in the caller
        request = _Request([encode_event(e) for e in events], loop, waited_for=waited_for)
        with self._submit_lock:
            if self._closed:
                raise LedgerError("the audit log is closed; nothing was recorded")
            self._queue.put(request)
        return request

    def record(self, event: AuditEvent) -> Receipt:
        """Append ``event``; returns once it is committed (thread-safe)."""
        return self._submit((event,)).wait()[0]

    def record_many(self, events: Iterable[AuditEvent]) -> list[Receipt]:
        """Append ``events`` contiguously in one transaction; returns once committed."""
        batch = list(events)
        return self._submit(batch).wait() if batch else []

    def record_future(self, event: AuditEvent) -> asyncio.Future[list[Receipt]]:
        """Queue ``event`` from the running event loop; the future is resolved once it is committed.

        For callers that shield the write from their own cancellation: shielding this future costs
        no task. It is resolved (or failed) by the writer; wait at most ``RECORD_TIMEOUT_S`` for it.
        """
        request = self._submit((event,), asyncio.get_running_loop())
        assert request.future is not None
        return request.future

    def record_detached(self, event: AuditEvent) -> asyncio.Future[list[Receipt]]:
        """:meth:`record_future` for an event nobody waits for (the gateway's with ``durable_audit:
        false``): the writer may hold it up to ``ledger.detached_max_wait_ms`` to commit it together
        with others (one commit per event cost ~0.2 ms of CPU, most of it the fsync). The future is
        still resolved once it is committed; :meth:`close` commits what is held at once."""
        request = self._submit((event,), asyncio.get_running_loop(), waited_for=False)
        assert request.future is not None
        return request.future

    async def arecord(self, event: AuditEvent) -> Receipt:
        """Append ``event``; awaits the commit without blocking the event loop."""
        future = self.record_future(event)
        try:
            async with asyncio.timeout(RECORD_TIMEOUT_S):
                receipts = await future
        except TimeoutError:
            raise StoreError(
                f"the ledger did not confirm the entry within {RECORD_TIMEOUT_S:.0f} s"
            ) from None
        return receipts[0]

    # -- the writer ------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            self._drop_held()

    def _serve(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is _STOP:
                break
            batch: list[_Request] = [item]
            count = len(item.events)
            waited_for = item.waited_for
            deadline = None if waited_for else time.monotonic() + self._detached_wait_s
            while count < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    if waited_for:
                        # Wait for more only when callers are concurrent; a lone caller is not delayed.
                        if self._max_wait_s <= 0 or self._last_requests < 2:
                            break
                        if deadline is None:
                            deadline = time.monotonic() + self._max_wait_s
                    # waited for: the group-commit wait set just above; detached: the hold set at the start
                    assert deadline is not None
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        item = self._queue.get(timeout=remaining)
                    except queue.Empty:
                        break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
                count += len(item.events)
                if item.waited_for and not waited_for:
                    # a caller waits now: commit with what is queued (the wait, if any, is its own)
                    waited_for, deadline = True, None
            self._last_requests = len(batch)
            self._commit(batch)

    def _commit(self, batch: list[_Request]) -> None:
        fatal: BaseException | None = None
        try:
            results = self._append(batch)
            for request, receipts in zip(batch, results, strict=True):
                request.receipts = receipts
        except BaseException as e:  # noqa: BLE001 - every caller must hear back; re-raised below if fatal
            error = (
                e
                if isinstance(e, BastionError)
                else StoreError(f"recording failed: {e.__class__.__name__}: {e}")
            )
            for request in batch:
                request.error = error
            if not isinstance(e, Exception):
                fatal = e
        by_loop: dict[asyncio.AbstractEventLoop, list[_Request]] = {}
        for request in batch:
            if request.loop is None:
                request.settle()
            else:
                by_loop.setdefault(request.loop, []).append(request)
        for loop, requests in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_settle_futures, requests)
        if fatal is not None:
            raise fatal

    def _append(self, batch: list[_Request]) -> list[list[Receipt]]:
        for attempt in range(3):
            try:
                if self._hold_connection:
                    return self._append_held(batch)
                return self._append_pooled(batch)
            except self._integrity_errors:
                # Another writer appended without the lock (should not happen); reload the end and retry.
                self._cached = None
                if attempt == 2:
                    raise
            except self._db_errors as e:
                self._cached = None
                self._drop_held()
                raise StoreError(f"recording in the ledger failed: {e.__class__.__name__}: {e}") from e
        raise AssertionError("unreachable")

    def _tip_appender(self, tip: repo.Tip, source: NodeSource) -> Appender:
        """The right edge of the log, from cache when no other process appended since."""
        cached = self._cached
        if cached is not None and cached.size == tip.size and (cached.last_leaf or b"") == tip.last_leaf:
            return cached.copy()
        reader = TreeReader(source, tip.size)
        cr = CompactRange.load(tip.size, reader.node)
        return Appender(cr, tip.last_leaf or None, tip.last_time)

    def _build(
        self, work: Appender, batch: list[_Request]
    ) -> tuple[list[AppendedEntry], list[TreeHead], list[list[Receipt]]]:
        """Append the batch's events to ``work``: the rows, the tree heads due, each caller's receipts."""
        now = self._clock()
        time_text = format_time(now)
        entries: list[AppendedEntry] = []
        heads: list[TreeHead] = []
        results: list[list[Receipt]] = []
        every = self._every
        for request in batch:
            receipts = []
            for event in request.events:
                entry = work.append_at(event, time_text)
                entries.append(entry)
                receipts.append(Receipt(entry.seq, entry.leaf, entry.time))
                if work.size % every == 0:
                    heads.append(sign_tree_head(self._key, work.size, work.root(), now))
            results.append(receipts)
        return entries, heads, results

    def _held_connection(self) -> PoolProxiedConnection:
        """The writer's own SQLite connection (a new one after a failure or an engine dispose)."""
        if self._held is not None and self._held_pool is not self._engine.pool:
            self._drop_held()  # the engine was disposed: its connections are not to be used again
        if self._held is None:
            self._held_pool = self._engine.pool
            self._held = self._engine.raw_connection()
        return self._held

    def _drop_held(self) -> None:
        """Close the writer's held connection (after a failure, or when the writer stops)."""
        held, self._held = self._held, None
        if held is not None:
            with contextlib.suppress(*self._db_errors):
                held.close()

    def _append_held(self, batch: list[_Request]) -> list[list[Receipt]]:
        """One SQLite transaction on the held DB-API connection; ``BEGIN IMMEDIATE`` is the append lock."""
        with self._state_lock:
            raw = self._held_connection()
            cur = raw.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                rows = repo.DbapiAppend(cur)
                work = self._tip_appender(rows.read_tip(), rows)
                entries, heads, results = self._build(work, batch)
                rows.insert_entries(entries)
                rows.insert_nodes(work.take_closed())
                for head in heads:
                    rows.insert_tree_head(head)
                raw.commit()
            except BaseException:
                with contextlib.suppress(*self._db_errors):
                    raw.rollback()
                raise
            finally:
                cur.close()
        self._cached = work  # only after the commit succeeded
        return results

    def _append_pooled(self, batch: list[_Request]) -> list[list[Receipt]]:
        """One transaction on a pooled connection (PostgreSQL: the advisory lock serialises appenders)."""
        with self._state_lock, self._engine.begin() as conn:
            repo.lock_for_append(conn)
            work = self._tip_appender(repo.read_tip(conn), repo.ConnectionSource(conn))
            entries, heads, results = self._build(work, batch)
            repo.insert_entries(conn, entries)
            repo.insert_nodes(conn, work.take_closed())
            for head in heads:
                repo.insert_tree_head(conn, head)
        self._cached = work  # only after the commit succeeded
        return results

    # -- tree heads and proofs -------------------------------------------------------------------

    def sign_tree_head(self) -> TreeHead:
        """Sign (and store) a tree head at the current size; the existing one if that size is signed."""
        try:
            with self._state_lock, self._engine.begin() as conn:
                repo.lock_for_append(conn)
                work = self._tip_appender(repo.read_tip(conn), repo.ConnectionSource(conn))
                existing = repo.get_tree_head(conn, work.size)
                if existing is not None:
                    return existing
                head = sign_tree_head(self._key, work.size, work.root(), self._clock())
                repo.insert_tree_head(conn, head)
                return head
        except SQLAlchemyError as e:
            raise StoreError(f"signing a tree head failed: {e.__class__.__name__}: {e}") from e

    def latest_tree_head(self) -> TreeHead | None:
        with repo.LedgerReader(self._engine) as reader:
            return reader.latest_tree_head()

    def tree_heads(self) -> list[TreeHead]:
        with repo.LedgerReader(self._engine) as reader:
            return reader.tree_heads()

    def size(self) -> int:
        """The number of entries in the log."""
        with repo.LedgerReader(self._engine) as reader:
            return reader.size()

    def root_hash(self, tree_size: int | None = None) -> bytes:
        """The root of the tree of ``tree_size`` entries (default: all)."""
        with repo.LedgerReader(self._engine) as reader:
            size = self._check_size(reader, tree_size)
            return TreeReader(reader, size).root()

    @staticmethod
    def _check_size(reader: repo.LedgerReader, tree_size: int | None) -> int:
        current = reader.size()
        if tree_size is None:
            return current
        if not 0 <= tree_size <= current:
            raise InputError(f"tree size {tree_size} is not within 0..{current}")
        return tree_size

    def inclusion_proof(self, seq: int, tree_size: int | None = None) -> InclusionProof:
        """Proof that entry ``seq`` is in the tree of ``tree_size`` entries (default: all)."""
        with repo.LedgerReader(self._engine) as reader:
            size = self._check_size(reader, tree_size)
            if not 0 <= seq < size:
                raise InputError(f"entry {seq} is not in a tree of {size} entries")
            tree = TreeReader(reader, size)
            leaf = tree.node(0, seq)
            return InclusionProof(seq, size, leaf, tuple(tree.inclusion_path(seq)))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """Proof that the tree of ``old_size`` entries is a prefix of the tree of ``new_size``."""
        with repo.LedgerReader(self._engine) as reader:
            size = self._check_size(reader, new_size)
            if not 0 <= old_size <= size:
                raise InputError(f"old size {old_size} is not within 0..{size}")
            return ConsistencyProof(
                old_size, size, tuple(TreeReader(reader, size).consistency_path(old_size))
            )

    # -- reading, verifying, exporting -----------------------------------------------------------

    def tail(self, n: int = 20) -> list[LedgerEntry]:
        """The last ``n`` entries, oldest first (decoded; a corrupt entry raises LedgerIntegrityError)."""
        if n < 0:
            raise InputError("n must be >= 0")
        with repo.LedgerReader(self._engine) as reader:
            return [decode_entry(data) for data in reader.tail(n)]

    def verify(self, *, actor: str | None = None) -> VerifyReport:
        """Recompute everything; when ``actor`` is given, record the outcome in the ledger."""
        with repo.LedgerReader(self._engine) as reader:
            heads = reader.tree_heads()
            nodes = reader.stored_nodes()
            scan = reader.scan()
            try:
                report = verify_records(scan, heads, self._keys, nodes)
            finally:
                scan.close()
        if actor is not None:
            self.record(
                AuditEvent(
                    EventTag.LEDGER_VERIFIED,
                    actor,
                    outcome="success" if report.ok else "failure",
                    attributes={
                        "entries_checked": report.entries_checked,
                        "first_bad_seq": report.first_bad_seq,
                        "bad_tree_head": report.bad_tree_head,
                    },
                )
            )
        return report

    def export(self, target: str | Path | IO[str], *, actor: str | None = None) -> ExportSummary:
        """Write the whole ledger as JSON Lines (see docs/ledger.md) after signing a tree head at its end."""
        if actor is not None:
            self.record(AuditEvent(EventTag.LEDGER_EXPORTED, actor))
        self.sign_tree_head()
        return write_export(self._engine, self._keys, target)
