"""Helpers the stream guard tests share: cut a text into chunks, stream it through a guard, and the
unary scan's redaction to compare with."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from bastion.detectors.interface import Direction
from bastion.services.guard import GuardService, GuardTarget
from bastion.services.stream_guard import StreamGuard

TARGET = GuardTarget("chat", "m")


def split(text: str, cuts: Sequence[int]) -> list[str]:
    """``text`` cut at the (distinct, sorted) positions ``cuts``: the pieces, none empty."""
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(text)}), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def feed_all(g: StreamGuard, pieces: Sequence[str], channel: str = "0") -> tuple[str, bool]:
    """Feed ``pieces``, then finish: everything released (in order) and whether it was blocked."""
    out = ""
    for p in pieces:
        step = g.feed(channel, p)
        if step.blocked:
            return out, True
        out += step.text
    rest = g.finish()
    if g.blocked:
        return out, True
    return out + "".join(s.text for s in rest.values()), False


def unary_redaction(svc: GuardService, text: str, target: GuardTarget = TARGET) -> str:
    """What the unary output scan makes of ``text``."""
    r = svc.scan([text], Direction.OUTPUT, target)
    return r.redacted[0] if r.redacted is not None else text
