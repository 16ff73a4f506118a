"""Hand-assembled pickles for the scanner tests (nothing here is ever unpickled)."""

from __future__ import annotations

import struct


def short_str(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def stack_global(module: str, name: str, *, memoize: bool = True) -> bytes:
    m = b"\x94" if memoize else b""
    return short_str(module) + m + short_str(name) + m + b"\x93"


def call(module: str, name: str, *args: str) -> bytes:
    """Protocol-4 pickle calling ``module.name(*args)``."""
    body = stack_global(module, name) + b"(" + b"".join(short_str(a) for a in args) + b"tR."
    return b"\x80\x04" + body


def global_call(module: str, name: str, arg: str, proto: int = 2) -> bytes:
    """A GLOBAL + REDUCE pickle (protocols 0-3)."""
    head = b"\x80" + bytes([proto]) if proto >= 2 else b""
    return (
        head
        + f"c{module}\n{name}\n".encode()
        + b"("
        + b"X"
        + struct.pack("<I", len(arg))
        + arg.encode()
        + b"tR."
    )
