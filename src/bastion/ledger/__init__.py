"""The tamper-evident audit ledger engine (pure: no store, no config).

* :mod:`~bastion.ledger.encoding` — canonical entry bytes (RFC 8785-style JSON) and their decoding;
* :mod:`~bastion.ledger.merkle` — RFC 9162 hashing, compact ranges, proof generation and verification;
* :mod:`~bastion.ledger.heads` — Ed25519 signed tree heads, inclusion and consistency proof values;
* :mod:`~bastion.ledger.verify` — the verifier that names the first bad entry.

Persistence lives in ``bastion.store.ledger_repo``; ``bastion.services.audit.AuditLog`` composes them.
"""

from __future__ import annotations

from bastion.ledger.encoding import (
    EncodedEvent,
    LedgerEntry,
    canonical_json,
    decode_entry,
    encode_entry,
    encode_event,
    format_time,
    parse_time,
)
from bastion.ledger.heads import (
    ConsistencyProof,
    InclusionProof,
    TreeHead,
    check_signature,
    key_id,
    sign_tree_head,
    tree_head_message,
)
from bastion.ledger.merkle import (
    CompactRange,
    MemorySource,
    NodeSource,
    TreeReader,
    leaf_hash,
    mth,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from bastion.ledger.verify import EntryRecord, Verifier, VerifyReport, index_key, record_of, verify_records

__all__ = [
    "CompactRange",
    "ConsistencyProof",
    "EncodedEvent",
    "EntryRecord",
    "InclusionProof",
    "LedgerEntry",
    "MemorySource",
    "NodeSource",
    "TreeHead",
    "TreeReader",
    "Verifier",
    "VerifyReport",
    "canonical_json",
    "check_signature",
    "decode_entry",
    "encode_entry",
    "encode_event",
    "format_time",
    "index_key",
    "key_id",
    "leaf_hash",
    "mth",
    "node_hash",
    "parse_time",
    "record_of",
    "sign_tree_head",
    "tree_head_message",
    "verify_consistency",
    "verify_inclusion",
    "verify_records",
]
