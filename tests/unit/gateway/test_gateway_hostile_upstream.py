"""A hostile or broken model provider: what the gateway does with its answer.

Each test asserts the SAFE behaviour and says in its docstring how it would fail if the defence went
away. (Ten of them were strict xfails when written: the bugs they found are fixed.)

Memory claims are measured by what the client buffered or decoded (a counting decoder, the bytes fed
to the HTTP parser, the bytes a stream read), never by the process's RSS.

Sections: (1) decompression bombs, (2) header floods, (3) framing attacks, (4) connections reused
after a failed or abandoned call, (5) the provider's error bodies, (6) hostile unary JSON, (7) hostile
server-sent events.
"""

from __future__ import annotations

import asyncio
import functools
import math
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, MutableMapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import pytest

from bastion.config import UpstreamSettings
from bastion.domain.events import EventTag
from bastion.domain.identity import Role
from bastion.errors import UpstreamError
from bastion.gateway import GatewayComponents, create_gateway, http1
from bastion.gateway import upstream as upstream_module
from bastion.gateway.http1 import MAX_HEADER_BYTES, ConnectionPool, Origin, Reply, TransportError
from bastion.gateway.provider_errors import retry_after_s, scrub_credentials
from bastion.gateway.upstream import MAX_ERROR_BODY, MAX_EVENT_BYTES, HttpUpstream, UpstreamStatusError

from .harness import (
    FakeAuthenticator,
    FakeAuthorizer,
    MemoryAudit,
    Ready,
    gateway_settings,
    post_scope,
    principal,
)

T = TypeVar("T")

KEY = "sk-hostile-provider-key-0123456789abcdef"
BODY = b'{"ok":true}'
SIZED = b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n" + BODY
PAUSE = http1._PAUSE_BYTES  # the most one read of a stream takes from the connection
SECRET = "aws AKIAQWERTYUIOPASDFGH secret"  # the default output guards redact the AWS key id
MiB = 1 << 20


