"""The gateway's HTTP/1.1 upstream client: framing (driven byte by byte), pooling, limits, timeouts,
cancellation and TLS against real local servers."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.crypto.tls import client_context, make_dev_certs, server_context
from bastion.gateway.http1 import (
    MAX_HEADER_BYTES,
    ConnectFailed,
    ConnectionPool,
    Origin,
    Reply,
    TransportError,
    _Connection,
)
from support.net import free_port

BODY = b'{"ok":true}'
FAR = 1e12  # a deadline that never comes (loop time)


class FakeTransport(asyncio.Transport):
    """Records what the connection writes; closing it reports the loss like a real transport."""

    def __init__(self, conn: _Connection) -> None:
        super().__init__()
        self.conn = conn
        self.written = b""
        self.closing = False
        self.paused = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.conn.connection_lost(None)

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def _drive(pieces: list[bytes], *, lose: bool = False) -> tuple[_Connection, int]:
    """Feed an answer to a fresh connection in ``pieces``; the status and the connection."""
    loop = asyncio.new_event_loop()
    try:
        conn = _Connection(loop, read_timeout_s=5)
        conn.connection_made(FakeTransport(conn))
        conn.send(b"POST / HTTP/1.1\r\n\r\n", b"")
        for p in pieces:
            conn.data_received(p)
        if lose:
            conn.connection_lost(None)
        return conn, conn.status
    finally:
        loop.close()


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


CHUNKED = (
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: application/json\r\n\r\n"
    b'4\r\n{"ok\r\n7\r\n":true}\r\n0\r\n\r\n'
)
SIZED = b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n" + BODY


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([CHUNKED, SIZED]), st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_any_split_of_an_answer_gives_the_same_body(raw: bytes, cuts: list[int]) -> None:
    conn, status = _drive(_split(raw, cuts))
    assert status == 200 and conn.complete and conn.error is None
    assert conn.take() == BODY
    assert conn.reusable


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_is_an_error_never_a_crash(junk: bytes) -> None:
    conn, _ = _drive([junk], lose=True)
    # whatever the bytes, the call ends: an answer (only if they happen to be HTTP) or an error
    assert conn.complete or conn.error is not None
    if conn.error is not None:
        assert not conn.reusable


def test_close_delimited_body_ends_with_the_connection() -> None:
    conn, status = _drive([b"HTTP/1.1 200 OK\r\n\r\nhello ", b"world"], lose=True)
    assert status == 200 and conn.complete and conn.error is None
    assert conn.take() == b"hello world"
    assert not conn.reusable


def test_truncated_sized_body_is_an_error() -> None:
    conn, _ = _drive([b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nshort"], lose=True)
    assert isinstance(conn.error, TransportError) and "closed" in str(conn.error)
    assert not conn.complete


def test_informational_answers_are_skipped() -> None:
    conn, status = _drive(
        [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: x\r\n\r\n", SIZED]
    )
    assert status == 200 and conn.take() == BODY and b"link" not in conn.headers


def test_a_second_answer_to_one_request_closes_the_connection() -> None:
    conn, _ = _drive([SIZED + SIZED])
    assert conn.complete and conn.error is None  # the first answer stands
    assert conn.closed and not conn.reusable


def test_oversized_header_block_is_refused() -> None:
    big = b"x-filler: " + b"a" * (MAX_HEADER_BYTES + 1) + b"\r\n"
    conn, _ = _drive([b"HTTP/1.1 200 OK\r\n" + big + b"content-length: 0\r\n\r\n"])
    assert isinstance(conn.error, TransportError) and "too large" in str(conn.error)


def test_connection_close_and_http10_are_not_reused() -> None:
    for head in (b"HTTP/1.1 200 OK\r\nconnection: close\r\n", b"HTTP/1.0 200 OK\r\n"):
        conn, _ = _drive([head + b"content-length: 11\r\n\r\n" + BODY])
        assert conn.complete and not conn.reusable


def test_bytes_on_an_idle_connection_close_it() -> None:
    conn, _ = _drive([SIZED])
    conn.busy = False
    conn.data_received(b"HTTP/1.1 200 OK\r\n")
    assert conn.closed


def test_a_large_waiting_answer_pauses_reading_until_taken() -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 400000\r\n\r\n"
    conn, _ = _drive([head + b"a" * 300_000])
    assert isinstance(conn.transport, FakeTransport) and conn.transport.paused
    assert len(conn.take()) == 300_000 and not conn.transport.paused


def test_origin_parsing() -> None:
    o = Origin.parse("https://api.example.com/v1/", {"api-version": "2024-06-01"})
    assert (o.https, o.host, o.port, o.host_header, o.prefix) == (
        True,
        "api.example.com",
        443,
        "api.example.com",
        "/v1",
    )
    assert o.query == "api-version=2024-06-01"
    o = Origin.parse("http://[::1]:8000/v1")
    assert (o.host, o.port, o.host_header) == ("::1", 8000, "[::1]:8000")
    with pytest.raises(ValueError, match="not an http"):
        Origin.parse("ftp://x/")


# -- against real local servers ------------------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(r: asyncio.StreamReader) -> tuple[str, bytes]:
    head = (await r.readuntil(b"\r\n\r\n")).decode("latin-1")
    length = next(int(h.split(":")[1]) for h in head.split("\r\n") if h.lower().startswith("content-length"))
    return head, await r.readexactly(length)


class Server:
    """A local HTTP server; counts connections and keeps each request's head."""

    def __init__(self, handler: Handler, ssl_ctx: ssl.SSLContext | None = None) -> None:
        self.handler, self.ssl = handler, ssl_ctx
        self.connections = 0
        self.concurrent = 0
        self.max_concurrent = 0
        self.heads: list[str] = []
        self.port = free_port()

    async def __aenter__(self) -> Server:
        async def on_connect(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(r, w)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                w.close()

        self.server = await asyncio.start_server(on_connect, "127.0.0.1", self.port, ssl=self.ssl)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    @classmethod
    def answering(cls, answer: bytes, *, delay: float = 0.0, ssl_ctx: ssl.SSLContext | None = None) -> Server:
        """A keep-alive server giving ``answer`` to every request (after ``delay`` seconds)."""
        srv = cls(_no_handler, ssl_ctx)
        srv.handler = _keepalive(srv, answer, delay=delay)
        return srv

    def pool(self, *, https: bool = False, **kw: Any) -> ConnectionPool:
        scheme = "https" if https else "http"
        host = "localhost" if https else "127.0.0.1"
        opts: dict[str, Any] = {"max_connections": 8, "connect_timeout_s": 2, "read_timeout_s": 2} | kw
        return ConnectionPool(Origin.parse(f"{scheme}://{host}:{self.port}/v1"), **opts)


async def _no_handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    raise NotImplementedError


def _keepalive(server: Server, answer: bytes, *, delay: float = 0.0) -> Handler:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            head, _ = await _read_request(r)
            server.heads.append(head)
            server.concurrent += 1
            server.max_concurrent = max(server.max_concurrent, server.concurrent)
            await asyncio.sleep(delay)
            server.concurrent -= 1
            w.write(answer)
            await w.drain()

    return handle


def _run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def _post(pool: ConnectionPool, body: bytes = b"{}", timeout: float = 5.0) -> tuple[Reply, bytes]:
    deadline = asyncio.get_running_loop().time() + timeout
    reply = await pool.post("/chat/completions", b"content-type: application/json\r\n", body, deadline)
    return reply, await reply.read(deadline, 1 << 20)


def test_keep_alive_reuses_one_connection_and_sends_a_proper_request() -> None:
    async def main() -> None:
        srv = Server.answering(SIZED)
        async with srv:
            pool = srv.pool()
            for _ in range(3):
                reply, body = await _post(pool, b'{"a":1}')
                assert (reply.status, body) == (200, BODY)
            assert srv.connections == 1
            head = srv.heads[0]
            assert head.startswith("POST /v1/chat/completions HTTP/1.1\r\n")
            assert f"host: 127.0.0.1:{srv.port}\r\n" in head and "content-length: 7\r\n" in head
            await pool.aclose()

    _run(main())


def test_pool_never_opens_more_than_max_connections() -> None:
    async def main() -> None:
        srv = Server.answering(SIZED, delay=0.05)
        async with srv:
            pool = srv.pool(max_connections=2)
            results = await asyncio.gather(*(_post(pool) for _ in range(7)))
            assert [b for _, b in results] == [BODY] * 7
            assert srv.connections == 2 and srv.max_concurrent == 2
            assert pool.open_connections == 2
            await pool.aclose()
            assert pool.open_connections == 0

    _run(main())


def test_a_caller_waiting_for_a_connection_gives_up_at_its_deadline() -> None:
    async def main() -> None:
        srv = Server.answering(SIZED, delay=1.0)
        async with srv:
            pool = srv.pool(max_connections=1)
            first = asyncio.create_task(_post(pool))
            await asyncio.sleep(0.05)
            with pytest.raises(TimeoutError):
                await _post(pool, timeout=0.2)
            assert (await first)[1] == BODY
            await pool.aclose()

    _run(main())


def test_silence_after_the_headers_times_out_and_closes() -> None:
    async def main() -> None:
        async def stall(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await _read_request(r)
            w.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
            await asyncio.sleep(10)

        async with Server(stall) as srv:
            pool = srv.pool(read_timeout_s=0.2)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            with pytest.raises(TimeoutError):
                await _post(pool)
            assert loop.time() - t0 < 1.0
            assert pool.open_connections == 0  # the connection was closed, not pooled

    _run(main())


def test_refused_connection_is_connect_failed() -> None:
    async def main() -> None:
        pool = ConnectionPool(
            Origin.parse(f"http://127.0.0.1:{free_port()}"),
            max_connections=4,
            connect_timeout_s=1,
            read_timeout_s=1,
        )
        with pytest.raises(ConnectFailed):
            await _post(pool)
        assert pool.open_connections == 0

    _run(main())


def test_cancelling_a_call_closes_its_connection() -> None:
    async def main() -> None:
        closed, answering = asyncio.Event(), asyncio.Event()

        async def slow(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await _read_request(r)
            w.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            await w.drain()
            answering.set()
            if not await r.read(1):  # EOF: the client hung up
                closed.set()

        async with Server(slow) as srv:
            pool = srv.pool()
            task = asyncio.create_task(_post(pool))
            # cancelled mid-answer (not after a fixed sleep, which a loaded machine can outrun)
            await asyncio.wait_for(answering.wait(), 5)
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.wait_for(closed.wait(), 2)
            assert pool.open_connections == 0

    _run(main())


def test_gzip_answers_are_decoded_and_bounded() -> None:
    packed = gzip.compress(b"x" * 10_000)
    answer = b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n%s" % (
        len(packed),
        packed,
    )

    async def main() -> None:
        srv = Server.answering(answer)
        async with srv:
            pool = srv.pool()
            _, body = await _post(pool)
            assert body == b"x" * 10_000
            assert "accept-encoding" not in srv.heads[0]  # the caller's head only; upstream.py asks identity
            deadline = asyncio.get_running_loop().time() + 5
            reply = await pool.post("/x", b"", b"{}", deadline)
            with pytest.raises(TransportError, match="larger than"):
                await reply.read(deadline, 1000)  # a decompression bomb stops at the limit
            reply = await pool.post("/x", b"", b"{}", deadline)
            assert await reply.read(deadline, 1000, truncate=True) == b"x" * 1000  # an error body's head
            await pool.aclose()

    _run(main())


def test_unsupported_content_encoding_is_an_error() -> None:
    answer = b"HTTP/1.1 200 OK\r\ncontent-encoding: br\r\ncontent-length: 3\r\n\r\nabc"

    async def main() -> None:
        srv = Server.answering(answer)
        async with srv:
            pool = srv.pool()
            with pytest.raises(TransportError, match="content-encoding"):
                await _post(pool)
            assert pool.open_connections == 0

    _run(main())


def test_tls_is_verified_against_the_configured_ca(tmp_path: Path) -> None:
    certs = make_dev_certs(tmp_path / "tls")
    server_ctx = server_context(certs.server_cert, certs.server_key)  # localhost, signed by the dev CA

    async def main() -> None:
        srv = Server.answering(SIZED, ssl_ctx=server_ctx)
        async with srv:
            with pytest.raises(ConnectFailed):  # the system trust store does not know the dev CA
                await _post(srv.pool(https=True))
            pool = srv.pool(https=True, ssl_context=client_context(certs.ca_cert))
            reply, body = await _post(pool)
            assert (reply.status, body) == (200, BODY)
            await pool.aclose()

    _run(main())


def test_upstream_settings_wire_the_ca_and_refuse_half_a_client_pair(tmp_path: Path) -> None:
    from bastion.config import UpstreamSettings
    from bastion.errors import ConfigError
    from bastion.gateway.upstream import HttpUpstream

    certs = make_dev_certs(tmp_path / "tls")
    server_ctx = server_context(certs.server_cert, certs.server_key)  # localhost, signed by the dev CA

    async def main() -> None:
        srv = Server.answering(SIZED, ssl_ctx=server_ctx)
        async with srv:
            cfg = UpstreamSettings(base_url=f"https://localhost:{srv.port}/v1", ca_file=certs.ca_cert)
            up = HttpUpstream("u", cfg)
            reply = await up.send("/chat/completions", b"{}")
            assert (reply.status, reply.body) == (200, BODY)
            assert "accept-encoding: identity" in srv.heads[0]
            await up.aclose()

    _run(main())
    with pytest.raises(ValueError, match="client_key_file"):
        UpstreamSettings(base_url="https://x/v1", client_cert_file=certs.server_cert)
    with pytest.raises(ConfigError, match="CA bundle"):
        HttpUpstream("u", UpstreamSettings(base_url="https://x/v1", ca_file=tmp_path / "missing.pem"))


def test_a_large_request_body_arrives_whole() -> None:
    body = b'{"x":"' + b"a" * 200_000 + b'"}'

    async def main() -> None:
        async def echo_length(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            _, got = await _read_request(r)
            answer = str(len(got)).encode() if got == body else b"mismatch"
            w.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(answer), answer))
            await w.drain()

        async with Server(echo_length) as srv:
            pool = srv.pool()
            _, answer = await _post(pool, body)
            assert answer == str(len(body)).encode()
            await pool.aclose()

    _run(main())


def test_an_answer_that_keeps_coming_still_ends_at_the_deadline() -> None:
    """Bytes arriving faster than the read timeout do not extend the caller's deadline."""

    async def main() -> None:
        async def endless(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await _read_request(r)
            w.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            while True:
                w.write(b"1\r\nx\r\n")
                await w.drain()
                await asyncio.sleep(0.01)

        async with Server(endless) as srv:
            pool = srv.pool(read_timeout_s=1.0)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            with pytest.raises(TimeoutError):
                await _post(pool, timeout=0.3)
            assert loop.time() - t0 < 0.8
            assert pool.open_connections == 0

    _run(main())


def test_gzip_arriving_in_pieces_decodes_whole() -> None:
    """A piece that decodes to nothing yet (the gzip header alone) is not the end of the body."""
    packed = gzip.compress(b"hello " * 5000)

    async def main() -> None:
        async def dribble(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await _read_request(r)
            w.write(b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n" % len(packed))
            for i in range(0, len(packed), 10):
                w.write(packed[i : i + 10])
                await w.drain()
                await asyncio.sleep(0.001)

        async with Server(dribble) as srv:
            pool = srv.pool()
            _, body = await _post(pool)
            assert body == b"hello " * 5000
            await pool.aclose()

    _run(main())
