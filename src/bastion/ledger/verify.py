"""The ledger verifier: recompute everything from the entries and the signed tree heads (pure).

Feed the entries in order (batches of :data:`EntryRecord` tuples, as read from the store or an export),
then :meth:`Verifier.finish` with the tree heads and trusted keys. Per entry it checks:

* its position: the ``seq`` it claims equals its place in the log (deletion, insertion, reordering);
* that its indexed columns (seq, time, tag, actor) match its canonical bytes (a hand-edited column);
* its stored leaf hash against ``SHA-256(0x00 || bytes)`` (a hand-edited entry);
* the hash chain: its ``prev`` is the leaf hash of the entry before it (an entry altered *and* its stored
  hash recomputed, an inserted entry);
* timestamps never go backwards;
* every stored complete subtree hash against the recomputed one;
* every tree head: a valid Ed25519 signature by a trusted key, and a root equal to the recomputed root
  at its size; a tree head beyond the last entry means entries were deleted from the end.

The *first bad entry* is the lowest position at which the log stops being consistent, with one entry
of look-ahead to tell "this entry was altered" from "the entry before it was altered or inserted":

* a break of the chain at ``p`` with entry ``p+1`` still chaining to ``p`` (or no ``p+1``) → ``p-1``
  was altered (only its bytes changed, so ``p`` no longer points at it);
* entry ``p`` repeating ``p-1``'s seq while ``p+1`` chains to ``p`` → ``p-1`` was inserted;
* otherwise → ``p``.

An attacker who rewrites a whole tail of the log and its hash chain consistently is caught by the first
signed tree head after the change; such a rewrite can be narrowed down only to the entries between
that tree head and the one before it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bastion.ledger.encoding import ENTRY_KEYS, FORMAT_VERSION, ZERO_HASH_HEX
from bastion.ledger.heads import TreeHead, check_signature
from bastion.ledger.merkle import TILE_LEVEL, ClosedNode, CompactRange

#: ``(seq, index, canonical bytes, stored leaf hash or None)`` — one row of the entries table, where
#: ``index`` is :func:`index_key` of the row's indexed columns (time, tag, actor).
EntryRecord = tuple[int, str, bytes, bytes | None]


def index_key(time: object, tag: object, actor: object) -> str:
    """The indexed columns of an entry as one string (``time|tag|actor``; time and tag hold no ``|``)."""
    return f"{time}|{tag}|{actor}"


_sha256 = hashlib.sha256
_loads = orjson.loads


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of a full verification.

    ``entries_checked`` counts the entries found good (all of them when ``ok``); ``root_hash`` is the
    recomputed root of the whole log when ``ok``; ``first_bad_seq`` names the first bad entry and
    ``bad_tree_head`` the size of a tree head that failed (bad signature, wrong root, or beyond the end).
    """

    ok: bool
    entries_checked: int
    tree_heads_checked: int
    root_hash: bytes | None
    first_bad_seq: int | None = None
    reason: str | None = None
    bad_tree_head: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries_checked": self.entries_checked,
            "tree_heads_checked": self.tree_heads_checked,
            "root_hash": self.root_hash.hex() if self.root_hash is not None else None,
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
            "bad_tree_head": self.bad_tree_head,
        }


@dataclass(slots=True)
class _Anomaly:
    pos: int
    record: EntryRecord
    obj: dict[str, Any] | None
    leaf: bytes
    problem: str  # "entry" | "seq" | "link" | "time"
    detail: str


