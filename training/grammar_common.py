"""Helpers shared by the training-data grammars."""

from __future__ import annotations


def cap(s: str) -> str:
    """``s`` with its first character upper-cased (the rest unchanged)."""
    return s[:1].upper() + s[1:]
