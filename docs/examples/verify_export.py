#!/usr/bin/env python3
"""Verify a Bastion ledger export without Bastion: Python 3.11+ standard library and `cryptography`.

    python verify_export.py EXPORT.jsonl --public-key ledger-public.pem

Exit status: 0 intact, 1 not intact (the first bad entry or tree head is named), 2 unreadable input.
Without --public-key the keys inside the export are trusted, which proves only internal consistency:
whoever can rewrite the file can also re-sign it. Get the key out of band (`bastion ledger public-key`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

ENTRY_KEYS = {"actor", "attributes", "outcome", "prev", "seq", "tag", "target", "time", "v"}


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def node(left: bytes, right: bytes) -> bytes:
    return sha(b"\x01" + left + right)


def load_key(pem: str) -> tuple[str, Ed25519PublicKey]:
    key = load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return hashlib.sha256(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest(), key


def root_of(stack: list[tuple[int, bytes]]) -> bytes:
    """RFC 9162 root from the right edge (complete subtrees, largest first)."""
    if not stack:
        return sha(b"")
    r = stack[-1][1]
    for _, h in reversed(stack[:-1]):
        r = node(h, r)
    return r


def verify_consistency(m: int, n: int, path: list[bytes], old: bytes, new: bytes) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if m == n:
        return not path and old == new
    if m == 0 or not path or m > n:
        return m == 0 and not path
    if m & (m - 1) == 0:
        path = [old, *path]
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old and sr == new and sn == 0


def check_entries(
    entries: list[dict[str, Any]], wanted: set[int]
) -> tuple[int | None, str, dict[int, bytes]]:
    """(first bad position or None, reason, {size: root}) for the entry lines, in order."""
    roots: dict[int, bytes] = {0: sha(b"")} if 0 in wanted else {}
    stack: list[tuple[int, bytes]] = []
    leaves: list[bytes] = []
    objs: list[dict[str, Any]] = []
    last_time = ""
    for p, line in enumerate(entries):
        data = str(line.get("entry", "")).encode("utf-8", "surrogatepass")
        leaf = sha(b"\x00" + data)
        try:
            obj = json.loads(data)
        except ValueError:
            return p, f"entry {p} is not JSON", roots
        if not isinstance(obj, dict) or set(obj) != ENTRY_KEYS or obj["v"] != 1:
            return p, f"entry {p} is not a version-1 ledger entry", roots
        if line.get("leaf_hash") and line["leaf_hash"] != leaf.hex():
            return p, f"entry {p} was modified (its leaf hash does not match)", roots
        if line.get("seq") != obj["seq"]:
            return p, f"entry {p}: the line's seq does not match the entry", roots
        prev = leaves[-1].hex() if leaves else "0" * 64
        nxt = entries[p + 1] if p + 1 < len(entries) else None
        next_links = nxt is not None and f'"prev":"{leaf.hex()}"' in str(nxt.get("entry", ""))
        if obj["seq"] != p:
            if obj["seq"] == p - 1 and objs and obj["prev"] == objs[-1]["prev"]:
                return p - 1, f"entry {p - 1} was inserted (entry {p} repeats its seq)", roots
            return p, f"entry {p} is missing or out of place (found seq {obj['seq']})", roots
        if obj["prev"] != prev:
            if p > 0 and (nxt is None or next_links):
                return p - 1, f"entry {p - 1} was altered (entry {p} no longer chains to it)", roots
            return p, f"entry {p} was altered (it no longer chains to entry {p - 1})", roots
        if obj["time"] < last_time:
            return p, f"entry {p} has a timestamp earlier than the entry before", roots
        last_time = obj["time"]
        h, level = leaf, 0
        while stack and stack[-1][0] == level:
            h, level = node(stack.pop()[1], h), level + 1
        stack.append((level, h))
        leaves.append(leaf)
        objs.append(obj)
        if p + 1 in wanted:
            roots[p + 1] = root_of(stack)
    return None, "", roots


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("export", help="the JSON Lines file written by `bastion ledger export`")
    ap.add_argument("--public-key", help="PEM file of the ledger's Ed25519 public key (pin it)")
    args = ap.parse_args(argv)
    try:
        with open(args.export, encoding="utf-8") as f:
            lines = [json.loads(x) for x in f if x.strip()]
        header = lines[0]
        if (
            header.get("type") != "header"
            or header.get("format") != "bastion-ledger-export"
            or header.get("version") != 1
        ):
            raise ValueError("not a version-1 bastion ledger export")
        if args.public_key:
            with open(args.public_key, encoding="ascii") as f:
                keys = dict([load_key(f.read())])
        else:
            print("warning: trusting the public keys inside the export (pass --public-key)", file=sys.stderr)
            keys = dict(load_key(pem) for pem in header["public_keys"].values())
    except (OSError, ValueError, KeyError, IndexError) as e:
        print(f"error: cannot read the export: {e}", file=sys.stderr)
        return 2
    heads = sorted((x for x in lines if x.get("type") == "tree_head"), key=lambda h: h["tree_size"])
    entries = [x for x in lines if x.get("type") == "entry"]
    problems: list[tuple[int, str]] = []  # (position, reason); -1: no entry to blame
    for h in heads:
        msg = f"bastion.ledger.tree-head.v1\n{h['tree_size']}\n{h['root_hash']}\n{h['timestamp']}\n{h['key_id']}\n"
        key = keys.get(h["key_id"])
        try:
            if key is None:
                raise InvalidSignature
            key.verify(bytes.fromhex(h["signature"]), msg.encode())
        except (InvalidSignature, ValueError):
            problems.append((-1, f"tree head {h['tree_size']} is not signed by a trusted key"))
    bad, reason, roots = check_entries(entries, {h["tree_size"] for h in heads})
    if bad is not None:
        problems.append((bad, reason))
    n = len(entries) if bad is None else bad
    prev_size = 0
    for h in heads:
        size = h["tree_size"]
        if size > len(entries) and bad is None:
            problems.append((len(entries), f"tree head {size} covers entries missing from the export"))
        elif size <= n and roots.get(size, b"").hex() != h["root_hash"]:
            problems.append((size - 1, f"tree head {size} does not match entries {prev_size}..{size - 1}"))
        prev_size = size
    by_size = {h["tree_size"]: bytes.fromhex(h["root_hash"]) for h in heads}
    for x in lines:
        if x.get("type") == "consistency_proof":
            m, k = x["old_size"], x["new_size"]
            path = [bytes.fromhex(p) for p in x["path"]]
            if (
                m not in by_size
                or k not in by_size
                or not verify_consistency(m, k, path, by_size[m], by_size[k])
            ):
                problems.append((-1, f"consistency proof {m} -> {k} does not verify"))
    if problems:
        blamed = [p for p in problems if p[0] >= 0]
        pos, why = min(blamed) if blamed else problems[0]
        print(f"NOT INTACT: {why}" + (f" (first bad entry: {pos})" if pos >= 0 else ""))
        return 1
    size = heads[-1]["tree_size"] if heads else 0
    print(
        f"OK: {len(entries)} entries, {len(heads)} signed tree heads; root at {size}: {heads[-1]['root_hash'] if heads else '-'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
