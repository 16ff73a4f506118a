"""Writing the whole ledger as a JSON Lines export (see docs/ledger.md): a header with the trusted public
keys, every signed tree head, a consistency proof between each consecutive pair, then every entry.

:meth:`bastion.services.audit.AuditLog.export` records the export and signs a tree head at the log's end
before calling :func:`write_export`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine

from bastion.errors import InputError
from bastion.ledger.heads import ConsistencyProof, TreeHead
from bastion.ledger.merkle import TreeReader
from bastion.services.ledger_keys import public_key_pem
from bastion.store import ledger_repo as repo

__all__ = ["EXPORT_FORMAT", "EXPORT_VERSION", "ExportSummary", "write_export"]

EXPORT_FORMAT = "bastion-ledger-export"
EXPORT_VERSION = 1


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What :meth:`AuditLog.export` wrote."""

    entries: int
    tree_heads: int
    consistency_proofs: int
    tree_head: TreeHead | None


def write_export(
    engine: Engine, keys: Mapping[str, Ed25519PublicKey], target: str | Path | IO[str]
) -> ExportSummary:
    """Write the ledger on ``engine`` to ``target``: a path (written to ``NAME.partial``, then renamed
    into place) or an open text stream.
    """
    if isinstance(target, str | Path):
        path = Path(target)
        tmp = path.with_name(path.name + ".partial")
        try:
            with tmp.open("w", encoding="utf-8", newline="\n") as f:
                summary = _write_lines(engine, keys, f)
            tmp.replace(path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise InputError(f"cannot write the export to {str(path)!r}: {e.strerror}") from e
        return summary
    return _write_lines(engine, keys, target)


def _write_lines(engine: Engine, keys: Mapping[str, Ed25519PublicKey], out: IO[str]) -> ExportSummary:
    def line(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")

    with repo.LedgerReader(engine) as reader:
        heads = reader.tree_heads()
        size = reader.size()
        line(
            {
                "type": "header",
                "format": EXPORT_FORMAT,
                "version": EXPORT_VERSION,
                "tree_size": size,
                "public_keys": {kid: public_key_pem(k) for kid, k in keys.items()},
            }
        )
        for head in heads:
            line({"type": "tree_head", **head.to_json()})
        proofs = 0
        for old, new in itertools.pairwise(heads):
            path = TreeReader(reader, new.tree_size).consistency_path(old.tree_size)
            proof = ConsistencyProof(old.tree_size, new.tree_size, tuple(path))
            line({"type": "consistency_proof", **proof.to_json()})
            proofs += 1
        entries = 0
        with contextlib.closing(reader.scan()) as scan:
            for batch in scan:
                for seq, _index, data, leaf in batch:
                    text = data.decode("utf-8", "replace")  # a non-UTF-8 (tampered) entry will not verify
                    line({"type": "entry", "seq": seq, "leaf_hash": (leaf or b"").hex(), "entry": text})
                    entries += 1
    return ExportSummary(entries, len(heads), proofs, heads[-1] if heads else None)