class Verifier:
    """Incremental verifier; see the module docstring."""

    def __init__(
        self,
        head_sizes: Iterable[int] = (),
        stored_nodes: Mapping[tuple[int, int], bytes] | None = None,
    ) -> None:
        self._range = CompactRange()
        self._prev_hex = ZERO_HASH_HEX
        self._prev_obj: dict[str, Any] | None = None
        self._last_time = ""
        sizes = set(head_sizes)
        self._want_roots = sorted((s for s in sizes if s > 0), reverse=True)
        self._roots: dict[int, bytes] = {}
        self._stored = stored_nodes or {}
        self._node_problem: str | None = None
        self._pending: _Anomaly | None = None
        self._bad: tuple[int, str] | None = None
        if 0 in sizes:
            self._roots[0] = self._range.root()

    @property
    def done(self) -> bool:
        """True once the first bad entry is known (feeding more changes nothing)."""
        return self._bad is not None

    def feed(self, batch: Sequence[EntryRecord]) -> None:
        """Check the next entries, in log order."""
        if self._bad is not None:
            return
        want = self._want_roots
        next_head = want[-1] if want else -1
        pos = self._range.size
        leaves: list[bytes] = []
        prev_hex, last_time, prev_obj = self._prev_hex, self._last_time, self._prev_obj
        sha, loads = _sha256, _loads
        for record in batch:
            if self._pending is not None:
                self._resolve(record)
                return
            seq, index, data, stored_leaf = record
            try:
                leaf = sha(b"\x00" + data).digest()
                obj = loads(data)
                time = obj["time"]
                good = (
                    seq == pos
                    and obj["prev"] == prev_hex
                    and obj["seq"] == seq
                    and f"{time}|{obj['tag']}|{obj['actor']}" == index
                    and (stored_leaf is None or stored_leaf == leaf)
                    and time >= last_time
                    and len(obj) == 9
                )
            except (TypeError, KeyError, orjson.JSONDecodeError):
                good = False
            if not good:
                self._flush(leaves)
                self._prev_hex, self._last_time, self._prev_obj = prev_hex, last_time, prev_obj
                self._classify(pos, record)
                if self._bad is not None:
                    return
                continue
            leaves.append(leaf)
            pos += 1
            prev_obj, prev_hex, last_time = obj, leaf.hex(), time
            if pos == next_head:
                self._flush(leaves)
                self._roots[want.pop()] = self._range.root()
                next_head = want[-1] if want else -1
        self._flush(leaves)
        self._prev_hex, self._last_time, self._prev_obj = prev_hex, last_time, prev_obj

    def _flush(self, leaves: list[bytes]) -> None:
        """Add verified leaves to the tree (in bulk) and compare the subtrees that close with the stored ones."""
        if not leaves:
            return
        if self._stored:
            closed: list[ClosedNode] = []
            self._range.extend(leaves, closed, TILE_LEVEL)
            for node in closed:
                stored = self._stored.get((node.level, node.index))
                if stored is not None and stored != node.hash and self._node_problem is None:
                    self._node_problem = f"stored subtree hash (level {node.level}, index {node.index}) does not match the entries"
        else:
            self._range.extend(leaves)
        leaves.clear()

    def _classify(self, pos: int, record: EntryRecord) -> None:
        seq, index, data, stored_leaf = record
        try:
            leaf = _sha256(b"\x00" + data).digest()
            obj = _loads(data)
        except (TypeError, orjson.JSONDecodeError):
            self._anomaly(_Anomaly(pos, record, None, b"", "entry", "is not valid UTF-8 JSON bytes"))
            return
        if type(obj) is not dict or obj.keys() != ENTRY_KEYS or obj.get("v") != FORMAT_VERSION:
            self._anomaly(_Anomaly(pos, record, None, leaf, "entry", "is not a version-1 ledger entry"))
            return
        claimed = obj["seq"]
        if seq != claimed or index != index_key(obj["time"], obj["tag"], obj["actor"]):
            problem, detail = "entry", "has indexed columns that do not match its content"
        elif stored_leaf is not None and stored_leaf != leaf:
            problem, detail = "entry", "was modified (its leaf hash does not match)"
        elif type(claimed) is not int or claimed > pos:
            problem, detail = "seq", f"is missing or out of place (found seq {claimed} there)"
        elif claimed < pos:
            problem, detail = "seq", f"holds seq {claimed} again (out of order)"
        elif obj["prev"] != self._prev_hex:
            problem, detail = "link", "does not chain to the entry before it"
        else:
            problem, detail = "time", "has a malformed timestamp or one earlier than the entry before"
        self._anomaly(_Anomaly(pos, record, obj, leaf, problem, detail))

    def _anomaly(self, a: _Anomaly) -> None:
        if (
            a.problem in ("seq", "link")
            and a.pos > 0
            and not (a.problem == "seq" and a.obj and a.obj["seq"] > a.pos)
        ):
            self._pending = a  # needs one entry of look-ahead
        else:
            self._bad = (a.pos, f"entry {a.pos} {a.detail}")

    def _resolve(self, nxt: EntryRecord | None) -> None:
        a = self._pending
        assert a is not None and a.obj is not None
        self._pending = None
        next_links_here = False
        if nxt is not None:
            try:
                nobj = _loads(nxt[2])
                next_links_here = type(nobj) is dict and nobj.get("prev") == a.leaf.hex()
            except (TypeError, orjson.JSONDecodeError):
                next_links_here = False
        p = a.pos
        if a.problem == "seq":
            if (
                a.obj["seq"] == p - 1
                and self._prev_obj is not None
                and a.obj["prev"] == self._prev_obj["prev"]
            ):
                self._bad = (
                    p - 1,
                    f"entry {p - 1} was inserted (entry {p} repeats its seq and chains past it)",
                )
            else:
                self._bad = (p, f"entry {p} {a.detail}")
        elif nxt is None or next_links_here:
            self._bad = (p - 1, f"entry {p - 1} was altered (entry {p} no longer chains to it)")
        else:
            self._bad = (
                p,
                f"entry {p} was altered (it no longer chains to entry {p - 1}, nor entry {p + 1} to it)",
            )

    def finish(self, heads: Iterable[TreeHead], keys: dict[str, Ed25519PublicKey]) -> VerifyReport:
        """Check the tree heads and return the report."""
        if self._pending is not None:
            self._resolve(None)
        n = self._range.size
        ordered = sorted(heads, key=lambda h: h.tree_size)
        problems: list[tuple[int | None, str, int | None]] = []
        if self._bad is not None:
            problems.append((self._bad[0], self._bad[1], None))
        checked = 0
        prev_size = 0
        for head in ordered:
            sig_problem = check_signature(head, keys)
            checked += 1
            if sig_problem is not None:
                problems.append((None, sig_problem, head.tree_size))
                break
            if head.tree_size > n:
                if self._bad is None:
                    problems.append(
                        (
                            n,
                            f"tree head {head.tree_size} covers entries {n}..{head.tree_size - 1}, "
                            "which are missing (deleted)",
                            head.tree_size,
                        )
                    )
                break
            if self._roots.get(head.tree_size) != head.root_hash:
                first = head.tree_size - 1
                problems.append(
                    (
                        first,
                        f"tree head {head.tree_size} does not match the entries: entries "
                        f"{prev_size}..{first} were rewritten together with their hash chain "
                        f"(a single altered entry is entry {first})",
                        head.tree_size,
                    )
                )
                break
            prev_size = head.tree_size
        if self._node_problem is not None:
            problems.append((None, self._node_problem, None))
        if not problems:
            root = self._range.root()
            return VerifyReport(True, n, checked, root)
        with_seq = [p for p in problems if p[0] is not None]
        first_bad, reason, bad_head = min(with_seq, key=lambda p: p[0] or 0) if with_seq else problems[0]
        bad_head = bad_head or next((p[2] for p in problems if p[2] is not None), None)
        return VerifyReport(False, n, checked, None, first_bad, reason, bad_head)


def verify_records(
    records: Iterable[Sequence[EntryRecord]],
    heads: Iterable[TreeHead],
    keys: dict[str, Ed25519PublicKey],
    stored_nodes: Mapping[tuple[int, int], bytes] | None = None,
) -> VerifyReport:
    """Verify a whole log given as batches of records; see :class:`Verifier`."""
    heads = list(heads)
    verifier = Verifier((h.tree_size for h in heads), stored_nodes)
    for batch in records:
        verifier.feed(batch)
        if verifier.done:
            break
    return verifier.finish(heads, keys)


def record_of(data: bytes, stored_leaf: bytes | None = None) -> EntryRecord:
    """An :data:`EntryRecord` whose columns are read from the entry bytes (exports, tests)."""
    try:
        obj = _loads(data)
    except orjson.JSONDecodeError:
        obj = None
    if type(obj) is not dict:
        return (-1, "", data, stored_leaf)
    seq = obj.get("seq")
    return (
        seq if type(seq) is int else -1,
        index_key(obj.get("time"), obj.get("tag"), obj.get("actor")),
        data,
        stored_leaf,
    )
