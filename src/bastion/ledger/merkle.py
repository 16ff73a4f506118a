"""RFC 9162 Merkle tree hashing, proofs and their verification (pure).

* leaf hash ``SHA-256(0x00 || entry)``, node hash ``SHA-256(0x01 || left || right)``;
* ``MTH`` of any size (the empty tree hashes to ``SHA-256("")``);
* inclusion proofs (RFC 9162 §2.1.3) and consistency proofs (§2.1.4): generation against a
  :class:`NodeSource` (stored complete subtrees plus leaf hashes, so that a proof in a large log
  costs a handful of reads) and verification functions that need nothing but hashes;
* :class:`CompactRange`: the right edge of a growing tree (one hash per set bit of the size), which
  gives the root after every append and the complete subtrees as they close.

Modelled on sigstore-python's ``sigstore/_internal/merkle.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bastion.errors import LedgerError, LedgerIntegrityError

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()
#: Complete subtrees of this level and above are stored; below it they are recomputed from at most
#: 2**TILE_LEVEL leaf hashes (one indexed range read).
TILE_LEVEL = 8

_sha256 = hashlib.sha256


def leaf_hash(entry: bytes) -> bytes:
    """``SHA-256(0x00 || entry)``."""
    return _sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return _sha256(NODE_PREFIX + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly less than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def mth(leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of a list of *leaf hashes* (RFC 9162 §2.1.1)."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    level = list(leaves)
    # Bottom-up: pair up complete subtrees; an odd last node is carried up unchanged, which gives
    # exactly the RFC's left-balanced tree.
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


class NodeSource(Protocol):
    """Where proof generation reads hashes from (a store, or memory)."""

    def leaf_hashes(self, start: int, stop: int) -> Sequence[bytes]:
        """Leaf hashes ``start .. stop-1``."""
        ...

    def stored_node(self, level: int, index: int) -> bytes | None:
        """The stored hash of complete subtree ``(level, index)``, or None if it is not stored."""
        ...


class MemorySource:
    """A :class:`NodeSource` over a list of leaf hashes (tests, exports, small logs)."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self._leaves = leaves

    def leaf_hashes(self, start: int, stop: int) -> Sequence[bytes]:
        return self._leaves[start:stop]

    def stored_node(self, level: int, index: int) -> bytes | None:
        return None


class TreeReader:
    """Hashes of any subtree of a log, read from a :class:`NodeSource` with per-call caching.

    A complete subtree of level >= :data:`TILE_LEVEL` is read if stored, else built from its
    children; below that level it is computed from the leaves of its enclosing tile, fetched once.
    """

    def __init__(self, source: NodeSource, size: int) -> None:
        self._source = source
        self.size = size
        self._tiles: dict[int, list[bytes]] = {}
        self._nodes: dict[tuple[int, int], bytes] = {}

    def _tile_leaves(self, tile: int) -> list[bytes]:
        leaves = self._tiles.get(tile)
        if leaves is None:
            start = tile << TILE_LEVEL
            stop = min(start + (1 << TILE_LEVEL), self.size)
            leaves = list(self._source.leaf_hashes(start, stop))
            if len(leaves) != stop - start:
                raise LedgerIntegrityError(f"leaf hashes {start}..{stop - 1} are missing from the store")
            self._tiles[tile] = leaves
        return leaves

    def node(self, level: int, index: int) -> bytes:
        """The hash of the complete subtree covering leaves ``[index << level, (index + 1) << level)``."""
        if (index + 1) << level > self.size:
            raise LedgerError(f"subtree ({level}, {index}) is not complete in a tree of size {self.size}")
        key = (level, index)
        found = self._nodes.get(key)
        if found is not None:
            return found
        if level >= TILE_LEVEL:
            found = self._source.stored_node(level, index)
            if found is None:
                found = node_hash(self.node(level - 1, 2 * index), self.node(level - 1, 2 * index + 1))
        else:
            start = index << level
            tile = start >> TILE_LEVEL
            offset = start - (tile << TILE_LEVEL)
            found = mth(self._tile_leaves(tile)[offset : offset + (1 << level)])
        self._nodes[key] = found
        return found

    def range_hash(self, start: int, stop: int) -> bytes:
        """MTH of leaves ``[start, stop)`` where ``start`` is aligned as in RFC 9162's recursion."""
        n = stop - start
        if n <= 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0:
            level = n.bit_length() - 1
            return self.node(level, start >> level)
        k = _largest_power_of_two_below(n)
        return node_hash(self.range_hash(start, start + k), self.range_hash(start + k, stop))

    def root(self) -> bytes:
        """The root hash of the tree of :attr:`size` leaves."""
        return self.range_hash(0, self.size)

    def inclusion_path(self, index: int) -> list[bytes]:
        """RFC 9162 ``PATH(index, D[size])``."""
        if not 0 <= index < self.size:
            raise LedgerError(f"entry {index} is not in a tree of size {self.size}")
        path: list[bytes] = []
        start, stop, m = 0, self.size, index
        while stop - start > 1:
            k = _largest_power_of_two_below(stop - start)
            if m < k:
                path.append(self.range_hash(start + k, stop))
                stop = start + k
            else:
                path.append(self.range_hash(start, start + k))
                start, m = start + k, m - k
        path.reverse()
        return path

    def consistency_path(self, old_size: int) -> list[bytes]:
        """RFC 9162 ``PROOF(old_size, D[size])``."""
        if not 0 <= old_size <= self.size:
            raise LedgerError(f"old size {old_size} is not within 0..{self.size}")
        if old_size in (0, self.size):
            return []
        path: list[bytes] = []
        start, stop, m, complete = 0, self.size, old_size, True
        while m != stop - start:
            k = _largest_power_of_two_below(stop - start)
            if m <= k:
                path.append(self.range_hash(start + k, stop))
                stop = start + k
            else:
                path.append(self.range_hash(start, start + k))
                start, m, complete = start + k, m - k, False
        if not complete:
            path.append(self.range_hash(start, stop))
        path.reverse()
        return path