def _run(coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
    """Run ``coro`` in a fresh loop, never longer than ``timeout``."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


# -- a raw upstream in the test's own loop ---------------------------------------------------------

Handler = Callable[["RawServer", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """A raw asyncio HTTP server whose ``handler`` writes whatever bytes a test needs.

    ``connections`` counts the connections the client opened, ``heads`` holds each request's head,
    ``served`` counts the requests answered by :func:`answering`.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.served = 0
        self.heads: list[str] = []
        self.port = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: list[asyncio.Task[Any]] = []

    async def __aenter__(self) -> RawServer:
        async def on_connect(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            self.connections += 1
            self._writers.append(w)
            task = asyncio.current_task()
            assert task is not None
            self._tasks.append(task)
            try:
                await self.handler(self, r, w)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            except asyncio.CancelledError:  # the test is over (asyncio's callback would log it)
                pass
            finally:
                w.close()

        self._server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for w in self._writers:
            w.close()
        await asyncio.sleep(0)  # the transports' close callbacks run

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def request(self, r: asyncio.StreamReader) -> bytes:
        head = (await r.readuntil(b"\r\n\r\n")).decode("latin-1")
        self.heads.append(head)
        length = 0
        for line in head.split("\r\n"):
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        return await r.readexactly(length) if length else b""

    def pool(self, *, read_timeout_s: float = 2.0) -> ConnectionPool:
        return ConnectionPool(
            Origin.parse(self.base), max_connections=4, connect_timeout_s=1.0, read_timeout_s=read_timeout_s
        )

    def upstream(self, **kw: Any) -> HttpUpstream:
        opts: dict[str, Any] = {
            "base_url": self.base,
            "api_key": KEY,
            "timeout_s": 1.0,
            "total_timeout_s": 3.0,
            "connect_timeout_s": 1.0,
            "breaker_failures": 1000,
        }
        return HttpUpstream("u", UpstreamSettings(**(opts | kw)))


def answering(*answers: bytes) -> Handler:
    """Keep-alive: the n-th request gets ``answers[n]`` (the last one again once they run out)."""

    async def handle(srv: RawServer, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            await srv.request(r)
            w.write(answers[min(srv.served, len(answers) - 1)])
            srv.served += 1
            await w.drain()

    return handle


def http(status: int, body: bytes, *headers: str) -> bytes:
    """An answer framed by Content-Length, with extra ``headers`` lines."""
    lines = "".join(h + "\r\n" for h in headers)
    return f"HTTP/1.1 {status} X\r\n{lines}content-length: {len(body)}\r\n\r\n".encode() + body


async def _post(pool: ConnectionPool, timeout: float = 3.0, max_bytes: int = MiB) -> tuple[Reply, bytes]:
    deadline = asyncio.get_running_loop().time() + timeout
    reply = await pool.post("/chat/completions", b"content-type: application/json\r\n", b"{}", deadline)
    return reply, await reply.read(deadline, max_bytes)


@functools.cache
def bomb(size: int, *, fill: bytes = b"\0", prefix: bytes = b"", wbits: int = 31) -> bytes:
    """``prefix`` then ``size`` bytes of ``fill``, compressed (gzip for wbits 31, zlib for 15)."""
    c = zlib.compressobj(6, zlib.DEFLATED, wbits)
    block = fill * MiB
    return c.compress(prefix) + b"".join(c.compress(block) for _ in range(size // MiB)) + c.flush()


class CountingDecoder:
    """Wraps the client's zlib decoder and counts what it decoded."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.decoded = 0

    @property
    def unconsumed_tail(self) -> bytes:
        tail: bytes = self.real.unconsumed_tail
        return tail

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        out: bytes = self.real.decompress(data, max_length)
        self.decoded += len(out)
        return out

    def flush(self) -> bytes:
        out: bytes = self.real.flush()
        self.decoded += len(out)
        return out


@pytest.fixture
def decoders(monkeypatch: pytest.MonkeyPatch) -> list[CountingDecoder]:
    """Every decoder the client makes from now on, counting what it decodes."""
    made: list[CountingDecoder] = []
    real = http1._decoder

    def spy(encoding: bytes) -> Any:
        d = real(encoding)
        if d is None:
            return None
        counting = CountingDecoder(d)
        made.append(counting)
        return counting

    monkeypatch.setattr(http1, "_decoder", spy)
    return made


@pytest.fixture
def fed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The bytes fed to the client's HTTP parser (one total for all connections, in ``[0]``)."""
    total = [0]
    real = http1._Connection.data_received

    def counting(self: http1._Connection, data: bytes) -> None:
        total[0] += len(data)
        real(self, data)

    monkeypatch.setattr(http1._Connection, "data_received", counting)
    return total


@pytest.fixture
def stream_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The decoded bytes that ``Reply.read_some`` handed out (all replies together, in ``[0]``)."""
    total = [0]
    real = Reply.read_some

    async def counting(self: Reply, deadline: float, max_bytes: int = PAUSE) -> bytes:
        data = await real(self, deadline, max_bytes)
        total[0] += len(data)
        return data

    monkeypatch.setattr(Reply, "read_some", counting)
    return total


# -- the whole gateway, called as ASGI ------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    audit: MemoryAudit

    def events(self) -> list[bytes]:
        """The payloads of the server-sent events of a streamed answer."""
        return [e[6:] for e in self.body.split(b"\n\n") if e.startswith(b"data: ")]


async def through_gateway(
    srv: RawServer, *, upstream_model: str | None = None, **request: Any
) -> tuple[Answer, list[BaseException]]:
    """One chat call through the gateway to ``srv`` (model ``m``) by an ordinary user (no logprobs);
    the answer and what the app raised."""
    ups = {
        "u": {
            "base_url": srv.base,
            "api_key": KEY,
            "timeout_s": 1.0,
            "total_timeout_s": 3.0,
            "connect_timeout_s": 1.0,
            "breaker_failures": 1000,
        }
    }
    route: dict[str, Any] = {"upstream": "u", "attributes": {"team": "shared"}}
    if upstream_model is not None:
        route["upstream_model"] = upstream_model
    limits = {"per_key": {"tokens_per_minute": 10**9, "concurrent": 8}}
    settings = gateway_settings(
        upstreams=ups, models={"m": route}, egress_allowlist=["127.0.0.1"], limits=limits
    )
    auth, audit = FakeAuthenticator(), MemoryAudit()
    auth.add("k", principal("p", Role.USER))
    comps = GatewayComponents(authenticator=auth, authorizer=FakeAuthorizer(), audit=audit, readiness=Ready())
    app = create_gateway(settings, comps)
    payload = {"model": "m", "messages": [{"role": "user", "content": "hello"}], **request}
    body = orjson.dumps(payload)
    sent: list[MutableMapping[str, Any]] = []
    received = False
    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await never.wait()  # the caller stays
        return {"type": "http.disconnect"}

    async def send(msg: MutableMapping[str, Any]) -> None:
        sent.append(msg)

    raised: list[BaseException] = []
    try:
        await asyncio.wait_for(app(post_scope("/v1/chat/completions"), receive, send), 8)
    except Exception as e:  # a crash that escaped the gateway: the test decides what it means
        raised.append(e)
    finally:
        await app.gateway.drain()
    start = next((m for m in sent if m["type"] == "http.response.start"), None)
    status = int(start["status"]) if start is not None else 0
    headers = dict(start.get("headers", [])) if start is not None else {}
    out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(status, headers, out, audit), raised


def chat_answer(content: Any = "fine", *, model: str = "m", usage: Any = None, **extra: Any) -> bytes:
    resp: dict[str, Any] = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        **extra,
    }
    if usage is not None:
        resp["usage"] = usage
    return orjson.dumps(resp)


def chunk(text: str, *, model: str = "m", usage: Any = None, choices: bool = True) -> bytes:
    obj: dict[str, Any] = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": model}
    obj["choices"] = [{"index": 0, "delta": {"content": text}, "finish_reason": None}] if choices else []
    if usage is not None:
        obj["usage"] = usage
    return orjson.dumps(obj)


def sse(*payloads: bytes) -> bytes:
    return b"".join(b"data: " + p + b"\n\n" for p in payloads)


SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"


def sse_answer(body: bytes) -> bytes:
    return SSE_HEAD + b"content-length: %d\r\n\r\n" % len(body) + body


# == (1) decompression bombs =====================================================================


@pytest.mark.parametrize(("encoding", "wbits"), [("gzip", 31), ("x-gzip", 31), ("deflate", 15)])
def test_a_compressed_bomb_in_a_unary_answer_stops_at_the_reply_limit(
    decoders: list[CountingDecoder], monkeypatch: pytest.MonkeyPatch, encoding: str, wbits: int
) -> None:
    """64 KiB on the wire, 64 MiB decoded: refused (502) once MAX_REPLY_BYTES is passed, having decoded
    no more than that. Fails if the decoder were run without its ``max_length`` bound (it would decode
    all 64 MiB in one call) or if the size check went away (a 200 with 64 MiB)."""
    limit = 4 * MiB
    monkeypatch.setattr(upstream_module, "MAX_REPLY_BYTES", limit)
    packed = bomb(64 * MiB, wbits=wbits)
    assert len(packed) < 100_000

    async def main() -> None:
        async with RawServer(answering(http(200, packed, f"content-encoding: {encoding}"))) as srv:
            up = srv.upstream()
            with pytest.raises(UpstreamError) as e:
                await up.send("/chat/completions", b"{}")
            assert e.value.status == 502
            await up.aclose()

    _run(main())
    [d] = decoders
    assert limit < d.decoded <= limit + PAUSE


def test_a_gzip_bomb_in_a_stream_stops_at_the_event_limit(decoders: list[CountingDecoder]) -> None:
    """A gzip'd event line of 64 MiB that never ends: the stream fails (502) having decoded at most
    MAX_EVENT_BYTES and one read more. Fails if ``read_some`` decoded without a bound, or if the
    stream buffered lines without the MAX_EVENT_BYTES check."""
    packed = bomb(64 * MiB, fill=b"a", prefix=b"data: ")
    head = SSE_HEAD + b"content-encoding: gzip\r\ncontent-length: %d\r\n\r\n" % len(packed)

    async def main() -> None:
        async with RawServer(answering(head + packed)) as srv:
            up = srv.upstream()
            stream = await up.open_stream("/chat/completions", b"{}")
            with pytest.raises(UpstreamError, match="oversized") as e:
                await stream.events().__anext__()
            assert e.value.status == 502
            await stream.aclose()
            await up.aclose()

    _run(main())
    [d] = decoders
    assert MAX_EVENT_BYTES < d.decoded <= MAX_EVENT_BYTES + 2 * PAUSE


def test_a_gzip_bomb_as_a_stream_error_body_reads_at_most_max_error_body(
    decoders: list[CountingDecoder],
) -> None:
    """A 500 to a stream request whose gzip'd error body decodes to 64 MiB: at most MAX_ERROR_BODY of
    it is decoded and kept. Fails if the error body were read without ``truncate``/the limit."""
    packed = bomb(64 * MiB)

    async def main() -> None:
        async with RawServer(answering(http(500, packed, "content-encoding: gzip"))) as srv:
            up = srv.upstream()
            with pytest.raises(UpstreamStatusError) as e:
                await up.open_stream("/chat/completions", b"{}")
            assert e.value.reply.status == 500 and len(e.value.reply.body) == MAX_ERROR_BODY
            await up.aclose()

    _run(main())
    [d] = decoders
    assert d.decoded <= MAX_ERROR_BODY + 1


def test_a_gzip_bomb_as_a_unary_error_body_is_bounded_like_a_stream_error(
    decoders: list[CountingDecoder],
) -> None:
    packed = bomb(64 * MiB)

    async def main() -> None:
        async with RawServer(answering(http(500, packed, "content-encoding: gzip"))) as srv:
            up = srv.upstream()
            try:
                status = (await up.send("/chat/completions", b"{}")).status
            except UpstreamError as e:
                status = e.status  # refusing the bomb outright (a 502) is as safe
            assert status in (500, 502)
            await up.aclose()

    _run(main())
    [d] = decoders
    assert d.decoded <= MAX_ERROR_BODY + PAUSE


# == (2) header floods ===========================================================================


def _flood(start: bytes, piece: bytes, total: int) -> Handler:
    """Answer with ``start``, then ``piece`` again and again (``total`` bytes), then silence."""

    async def handle(srv: RawServer, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.request(r)
        w.write(start)
        for _ in range(total // len(piece)):
            w.write(piece)
            await w.drain()
        await asyncio.sleep(30)

    return handle


@pytest.mark.parametrize("start", [b"HTTP/1.1 200 OK\r\nx-a: ", b"HTTP/1.1 200 OK\r\nx-"])
def test_an_endless_header_line_is_refused_at_the_header_limit(fed: list[int], start: bytes) -> None:
    async def main() -> None:
        async with RawServer(_flood(start, b"a" * 65536, 8 * MiB)) as srv:
            pool = srv.pool(read_timeout_s=0.5)
            with pytest.raises(TransportError):
                await _post(pool)
            await pool.aclose()

    _run(main())
    assert fed[0] <= MAX_HEADER_BYTES + PAUSE


def test_thousands_of_header_lines_are_refused_at_the_header_limit(fed: list[int]) -> None:
    """200 000 short header lines (2.6 MB) that never end: refused as too large after about
    MAX_HEADER_BYTES of them, promptly. Fails if the per-answer header count went away (the client
    would take all of them, then time out) or were reset per line."""
    lines = b"".join(b"x-h%05d: v\r\n" % i for i in range(5000))  # 5000 lines, repeated

    async def main() -> None:
        async with RawServer(_flood(b"HTTP/1.1 200 OK\r\n", lines, 40 * len(lines))) as srv:
            pool = srv.pool(read_timeout_s=2.0)
            t0 = asyncio.get_running_loop().time()
            with pytest.raises(TransportError, match="too large"):
                await _post(pool)
            assert asyncio.get_running_loop().time() - t0 < 1.0
            assert pool.open_connections == 0
            await pool.aclose()

    _run(main())
    assert fed[0] <= 2 * MAX_HEADER_BYTES + PAUSE


def test_endless_informational_answers_end_promptly() -> None:
    """103 Early Hints forever, each with a header near the limit: the call ends promptly, refused at
    the header limit (the 1xx answers before the real one count towards it) or at the latest at its
    deadline, not at the read timeout that the steady bytes keep postponing, and the connection is
    closed. Fails if 1xx answers renewed the deadline or were accumulated as the answer."""
    hint = b"HTTP/1.1 103 Early Hints\r\nlink: " + b"a" * (MAX_HEADER_BYTES - 100) + b"\r\n\r\n"

    async def handle(srv: RawServer, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.request(r)
        while True:
            w.write(hint)
            await w.drain()
            await asyncio.sleep(0.005)

    async def main() -> None:
        async with RawServer(handle) as srv:
            pool = srv.pool(read_timeout_s=5.0)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            with pytest.raises((TimeoutError, TransportError)):
                await _post(pool, timeout=0.4)
            assert loop.time() - t0 < 1.5
            assert pool.open_connections == 0
            await pool.aclose()

    _run(main())


# == (3) framing attacks =========================================================================


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 5\r\n\r\nabcde",
        b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\nabcde",
        b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999999\r\n\r\nabcde",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhi\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nffffffffffffffffffff\r\nhi\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n-2\r\nhi\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhiXX0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, identity\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    ],
    ids=[
        "cl-then-te",
        "te-then-cl",
        "two-content-lengths",
        "negative-cl",
        "cl-overflow",
        "chunk-size-not-hex",
        "chunk-size-overflow",
        "negative-chunk-size",
        "chunk-longer-than-its-size",
        "chunked-not-last",
    ],
)
def test_ambiguous_or_invalid_framing_is_refused(answer: bytes) -> None:
    """Framing a proxy and the client could read differently is an error, at once, and the connection
    is closed, never pooled. Fails if the parser were made lenient (llhttp's lenient flags) or a parse
    error were ignored (the call would wait for the read timeout: a TimeoutError). A response whose
    Transfer-Encoding does not end in ``chunked`` is read to the close; it is an error then."""
    to_close = b"chunked, identity" in answer

    async def handle(srv: RawServer, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.request(r)
        w.write(answer)
        await w.drain()
        await asyncio.sleep(0.2 if to_close else 30)

    async def main() -> None:
        async with RawServer(handle) as srv:
            pool = srv.pool(read_timeout_s=2.0)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            with pytest.raises(TransportError):
                await _post(pool)
            assert loop.time() - t0 < 1.0
            assert pool.open_connections == 0
            await pool.aclose()

    _run(main())


class _Sink(asyncio.Transport):
    """A transport for a connection driven by hand: writes vanish, closing reports the loss."""

    def __init__(self, conn: http1._Connection) -> None:
        super().__init__()
        self.conn = conn
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.conn.connection_lost(None)

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def _one_read(data: bytes) -> http1._Connection:
    """A connection that sent a request and got ``data`` in one read (as over a socket, determinate)."""
    loop = asyncio.new_event_loop()
    try:
        conn = http1._Connection(loop, read_timeout_s=5)
        conn.connection_made(_Sink(conn))
        conn.send(b"POST / HTTP/1.1\r\n\r\n", b"")
        conn.data_received(data)
        return conn
    finally:
        loop.close()


SMUGGLED = http(200, b'{"leak":"previous caller"}', "x-smuggled: 1")


@pytest.mark.parametrize(
    "first", [SIZED, b"HTTP/1.1 500 X\r\ncontent-length: 0\r\n\r\n"], ids=["200-then-200", "500-then-200"]
)
def test_a_second_answer_in_the_same_read_is_not_merged_into_the_first(first: bytes) -> None:
    conn = _one_read(first + SMUGGLED)
    expected_status = 200 if first is SIZED else 500
    expected_body = BODY if first is SIZED else b""
    assert conn.closed and not conn.reusable
    assert (conn.status, conn.take()) == (expected_status, expected_body)
    assert b"x-smuggled" not in conn.headers


def test_trailer_fields_do_not_override_the_answers_headers() -> None:
    answer = (
        b"HTTP/1.1 429 X\r\nretry-after: 1\r\ntransfer-encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\nretry-after: 86400\r\n\r\n"
    )

    async def main() -> None:
        async with RawServer(answering(answer)) as srv:
            up = srv.upstream()
            reply = await up.send("/chat/completions", b"{}")
            assert reply.status == 429
            assert reply.retry_after == "1"
            await up.aclose()

    _run(main())


def test_an_answer_longer_than_its_content_length_is_cut_and_its_connection_closed() -> None:
    """Content-Length 11 followed, in the same write, by more bytes: the caller gets the 11 bytes and
    the connection is closed, so the rest can reach no later caller. Fails if the parser error after
    the answer were ignored and the connection pooled (the next caller would read ``LEFTOVER``)."""

    async def main() -> None:
        async with RawServer(answering(SIZED + b"LEFTOVER-OF-CALLER-A", SIZED)) as srv:
            pool = srv.pool()
            _, first = await _post(pool)
            assert first == BODY
            await asyncio.sleep(0.05)
            _, second = await _post(pool)
            assert second == BODY
            assert srv.connections == 2  # the first connection was never reused
            await pool.aclose()

    _run(main())


@pytest.mark.parametrize(
    "late", [b"LEFTOVER-OF-CALLER-A", http(200, b'{"leak":"caller A"}')], ids=["junk", "a-whole-answer"]
)
def test_bytes_arriving_on_an_idle_connection_never_reach_the_next_caller(late: bytes) -> None:
    """The provider sends more bytes after a complete answer, while the connection is idle in the pool:
    the connection is closed and the next caller gets a fresh one and its own answer. Fails if such
    bytes were ignored instead of closing the connection (the next caller would reuse it: here it
    gets ``{"wrong":"connection"}``; with a provider that answers in order, the late bytes as its
    answer: a desync, one caller's answer served to another)."""

    async def handle(srv: RawServer, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.request(r)
        w.write(SIZED)
        await w.drain()
        await asyncio.sleep(0.05)
        w.write(late)  # nobody asked
        await w.drain()
        while True:  # were the connection reused: answer whatever comes with something else
            await srv.request(r)
            w.write(http(200, b'{"wrong":"connection"}'))
            await w.drain()

    async def main() -> None:
        async with RawServer(handle) as srv:
            pool = srv.pool()
            _, first = await _post(pool)
            await asyncio.sleep(0.2)
            _, second = await _post(pool)
            assert (first, second) == (BODY, BODY)
            assert srv.connections == 2
            await pool.aclose()

    _run(main())


# == (4) connections after a failed or abandoned call =============================================


def _answer_then_rest(first: bytes, rest: bytes, delay: float) -> Handler:
    """Connection 1: ``first``, and after ``delay`` ``rest`` (its continuation); later connections
    answer ``SIZED``. A reused connection would get ``rest`` as the answer to the next call."""

    async def handle(srv: RawServer, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        n = srv.connections
        while True:
            await srv.request(r)
            if n == 1:
                w.write(first)
                await w.drain()
                await asyncio.sleep(delay)
                w.write(rest)
                n = 0
            else:
                w.write(SIZED)
            await w.drain()

    return handle


def test_an_answer_refused_as_too_large_is_never_reused() -> None:
    """A body refused at its size limit mid-way: its connection is closed, and the next caller never
    reads the rest of it. Fails if ``Reply.read`` left the unfinished connection in the pool."""
    big = b"A" * 300_000
    first = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (2 * len(big)) + big

    async def main() -> None:
        async with RawServer(_answer_then_rest(first, big, 0.1)) as srv:
            pool = srv.pool()
            with pytest.raises(TransportError, match="larger than"):
                await _post(pool, max_bytes=1000)
            _, body = await _post(pool)
            assert body == BODY and srv.connections == 2
            await pool.aclose()

    _run(main())


def test_a_call_cancelled_mid_body_never_hands_its_rest_to_the_next_caller() -> None:
    """Fails if a cancelled read released its connection to the pool: the next call would read the
    rest of the first answer (``{"leak"...``) as its own."""
    first = b"HTTP/1.1 200 OK\r\ncontent-length: 30\r\n\r\n" + b'{"leak":'
    rest = b'"caller A\'s answer!!"}'

    async def main() -> None:
        async with RawServer(_answer_then_rest(first, rest, 0.3)) as srv:
            pool = srv.pool()
            task = asyncio.ensure_future(_post(pool))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            _, body = await _post(pool)
            assert body == BODY and srv.connections == 2
            await pool.aclose()

    _run(main())


def test_a_stream_left_at_done_before_its_end_is_not_reused() -> None:
    """The relay stops reading at ``[DONE]``; bytes still on their way (a chunk after it) must not
    become the next caller's answer. Fails if ``aclose`` pooled an unfinished connection."""
    head = SSE_HEAD + b"transfer-encoding: chunked\r\n\r\n"
    events = sse(chunk("hi"), b"[DONE]")
    first = head + b"%x\r\n%s\r\n" % (len(events), events)
    late = sse(chunk("caller A's secret"))
    rest = b"%x\r\n%s\r\n0\r\n\r\n" % (len(late), late)

    async def main() -> None:
        async with RawServer(_answer_then_rest(first, rest, 0.2)) as srv:
            up = srv.upstream()
            stream = await up.open_stream("/chat/completions", b"{}")
            got = [e async for e in _until_done(stream.events())]
            assert got[-1] == b"[DONE]"
            await stream.aclose()
            reply = await up.send("/chat/completions", b"{}")
            assert reply.body == BODY and srv.connections == 2
            await up.aclose()

    _run(main())


def test_a_finished_stream_with_bytes_after_done_is_pooled_clean() -> None:
    """An answer complete in the pool's eyes but holding unread events after ``[DONE]`` (arrived after
    the relay stopped reading): the connection may be reused, but its leftover never reaches the next
    caller. Fails if ``begin()`` did not drop the previous answer's buffered bytes."""
    before = sse(chunk("hi"), b"[DONE]")
    after = sse(chunk("caller A's secret"))
    head = SSE_HEAD + b"content-length: %d\r\n\r\n" % (len(before) + len(after))

    async def main() -> None:
        async with RawServer(_answer_then_rest(head + before, after, 0.05)) as srv:
            up = srv.upstream()
            stream = await up.open_stream("/chat/completions", b"{}")
            got = [e async for e in _until_done(stream.events())]
            assert got[-1] == b"[DONE]"
            await asyncio.sleep(0.2)  # the rest arrives while the stream is still open, unread
            await stream.aclose()
            reply = await up.send("/chat/completions", b"{}")
            assert reply.body == BODY
            assert srv.connections == 1  # it was reused: the leftover was dropped, not read
            await up.aclose()

    _run(main())


async def _until_done(events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for e in events:
        yield e
        if e == b"[DONE]":
            return


# == (5) the provider's error bodies ===========================================================


@pytest.mark.parametrize("status", [400, 429])
@pytest.mark.parametrize("stream", [False, True])
def test_a_relayed_provider_error_never_carries_the_provider_key(status: int, stream: bool) -> None:
    message = f"Invalid request; you sent Authorization: Bearer {KEY}"
    body = orjson.dumps({"error": {"message": message, "type": "invalid_request_error"}})

    async def main() -> Answer:
        async with RawServer(answering(http(status, body, "retry-after: 2"))) as srv:
            answer, raised = await through_gateway(srv, stream=stream)
            assert not raised
            return answer

    answer = _run(main())
    assert answer.status == status
    assert KEY not in answer.body.decode()
    [event] = answer.audit.events
    assert KEY not in str(event.attributes)


@pytest.mark.parametrize("status", [401, 403, 500, 503])
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("gzipped", [False, True])
def test_unrelayed_provider_errors_reach_neither_caller_nor_ledger_nor_log(
    status: int, stream: bool, gzipped: bool, capfd: pytest.CaptureFixture[str]
) -> None:
    """Fails if the provider's error text (with its key) were relayed for these statuses, recorded in
    the call's ledger event or logged, compressed or not."""
    body = orjson.dumps({"error": {"message": f"Incorrect API key provided: {KEY}"}})
    headers = ["content-type: application/json"]
    if gzipped:
        body = zlib.compress(body, wbits=31)  # gzip
        headers.append("content-encoding: gzip")

    async def main() -> Answer:
        async with RawServer(answering(http(status, body, *headers))) as srv:
            answer, raised = await through_gateway(srv, stream=stream)
            assert not raised
            return answer

    answer = _run(main())
    assert answer.status == 502
    assert KEY not in answer.body.decode() and "Incorrect API key" not in answer.body.decode()
    [event] = answer.audit.events
    assert event.tag is EventTag.GATEWAY_REQUEST_FAILED
    assert KEY not in str(event.attributes)
    logged = capfd.readouterr()
    assert "gateway_call_failed" in logged.out + logged.err  # the log was captured
    assert KEY not in logged.out + logged.err


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_an_absurd_retry_after_still_gives_the_caller_a_clean_429(value: str) -> None:
    body = orjson.dumps({"error": {"message": "slow down"}})

    async def main() -> tuple[Answer, list[BaseException]]:
        async with RawServer(answering(http(429, body, f"retry-after: {value}"))) as srv:
            return await through_gateway(srv)

    answer, raised = _run(main())
    assert not raised, raised
    assert answer.status == 429
    assert 1 <= int(answer.headers[b"retry-after"]) <= 86400


# == (6) hostile unary JSON ======================================================================


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b'{"choices":[],"x":1e400}',
        b"[1,2,3]",
        b'"a string"',
        b"12345",
        b'{"choices":"\xff\xfe"}',
        b"",
    ],
    ids=["nested-arrays", "nested-objects", "huge-float", "list", "string", "number", "bad-utf8", "empty"],
)
def test_unparseable_or_non_object_answers_are_a_502(body: bytes) -> None:
    """Deep nesting (no recursion blow-up: orjson stops at depth 1024), numbers beyond a double,
    invalid UTF-8, a JSON value that is not an object: an OpenAI-style 502, one ledger event. Fails if
    a parser error escaped as a crash (500) or such an answer were relayed."""

    async def main() -> Answer:
        async with RawServer(answering(http(200, body))) as srv:
            answer, raised = await through_gateway(srv)
            assert not raised
            return answer

    answer = _run(main())
    assert answer.status == 502
    assert orjson.loads(answer.body)["error"]["code"] == "upstream_error"
    [event] = answer.audit.events
    assert event.tag is EventTag.GATEWAY_REQUEST_FAILED


@pytest.mark.parametrize("choices", [5, True, 1.5])
def test_non_iterable_choices_are_a_502_not_a_crash(choices: Any) -> None:
    body = orjson.dumps({"id": "x", "object": "chat.completion", "model": "m", "choices": choices})

    async def main() -> Answer:
        async with RawServer(answering(http(200, body))) as srv:
            answer, _ = await through_gateway(srv)
            return answer

    answer = _run(main())
    assert answer.status == 502


def test_the_output_guard_redacts_a_secret_in_an_ordinary_answer() -> None:
    """The baseline for the two tests below: a secret where the guards look for text is redacted.
    Fails if the default output guards stopped redacting the AWS key id used as ``SECRET``."""

    async def main() -> Answer:
        async with RawServer(answering(http(200, chat_answer(SECRET)))) as srv:
            answer, raised = await through_gateway(srv)
            assert not raised
            return answer

    answer = _run(main())
    assert answer.status == 200
    assert b"AKIA" not in answer.body and b"[REDACTED]" in answer.body


@pytest.mark.parametrize(
    "answer_body",
    [
        orjson.dumps(
            {
                "id": "x",
                "object": "chat.completion",
                "model": "m",
                "choices": {"0": {"message": {"content": SECRET}}},
            }
        ),
        chat_answer([{"type": "text", "text": SECRET}]),
    ],
    ids=["choices-an-object", "content-parts"],
)
def test_a_secret_in_an_unusual_answer_shape_is_not_relayed_unscanned(answer_body: bytes) -> None:
    async def main() -> Answer:
        async with RawServer(answering(http(200, answer_body))) as srv:
            answer, _ = await through_gateway(srv)
            return answer

    answer = _run(main())
    assert b"AKIA" not in answer.body  # redacted, or the answer refused


def test_the_provider_model_name_is_replaced_in_unary_answers() -> None:
    """The provider's own model name (or another model's) never reaches the caller. Fails if the
    ``model`` rewrite in unary.py went away."""

    async def main() -> Answer:
        async with RawServer(answering(http(200, chat_answer(model="internal-model-v7")))) as srv:
            answer, _ = await through_gateway(srv, upstream_model="internal-model")
            return answer

    answer = _run(main())
    assert answer.status == 200
    assert orjson.loads(answer.body)["model"] == "m" and b"internal-model" not in answer.body


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": -1_000_000, "completion_tokens": 5},
        {"prompt_tokens": 5, "completion_tokens": -1_000_000},
        {"prompt_tokens": 2.5, "completion_tokens": 1},
        {"prompt_tokens": "5", "completion_tokens": 1},
        {"prompt_tokens": 1, "completion_tokens": "BEYOND_U64"},  # 2**64: orjson reads a float
        [1, 2],
    ],
    ids=["negative-prompt", "negative-completion", "float", "string", "beyond-u64", "not-an-object"],
)
def test_insane_unary_usage_never_refunds_the_token_limit(usage: Any) -> None:
    """A usage that is not two non-negative integers is ignored: the call is charged the estimate from
    the answer's size, never a negative count (which would refund the caller's token window). Fails
    if ``wire.usage_of`` accepted negative or non-integer counts."""
    body = chat_answer(usage=usage).replace(b'"BEYOND_U64"', b"18446744073709551616")

    async def main() -> Answer:
        async with RawServer(answering(http(200, body))) as srv:
            answer, raised = await through_gateway(srv)
            assert not raised
            return answer

    answer = _run(main())
    assert answer.status == 200
    [event] = answer.audit.events
    tokens: Any = event.attributes["tokens"]
    # estimated: the prompt from the request's size, the completion from the answer's
    assert tokens["estimated"] is True and tokens["completion"] == math.ceil(len(body) / 4)
    assert isinstance(tokens["prompt"], int) and tokens["prompt"] > 0


def test_huge_unary_usage_is_recorded_as_claimed_without_a_crash() -> None:
    """2**64-1 tokens (the largest integer orjson gives): the charge and the ledger take it, no crash.
    (The provider's claim is trusted: a provider can always exhaust a caller's token window.)"""
    huge = 2**64 - 1

    async def main() -> Answer:
        async with RawServer(answering(http(200, chat_answer(usage={"prompt_tokens": huge})))) as srv:
            answer, raised = await through_gateway(srv)
            assert not raised
            return answer

    answer = _run(main())
    assert answer.status == 200
    [event] = answer.audit.events
    assert event.attributes["tokens"] == {"prompt": huge, "completion": 0}


# == (7) hostile server-sent events ===============================================================


def test_done_with_trailing_spaces_ends_the_stream_promptly_and_once() -> None:
    """``data: [DONE]   `` is not ``[DONE]``; whatever the gateway makes of it, the stream ends at
    once with one ledger event, and nothing sent after it is relayed. Fails if the stream hung (the
    8 s bound) or relayed the event after it."""
    body = sse(chunk("hi")) + b"data:  [DONE]   \n\n" + sse(chunk("after-done"))

    async def main() -> Answer:
        async with RawServer(answering(sse_answer(body))) as srv:
            answer, raised = await through_gateway(srv, stream=True)
            assert not raised
            return answer

    answer = _run(main())
    assert b"after-done" not in answer.body
    last = answer.events()[-1]
    assert last == b"[DONE]" or b'"error"' in last
    [event] = answer.audit.events
    assert event.tag in (EventTag.GATEWAY_REQUEST_COMPLETED, EventTag.GATEWAY_REQUEST_FAILED)


@pytest.mark.parametrize("later", [False, True])
def test_events_after_done_are_never_relayed_or_counted(later: bool) -> None:
    """Events after ``[DONE]``, in the same read or later: not relayed, not in the response digest,
    and the usage they claim is not charged. Fails if the relay read past ``[DONE]``."""
    before = sse(chunk("hi"), chunk("", usage={"prompt_tokens": 3, "completion_tokens": 1}, choices=False))
    after = sse(
        chunk("after-done secret"),
        chunk("", usage={"prompt_tokens": 0, "completion_tokens": 0}, choices=False),
    )

    async def handle(srv: RawServer, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.request(r)
        w.write(SSE_HEAD + b"connection: close\r\n\r\n" + before + b"data: [DONE]\n\n")
        if later:
            await w.drain()
            await asyncio.sleep(0.1)
        w.write(after)
        await w.drain()

    async def main() -> Answer:
        async with RawServer(handle) as srv:
            answer, raised = await through_gateway(srv, stream=True)
            assert not raised
            return answer

    answer = _run(main())
    assert answer.status == 200 and answer.events()[-1] == b"[DONE]"
    assert b"after-done" not in answer.body
    [event] = answer.audit.events
    assert event.tag is EventTag.GATEWAY_REQUEST_COMPLETED
    assert event.attributes["tokens"] == {"prompt": 3, "completion": 1}


def _stream_flood(piece: bytes, total: int) -> Handler:
    """A streamed answer: ``data: `` then ``piece`` again and again (``total`` bytes), then silence."""
    block = piece * max(1, 65536 // len(piece))

    async def handle(srv: RawServer, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.request(r)
        w.write(SSE_HEAD + b"connection: close\r\n\r\n" + b"data: ")
        for _ in range(total // len(block)):
            w.write(block)
            await w.drain()
        await asyncio.sleep(30)

    return handle


async def _first_event_fails(srv: RawServer) -> UpstreamError:
    up = srv.upstream()
    stream = await up.open_stream("/chat/completions", b"{}")
    try:
        with pytest.raises(UpstreamError) as e:
            await stream.events().__anext__()
    finally:
        await stream.aclose()
        await up.aclose()
    return e.value


@pytest.mark.parametrize(
    "piece", [b"a", b"a" * 1017 + b"\ndata: "], ids=["one-endless-line", "endless-1k-data-lines"]
)
def test_an_event_that_never_ends_is_refused_at_the_event_limit(
    stream_reads: list[int], piece: bytes
) -> None:
    """16 MiB of one ``data:`` line without a newline, or of 1 KiB ``data:`` lines without the blank
    line that ends the event: a 502 once MAX_EVENT_BYTES is passed, having read at most that and one
    read more. Fails if either MAX_EVENT_BYTES check in ``_HttpStream.next_batch`` went away (the
    stream would buffer all 16 MiB, then time out: a 504)."""

    async def main() -> UpstreamError:
        async with RawServer(_stream_flood(piece, 16 * MiB)) as srv:
            return await _first_event_fails(srv)

    e = _run(main())
    assert e.status == 502 and "oversized" in e.message
    # refused near the limit (each line also counts a little for the list entry it takes)
    assert MAX_EVENT_BYTES // 2 < stream_reads[0] <= MAX_EVENT_BYTES + 2 * PAUSE


@pytest.mark.parametrize("piece", [b"data:\n", b"data: x\n"], ids=["empty-data-lines", "1-byte-data-lines"])
def test_an_event_of_tiny_data_lines_that_never_ends_is_refused(
    stream_reads: list[int], piece: bytes
) -> None:
    async def main() -> UpstreamError:
        async with RawServer(_stream_flood(piece, 6 * MiB)) as srv:
            return await _first_event_fails(srv)

    e = _run(main())
    assert e.status == 502
    assert stream_reads[0] <= MAX_EVENT_BYTES + 2 * PAUSE


def test_the_usage_chunk_does_not_reveal_the_provider_model_name() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    body = sse(
        chunk("hi", model="internal-model"),
        chunk("", model="internal-model", usage=usage, choices=False),
        b"[DONE]",
    )

    async def main() -> Answer:
        async with RawServer(answering(sse_answer(body))) as srv:
            answer, _ = await through_gateway(
                srv, upstream_model="internal-model", stream=True, stream_options={"include_usage": True}
            )
            return answer

    answer = _run(main())
    assert answer.status == 200 and answer.events()[-1] == b"[DONE]"
    assert b"internal-model" not in answer.body


def test_content_chunks_do_not_reveal_the_provider_model_name() -> None:
    """Fails if the relay stopped rewriting ``model`` in content chunks."""
    body = sse(chunk("hi", model="internal-model"), b"[DONE]")

    async def main() -> Answer:
        async with RawServer(answering(sse_answer(body))) as srv:
            answer, _ = await through_gateway(srv, upstream_model="internal-model", stream=True)
            return answer

    answer = _run(main())
    assert answer.status == 200 and answer.events()[-1] == b"[DONE]"
    assert b"internal-model" not in answer.body


@pytest.mark.parametrize(
    ("usage", "tokens"),
    [
        ({"prompt_tokens": -1_000_000, "completion_tokens": 1}, None),
        ({"prompt_tokens": 1.5, "completion_tokens": 1}, None),
        ({"prompt_tokens": 2**64 - 1, "completion_tokens": 2**64 - 1}, (2**64 - 1, 2**64 - 1)),
    ],
    ids=["negative", "float", "huge"],
)
def test_stream_usage_is_never_a_refund_and_never_a_crash(usage: Any, tokens: tuple[int, int] | None) -> None:
    """An insane usage chunk is ignored (the completion is estimated from the text relayed); a huge
    one is charged as claimed; the stream completes either way. Fails if a negative count were
    charged or a huge one crashed the accounting."""
    text = "x" * 40
    body = sse(chunk(text), chunk("", usage=usage, choices=False), b"[DONE]")

    async def main() -> Answer:
        async with RawServer(answering(sse_answer(body))) as srv:
            answer, raised = await through_gateway(srv, stream=True)
            assert not raised
            return answer

    answer = _run(main())
    assert answer.status == 200 and answer.events()[-1] == b"[DONE]"
    [event] = answer.audit.events
    assert event.tag is EventTag.GATEWAY_REQUEST_COMPLETED
    got: dict[str, Any] = dict(event.attributes["tokens"])  # type: ignore[arg-type]
    if tokens is None:  # estimated: the prompt from the request's size, the completion from the text
        assert got.pop("estimated") is True and got.pop("prompt") > 0
        assert got == {"completion": math.ceil(len(text) / 4)}
    else:
        assert got == {"prompt": tokens[0], "completion": tokens[1]}


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ("Incorrect API key provided: sk-proj-abcdefgh12345678.", None, "Incorrect API key provided: "),
        ("you sent Authorization: Bearer tok.en-value; fix it", None, "you sent Authorization: "),
        ("key 0123456789abcdef0123456789abcdef is not valid", "0123456789abcdef0123456789abcdef", "key "),
        ("max_tokens is too large: 100000 > 4096", None, "max_tokens is too large: 100000 > 4096"),
        # what the secrets detector knows: a cloud key, a GitHub token, a JWT, a URL's password
        ("bad AWS key AKIAQWERTYUIOPASDFGH here", None, "bad AWS key [redacted] here"),
        (f"token ghp_{'a1B2c3D4e5' * 4} refused", None, "token [redacted] refused"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U x", None,
         "jwt [redacted] x"),
        ("cannot reach postgresql://app:hunter2pass@db.internal:5432/x", None, "cannot reach postgresql://app:"),
    ],
)  # fmt: skip
def test_provider_messages_keep_their_words_but_no_credentials(
    text: str, secret: str | None, kept: str
) -> None:
    scrubbed = scrub_credentials(text, secret)
    assert scrubbed.startswith(kept)
    for token in ("sk-proj-abcdefgh", "tok.en-value", "0123456789abcdef", "AKIAQW", "ghp_", "eyJ", "hunter2"):
        assert token not in scrubbed


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("7", 7.0), ("0", 1.0), ("-5", 1.0), ("nan", 1.0), ("inf", 1.0), ("1e9", 86_400.0), (None, 1.0),
     ("Wed, 21 Oct 2015 07:28:00 GMT", 1.0)],
)  # fmt: skip
def test_a_provider_retry_after_is_kept_sane(value: str | None, seconds: float) -> None:
    assert retry_after_s(value) == seconds
