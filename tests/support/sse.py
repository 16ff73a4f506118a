"""A provider's streamed answer without a socket: :func:`scripted_stream` gives the gateway's
``_HttpStream`` over reads that a test scripts, for the parser's and the relay's property tests."""

from __future__ import annotations

from bastion.gateway.upstream import CircuitBreaker, _HttpStream


class ScriptedReply:
    """The part of ``http1.Reply`` that ``_HttpStream`` uses: ``reads`` one after the other, then the end."""

    def __init__(self, reads: list[bytes]) -> None:
        self.reads = list(reads)

    async def read_some(self, deadline: float, max_bytes: int = 0) -> bytes:
        return self.reads.pop(0) if self.reads else b""

    def close(self) -> None:
        pass


class _Cfg:
    timeout_s = 30.0
    total_timeout_s = 600.0


class ScriptedUpstream:
    """The part of ``HttpUpstream`` that ``_HttpStream`` uses: its name, timeouts and breaker."""

    name = "u"
    cfg = _Cfg()

    def __init__(self) -> None:
        self.breaker = CircuitBreaker(3, 60.0)


def scripted_stream(reads: list[bytes], upstream: ScriptedUpstream | None = None) -> _HttpStream:
    """An open streamed answer whose bytes arrive as ``reads`` (must run inside an event loop)."""
    return _HttpStream(upstream or ScriptedUpstream(), ScriptedReply(reads))  # type: ignore[arg-type]