def verify_inclusion(leaf: bytes, index: int, tree_size: int, path: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does ``path`` prove leaf hash ``leaf`` at ``index`` in the tree with ``root``?"""
    if not 0 <= index < tree_size or any(len(p) != HASH_SIZE for p in path):
        return False
    fn, sn, r = index, tree_size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, path: Sequence[bytes], old_root: bytes, new_root: bytes
) -> bool:
    """RFC 9162 §2.1.4.2: does ``path`` prove the tree ``old_root`` is a prefix of ``new_root``?"""
    if not 0 <= old_size <= new_size or any(len(p) != HASH_SIZE for p in path):
        return False
    if old_size == new_size:
        return not path and old_root == new_root
    if old_size == 0:
        return not path and old_root == EMPTY_ROOT
    if not path:
        return False
    proof = list(path)
    if old_size & (old_size - 1) == 0:
        proof.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


@dataclass(frozen=True, slots=True)
class ClosedNode:
    """A complete subtree that closed when a leaf was appended."""

    level: int
    index: int
    hash: bytes


class CompactRange:
    """The right edge of a growing tree: one complete-subtree hash per set bit of :attr:`size`.

    ``stack[i]`` holds subtrees from the largest (leftmost) to the smallest; :meth:`root` folds them
    from the right, which is RFC 9162's MTH for any size.
    """

    __slots__ = ("_levels", "_stack", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        levels = [b for b in range(size.bit_length() - 1, -1, -1) if size >> b & 1]
        if len(levels) != len(hashes):
            raise LedgerError(f"a compact range of size {size} needs {len(levels)} hashes, got {len(hashes)}")
        self.size = size
        self._levels = levels
        self._stack = list(hashes)

    @classmethod
    def load(cls, size: int, node: Callable[[int, int], bytes]) -> CompactRange:
        """The compact range of a tree of ``size`` leaves, reading its subtrees with ``node(level, index)``."""
        hashes = []
        start = 0
        for b in range(size.bit_length() - 1, -1, -1):
            if size >> b & 1:
                hashes.append(node(b, start >> b))
                start += 1 << b
        return cls(size, hashes)

    def copy(self) -> CompactRange:
        return CompactRange(self.size, self._stack)

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._stack)

    def append(self, leaf: bytes, closed: list[ClosedNode] | None = None, min_level: int = 1) -> None:
        """Append a leaf hash; complete subtrees of level >= ``min_level`` that close go to ``closed``."""
        self._push(leaf, 0, closed, min_level)

    def _push(self, h: bytes, level: int, closed: list[ClosedNode] | None, min_level: int) -> None:
        """Append a complete subtree of ``level`` (the size must be a multiple of ``2**level``)."""
        stack, levels = self._stack, self._levels
        new_size = self.size + (1 << level)
        while levels and levels[-1] == level:
            h = node_hash(stack.pop(), h)
            levels.pop()
            level += 1
            if closed is not None and level >= min_level:
                closed.append(ClosedNode(level, (new_size >> level) - 1, h))
        stack.append(h)
        levels.append(level)
        self.size = new_size

    def extend(
        self, leaves: Sequence[bytes], closed: list[ClosedNode] | None = None, min_level: int = 1
    ) -> None:
        """Append many leaf hashes, hashing aligned blocks level by level (fast for long runs)."""
        i, n = 0, len(leaves)
        sha = _sha256
        while i < n:
            size, room = self.size, n - i
            level = room.bit_length() - 1
            if size:
                level = min(level, (size & -size).bit_length() - 1)
            if level == 0:
                self._push(leaves[i], 0, closed, min_level)
                i += 1
                continue
            nodes = leaves[i : i + (1 << level)]
            for lv in range(1, level + 1):
                nodes = [sha(b"\x01" + nodes[j] + nodes[j + 1]).digest() for j in range(0, len(nodes), 2)]
                if closed is not None and lv >= min_level:
                    base = size >> lv
                    closed.extend(ClosedNode(lv, base + k, h) for k, h in enumerate(nodes))
            self._push(nodes[0], level, closed, min_level)
            i += 1 << level

    def root(self) -> bytes:
        """MTH of the tree so far."""
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        r = stack[-1]
        for h in reversed(stack[:-1]):
            r = node_hash(h, r)
        return r
