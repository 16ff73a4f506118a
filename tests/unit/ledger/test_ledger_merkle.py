"""RFC 9162 hashing and proofs, against a direct transcription of the RFC's recursive definitions."""

from __future__ import annotations

import hashlib

import pytest

from bastion.errors import LedgerError, LedgerIntegrityError
from bastion.ledger.merkle import (
    EMPTY_ROOT,
    TILE_LEVEL,
    ClosedNode,
    CompactRange,
    MemorySource,
    TreeReader,
    leaf_hash,
    mth,
    node_hash,
    verify_consistency,
    verify_inclusion,
)


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def rfc_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + rfc_mth(d[:k]) + rfc_mth(d[k:])).digest()


def rfc_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*rfc_path(m, d[:k]), rfc_mth(d[k:])]
    return [*rfc_path(m - k, d[k:]), rfc_mth(d[:k])]


def rfc_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [rfc_mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*rfc_subproof(m, d[:k], b), rfc_mth(d[k:])]
    return [*rfc_subproof(m - k, d[k:], False), rfc_mth(d[:k])]


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def test_domain_separation() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    assert mth([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_known_vector() -> None:
    # RFC 6962 test vector: the tree of the single empty leaf.
    assert leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"


@pytest.mark.parametrize("n", [*range(1, 34), 255, 256, 257, 600])
def test_roots_and_paths_match_the_rfc(n: int) -> None:
    d = leaves(n)
    root = rfc_mth(d)
    assert mth(d) == root
    cr = CompactRange()
    cr.extend(d)
    assert cr.root() == root
    reader = TreeReader(MemorySource(d), n)
    assert reader.root() == root
    for m in sorted({0, n // 3, n // 2, n - 1}):
        path = reader.inclusion_path(m)
        assert path == rfc_path(m, d)
        assert verify_inclusion(d[m], m, n, path, root)
    for old in sorted({1, max(1, n // 2), max(1, n - 1), n}):
        proof = reader.consistency_path(old)
        assert proof == (rfc_subproof(old, d, True) if old < n else [])
        assert verify_consistency(old, n, proof, rfc_mth(d[:old]), root)


def test_bad_proofs_are_refused() -> None:
    d = leaves(13)
    reader = TreeReader(MemorySource(d), 13)
    root = reader.root()
    path = reader.inclusion_path(5)
    assert not verify_inclusion(d[5], 6, 13, path, root)
    assert not verify_inclusion(d[5], 5, 7, path, root)
    assert not verify_inclusion(d[5], 5, 13, path[:-1], root)
    assert not verify_inclusion(d[5], 5, 13, [*path, path[0]], root)
    assert not verify_inclusion(d[5], 13, 13, path, root)
    assert not verify_inclusion(d[5], 5, 13, [p[:-1] for p in path], root)
    proof = reader.consistency_path(7)
    old = rfc_mth(d[:7])
    assert verify_consistency(7, 13, proof, old, root)
    assert not verify_consistency(7, 13, proof, rfc_mth(d[:6]), root)
    assert not verify_consistency(6, 13, proof, old, root)
    assert not verify_consistency(7, 13, [], old, root)
    assert not verify_consistency(7, 13, proof[:-1], old, root)
    assert not verify_consistency(13, 7, proof, root, old)
    assert verify_consistency(0, 13, [], EMPTY_ROOT, root)
    assert not verify_consistency(13, 13, [root], root, root)


def test_compact_range_reports_closed_subtrees_and_loads() -> None:
    d = leaves(1 << (TILE_LEVEL + 1))
    cr = CompactRange()
    closed: list[ClosedNode] = []
    for h in d:
        cr.append(h, closed, TILE_LEVEL)
    assert [(c.level, c.index) for c in closed] == [(TILE_LEVEL, 0), (TILE_LEVEL, 1), (TILE_LEVEL + 1, 0)]
    assert closed[-1].hash == rfc_mth(d)
    reader = TreeReader(MemorySource(d[:300]), 300)
    loaded = CompactRange.load(300, reader.node)
    assert loaded.root() == rfc_mth(d[:300])
    loaded.append(d[300])
    assert loaded.root() == rfc_mth(d[:301])


class _StoredSource(MemorySource):
    def __init__(self, d: list[bytes], nodes: dict[tuple[int, int], bytes]) -> None:
        super().__init__(d)
        self.nodes = nodes
        self.leaf_reads = 0

    def leaf_hashes(self, start: int, stop: int) -> list[bytes]:
        self.leaf_reads += 1
        return list(super().leaf_hashes(start, stop))

    def stored_node(self, level: int, index: int) -> bytes | None:
        return self.nodes.get((level, index))


def test_reader_uses_stored_nodes_and_one_tile_read() -> None:
    n = 5 * (1 << TILE_LEVEL) + 17
    d = leaves(n)
    cr = CompactRange()
    closed: list[ClosedNode] = []
    for h in d:
        cr.append(h, closed, TILE_LEVEL)
    source = _StoredSource(d, {(c.level, c.index): c.hash for c in closed})
    reader = TreeReader(source, n)
    path = reader.inclusion_path(3)
    assert verify_inclusion(d[3], 3, n, path, rfc_mth(d))
    assert source.leaf_reads == 2  # the leaf's tile and the incomplete last tile


def test_reader_detects_missing_leaves_and_bad_requests() -> None:
    d = leaves(10)
    reader = TreeReader(MemorySource(d[:5]), 10)
    with pytest.raises(LedgerIntegrityError):
        reader.root()
    with pytest.raises(LedgerError):
        TreeReader(MemorySource(d), 10).inclusion_path(10)
    with pytest.raises(LedgerError):
        TreeReader(MemorySource(d), 10).consistency_path(11)
    with pytest.raises(LedgerError):
        CompactRange(3, [d[0]])
