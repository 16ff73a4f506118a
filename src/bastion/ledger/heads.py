"""Signed tree heads (Ed25519) and the proofs handed to outside verifiers.

The signed message is plain text, five lines, each ending in ``\\n``::

    bastion.ledger.tree-head.v1
    <tree size, decimal>
    <root hash, 64 lower-case hex digits>
    <timestamp, RFC 3339 UTC with microseconds, e.g. 2026-11-26T01:55:32.123456Z>
    <key id, 64 lower-case hex digits>

The key id is ``SHA-256`` of the raw 32-byte Ed25519 public key, in hex. The signature is the raw
64-byte Ed25519 signature of those bytes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bastion.errors import LedgerError
from bastion.ledger.encoding import format_time
from bastion.ledger.merkle import HASH_SIZE, verify_consistency, verify_inclusion

TREE_HEAD_CONTEXT = "bastion.ledger.tree-head.v1"
_TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """``SHA-256`` of the raw public key, hex: how tree heads name the key that signed them."""
    return hashlib.sha256(raw_public_key(key)).hexdigest()


def tree_head_message(tree_size: int, root_hash: bytes, timestamp: str, signer: str) -> bytes:
    """The exact bytes an Ed25519 tree-head signature covers (see the module docstring)."""
    if tree_size < 0 or len(root_hash) != HASH_SIZE or not _TIME_RE.fullmatch(timestamp):
        raise LedgerError("malformed tree head fields")
    if not _HEX64.fullmatch(signer):
        raise LedgerError("malformed tree head key id")
    return f"{TREE_HEAD_CONTEXT}\n{tree_size}\n{root_hash.hex()}\n{timestamp}\n{signer}\n".encode("ascii")


@dataclass(frozen=True, slots=True)
class TreeHead:
    """A signed statement: the log had ``tree_size`` entries with root ``root_hash`` at ``timestamp``."""

    tree_size: int
    root_hash: bytes
    timestamp: str
    key_id: str
    signature: bytes

    def message(self) -> bytes:
        return tree_head_message(self.tree_size, self.root_hash, self.timestamp, self.key_id)

    def to_json(self) -> dict[str, object]:
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "timestamp": self.timestamp,
            "key_id": self.key_id,
            "signature": self.signature.hex(),
        }


def sign_tree_head(key: Ed25519PrivateKey, tree_size: int, root_hash: bytes, when: datetime) -> TreeHead:
    """Sign ``(tree_size, root_hash, when)`` with ``key``."""
    timestamp = format_time(when)
    signer = key_id(key.public_key())
    signature = key.sign(tree_head_message(tree_size, root_hash, timestamp, signer))
    return TreeHead(tree_size, root_hash, timestamp, signer, signature)


def check_signature(head: TreeHead, keys: dict[str, Ed25519PublicKey]) -> str | None:
    """None if ``head`` is signed by one of ``keys`` (by key id), else the reason it is not."""
    key = keys.get(head.key_id)
    if key is None:
        return f"tree head {head.tree_size} is signed by an unknown key {head.key_id[:16]}…"
    try:
        key.verify(head.signature, head.message())
    except (InvalidSignature, LedgerError):
        return f"tree head {head.tree_size} has an invalid signature"
    return None


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Entry ``seq`` (with leaf hash ``leaf_hash``) is in the tree of ``tree_size`` entries."""

    seq: int
    tree_size: int
    leaf_hash: bytes
    path: tuple[bytes, ...]

    def verify(self, root_hash: bytes) -> bool:
        return verify_inclusion(self.leaf_hash, self.seq, self.tree_size, self.path, root_hash)

    def to_json(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "tree_size": self.tree_size,
            "leaf_hash": self.leaf_hash.hex(),
            "path": [p.hex() for p in self.path],
        }


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """The tree of ``old_size`` entries is a prefix of the tree of ``new_size`` entries."""

    old_size: int
    new_size: int
    path: tuple[bytes, ...]

    def verify(self, old_root: bytes, new_root: bytes) -> bool:
        return verify_consistency(self.old_size, self.new_size, self.path, old_root, new_root)

    def to_json(self) -> dict[str, object]:
        return {"old_size": self.old_size, "new_size": self.new_size, "path": [p.hex() for p in self.path]}
