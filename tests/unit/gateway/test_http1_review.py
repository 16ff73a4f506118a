"""Adversarial review of the gateway's HTTP/1.1 upstream client (``http1``) and its use in ``upstream``:
a hostile or broken provider (framing confusion, endless headers and trailers, 1xx floods, corrupt or
truncated compression, resets, TLS truncation, slow drips) and connections reused across callers."""

from __future__ import annotations

import asyncio
import gzip
import logging
import socket
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from bastion.config import UpstreamSettings, load_settings
from bastion.crypto.tls import client_context, make_dev_certs, server_context
from bastion.errors import ConfigError, UpstreamError
from bastion.gateway.http1 import _PAUSE_BYTES, MAX_HEADER_BYTES, ConnectFailed, Origin, TransportError
from bastion.gateway.upstream import HttpUpstream

from .test_http1 import BODY, SIZED, Server, _drive, _keepalive, _post, _read_request, _run

BOUND = 5.0  # a generous bound on any wait, only so that a broken build cannot hang the run


async def _until(cond: Callable[[], bool], what: str) -> None:
    """Poll ``cond()`` (bounded); the tests use it to order a server's writes against the client."""

    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.002)

    try:
        await asyncio.wait_for(poll(), BOUND)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


# -- framing: what llhttp refuses stays refused -----------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(
            b"content-length: 3\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", id="cl+te"
        ),
        pytest.param(
            b"transfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n", id="te+cl"
        ),
        pytest.param(b"content-length: 3\r\ncontent-length: 3\r\n\r\nabc", id="duplicate-cl"),
        pytest.param(b"content-length: 3\r\ncontent-length: 5\r\n\r\nabcde", id="conflicting-cl"),
        pytest.param(b"content-length: 3, 3\r\n\r\nabc", id="cl-list"),
        pytest.param(b"content-length: -3\r\n\r\nabc", id="negative-cl"),
        pytest.param(b"content-length: +3\r\n\r\nabc", id="signed-cl"),
        pytest.param(b"content-length: 99999999999999999999999\r\n\r\nabc", id="huge-cl"),
        pytest.param(b"transfer-encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\nabc", id="chunk-size-overflow"),
        pytest.param(
            b"transfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\ncontent-length: 9\r\n\r\n", id="cl-trailer"
        ),
        pytest.param(b"retry-after: 1\r\n x-folded: 2\r\ncontent-length: 0\r\n\r\n", id="obs-fold"),
        pytest.param(b"retry-after: 1\rx-injected: 2\r\ncontent-length: 0\r\n\r\n", id="bare-cr"),
        pytest.param(b"content-length : 3\r\n\r\nabc", id="space-before-colon"),
        pytest.param(b"x-nul: a\x00b\r\ncontent-length: 3\r\n\r\nabc", id="nul-in-value"),
    ],
)
def test_ambiguous_or_malformed_framing_is_an_error_and_never_reused(raw: bytes) -> None:
    conn, _ = _drive([b"HTTP/1.1 200 OK\r\n" + raw])
    assert isinstance(conn.error, TransportError) and "not valid" in str(conn.error)
    assert conn.closed and not conn.reusable


def test_chunk_extensions_are_accepted_and_trailers_never_override_headers() -> None:
    conn, status = _drive(
        [
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            b"3;name=value\r\nabc\r\n0\r\ncontent-encoding: gzip\r\nretry-after: 999\r\n\r\n"
        ]
    )
    assert status == 200 and conn.complete and conn.error is None and conn.take() == b"abc"
    assert b"content-encoding" not in conn.headers and b"retry-after" not in conn.headers


def test_a_flood_of_1xx_answers_is_bounded_like_one_header_block() -> None:
    conn, _ = _drive([b"HTTP/1.1 100 Continue\r\n\r\n" * (MAX_HEADER_BYTES // 20)])
    assert isinstance(conn.error, TransportError) and "too large" in str(conn.error)
    assert conn.closed


def test_an_endless_trailer_is_refused_like_an_endless_header() -> None:
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-trailer: "
    conn, _ = _drive([head] + [b"a" * 65536] * 16)  # 1 MiB of one trailer value, and counting
    assert isinstance(conn.error, TransportError) and "too large" in str(conn.error)
    assert conn.closed


def test_headers_dripped_faster_than_the_read_timeout_end_at_the_deadline() -> None:
    """A slowloris provider dripping header bytes faster than the read timeout is cut at the deadline."""

    async def main() -> None:
        async def drip(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await _read_request(r)
            w.write(b"HTTP/1.1 200 OK\r\nx-slow: ")
            while True:
                w.write(b"a")
                await w.drain()
                await asyncio.sleep(0.01)

        async with Server(drip) as srv:
            pool = srv.pool(read_timeout_s=BOUND)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(_post(pool, timeout=0.2), BOUND)
            assert pool.open_connections == 0
            await pool.aclose()

    _run(main())


def test_a_101_answer_is_refused_by_the_client_itself(caplog: pytest.LogCaptureFixture) -> None:
    answer = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\nconnection: upgrade\r\n\r\n"

    async def main() -> None:
        async with Server.answering(answer) as srv:
            pool = srv.pool()
            with pytest.raises(TransportError):
                await asyncio.wait_for(_post(pool), BOUND)
            assert pool.open_connections == 0
            await pool.aclose()

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        _run(main())
    assert not [r for r in caplog.records if "data_received" in r.getMessage()]


# -- truncation: an answer cut short is never taken for a whole one ---------------------------------


async def _close_delimited_then(cut: str, tmp_path: Path | None = None) -> bytes:
    """The body of a close-delimited answer whose connection is cut (``rst`` or, over TLS, a bare
    TCP FIN without close_notify) after part of it was sent."""
    go = asyncio.Event()

    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await _read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n" + b'{"partial":')
        await w.drain()
        await go.wait()
        sock = w.get_extra_info("socket")
        if cut == "rst":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            w.transport.abort()
        else:
            sock.shutdown(socket.SHUT_WR)  # under TLS: the attacker's FIN, no close_notify
            await asyncio.sleep(BOUND)

    ssl_ctx = client_ctx = None
    if tmp_path is not None:
        certs = make_dev_certs(tmp_path / "tls")
        ssl_ctx = server_context(certs.server_cert, certs.server_key)
        client_ctx = client_context(certs.ca_cert)
    async with Server(handler, ssl_ctx) as srv:
        pool = srv.pool(https=tmp_path is not None, ssl_context=client_ctx)
        deadline = asyncio.get_running_loop().time() + BOUND
        reply = await pool.post("/chat/completions", b"", b"{}", deadline)
        go.set()
        try:
            return await reply.read(deadline, 1 << 20)
        finally:
            await pool.aclose()


def test_a_close_delimited_body_cut_by_a_reset_is_an_error() -> None:
    with pytest.raises(TransportError):
        _run(_close_delimited_then("rst"))


def test_a_close_delimited_tls_body_cut_without_close_notify_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TransportError):
        _run(_close_delimited_then("fin", tmp_path))


def test_a_close_delimited_tls_error_answer_is_still_read(tmp_path: Path) -> None:
    """A load balancer's 503 without a length, over TLS: read for its status and message (only a
    2xx answer, whose body is relayed, must have a length)."""

    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await _read_request(r)
        w.write(b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\r\nno healthy upstream")
        await w.drain()
        w.close()

    async def main() -> tuple[int, bytes]:
        certs = make_dev_certs(tmp_path / "tls")
        async with Server(handler, server_context(certs.server_cert, certs.server_key)) as srv:
            pool = srv.pool(https=True, ssl_context=client_context(certs.ca_cert))
            deadline = asyncio.get_running_loop().time() + BOUND
            reply = await pool.post("/chat/completions", b"", b"{}", deadline)
            try:
                return reply.status, await reply.read(deadline, 1 << 20)
            finally:
                await pool.aclose()

    assert _run(main()) == (503, b"no healthy upstream")


# -- content-encoding -----------------------------------------------------------------------------


def _gzip_answer(payload: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n%s" % (
        len(payload),
        payload,
    )


def test_a_corrupt_compressed_body_is_a_transport_error() -> None:
    async def main() -> None:
        async with Server.answering(_gzip_answer(b"this is not gzip")) as srv:
            pool = srv.pool()
            with pytest.raises(TransportError):
                await asyncio.wait_for(_post(pool), BOUND)
            assert pool.open_connections == 0
            await pool.aclose()

    _run(main())


def test_a_corrupt_compressed_body_is_a_502_counted_by_the_breaker() -> None:
    async def main() -> None:
        async with Server.answering(_gzip_answer(b"this is not gzip")) as srv:
            up = HttpUpstream("u", UpstreamSettings(base_url=f"http://127.0.0.1:{srv.port}/v1"))
            try:
                with pytest.raises(UpstreamError) as e:
                    await asyncio.wait_for(up.send("/chat/completions", b"{}"), BOUND)
                assert e.value.status == 502 and up.breaker.failures == 1
            finally:
                await up.aclose()

    _run(main())


def test_a_truncated_compressed_body_is_an_error() -> None:
    packed = gzip.compress(b'{"choices":[{"text":"' + b"x" * 5000 + b'"}]}')

    async def main() -> None:
        async with Server.answering(_gzip_answer(packed[: len(packed) // 2])) as srv:
            pool = srv.pool()
            with pytest.raises(TransportError):
                await asyncio.wait_for(_post(pool), BOUND)
            await pool.aclose()

    _run(main())


def test_a_gzip_bomb_is_cut_at_the_limit_and_its_connection_closed() -> None:
    bomb = gzip.compress(b"\0" * (32 << 20), compresslevel=9)  # 32 MiB in about 32 KiB

    async def main() -> None:
        async with Server.answering(_gzip_answer(bomb)) as srv:
            pool = srv.pool()
            deadline = asyncio.get_running_loop().time() + BOUND
            reply = await pool.post("/x", b"", b"{}", deadline)
            with pytest.raises(TransportError, match="larger than"):
                await reply.read(deadline, 1 << 20)
            reply = await pool.post("/x", b"", b"{}", deadline)
            chunk = await reply.read_some(deadline)  # a stream's read: bounded per piece too
            assert 0 < len(chunk) <= _PAUSE_BYTES
            reply.close()
            await pool.aclose()

    _run(main())


# -- reuse: one caller's answer never reaches, or blocks, the next ----------------------------------


def test_a_truncated_error_body_leaves_nothing_for_the_next_caller() -> None:
    first = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 5000\r\n\r\n" + b"s" * 5000

    async def main() -> None:
        answers = [first, SIZED]

        async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            while answers:
                await _read_request(r)
                w.write(answers.pop(0))
                await w.drain()
            await r.read()

        async with Server(handler) as srv:
            pool = srv.pool(max_connections=1)
            deadline = asyncio.get_running_loop().time() + BOUND
            reply = await pool.post("/x", b"", b"{}", deadline)
            assert await reply.read(deadline, 1000, truncate=True) == b"s" * 1000
            reply, body = await _post(pool)
            assert (reply.status, body) == (200, BODY)
            await pool.aclose()

    _run(main())


def test_bytes_sent_on_an_idle_connection_never_reach_the_next_caller() -> None:
    forged = b'HTTP/1.1 200 OK\r\ncontent-length: 16\r\n\r\n{"tenant":"a"} '

    async def main() -> None:
        idle = asyncio.Event()

        async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await _read_request(r)
            w.write(SIZED)
            await w.drain()
            await idle.wait()
            w.write(forged)  # unasked: an answer meant for nobody (or for someone else)
            await w.drain()
            await _read_request(r)
            w.write(forged)

        async with Server(handler) as srv:
            pool = srv.pool(max_connections=1)
            _, body = await _post(pool)
            assert body == BODY
            (conn,) = pool._idle
            idle.set()
            await _until(lambda: conn.closed, "the idle connection closed on unasked bytes")
            srv.handler = _keepalive(srv, SIZED)  # the next connection answers properly
            reply, body = await _post(pool)
            assert (reply.status, body) == (200, BODY) and srv.connections == 2
            await pool.aclose()

    _run(main())


def test_an_abandoned_large_answer_does_not_stall_the_next_caller() -> None:
    n = _PAUSE_BYTES

    async def main() -> None:
        rest = asyncio.Event()

        async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await _read_request(r)
            w.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (n + 1) + b"a" * n)
            await w.drain()
            await rest.wait()
            w.write(b"a")  # the last byte: reading pauses exactly as the answer completes
            await w.drain()
            await _read_request(r)
            w.write(SIZED)
            await w.drain()
            await r.read()

        async with Server(handler) as srv:
            pool = srv.pool(max_connections=1, read_timeout_s=0.5)
            reply = await pool.post("/x", b"", b"{}", asyncio.get_running_loop().time() + BOUND)
            conn = reply._conn
            assert conn is not None
            await _until(lambda: conn.buffered == n, "the first part buffered")
            rest.set()
            await _until(lambda: conn.complete, "the answer complete")
            reply.close()  # the caller left without reading (client gone, guard block, [DONE])
            try:
                reply, body = await _post(pool)
                assert (reply.status, body) == (200, BODY)
            finally:
                await pool.aclose()

    _run(main())


def test_cancelling_a_body_read_closes_the_connection_and_the_pool_recovers() -> None:
    async def main() -> None:
        reading = asyncio.Event()

        async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await _read_request(r)
            w.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
            await w.drain()
            await r.read()  # until the client hangs up

        async with Server(handler) as srv:
            pool = srv.pool(max_connections=1)
            deadline = asyncio.get_running_loop().time() + BOUND
            reply = await pool.post("/x", b"", b"{}", deadline)

            async def read_all() -> bytes:
                assert await reply.read_some(deadline) == b"hello"
                reading.set()
                return await reply.read(deadline, 1 << 20)

            task = asyncio.create_task(read_all())
            await asyncio.wait_for(reading.wait(), BOUND)
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert pool.open_connections == 0
            srv.handler = _keepalive(srv, SIZED)
            reply, body = await _post(pool)
            assert (reply.status, body) == (200, BODY) and srv.connections == 2
            await pool.aclose()

    _run(main())


def test_a_request_that_cannot_be_written_gives_its_connection_back() -> None:
    async def main() -> None:
        async with Server.answering(SIZED) as srv:
            pool = srv.pool(max_connections=1)
            deadline = asyncio.get_running_loop().time() + BOUND
            with pytest.raises((ValueError, TransportError)):
                await pool.post("/chat/\u20ac", b"", b"{}", deadline)
            try:
                assert pool.open_connections == 0
            finally:
                await pool.aclose()

    _run(main())


# -- TLS and the request head -----------------------------------------------------------------------


def test_tls_host_name_is_checked_even_with_a_trusted_ca(tmp_path: Path) -> None:
    certs = make_dev_certs(tmp_path / "tls", hostnames=("provider.invalid",))
    server_ctx = server_context(certs.server_cert, certs.server_key)

    async def main() -> None:
        async with Server.answering(SIZED, ssl_ctx=server_ctx) as srv:
            pool = srv.pool(https=True, ssl_context=client_context(certs.ca_cert), max_connections=1)
            with pytest.raises(ConnectFailed):  # the certificate is for another name than localhost
                await asyncio.wait_for(_post(pool), BOUND)
            assert pool.open_connections == 0
            await pool.aclose()

    _run(main())


@pytest.mark.parametrize("key", ["sk-test\r\nx-injected: 1", "sk-te\nst", "sk-te\rst", "sk te"])
def test_a_provider_key_with_a_line_break_inside_is_refused(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_REVIEW_KEY", key)
    with pytest.raises(ConfigError) as e:
        HttpUpstream(
            "u", UpstreamSettings(base_url="http://127.0.0.1:9/v1", api_key_env="BASTION_REVIEW_KEY")
        )
    assert key not in str(e.value)


@pytest.mark.parametrize("key", ["sk-test\n", "sk-test\r", " sk-test\r\n"])
def test_a_provider_key_is_used_without_surrounding_white_space(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_REVIEW_KEY", key)
    up = HttpUpstream(
        "u", UpstreamSettings(base_url="http://127.0.0.1:9/v1", api_key_env="BASTION_REVIEW_KEY")
    )
    assert up.secret == "sk-test"


def _gateway(base_url: str) -> dict[str, object]:
    return {
        "upstreams": {"u": {"base_url": base_url}},
        "models": {"m": {"upstream": "u"}},
        "egress_allowlist": ["h", "x.openai.azure.com"],
    }


@pytest.mark.parametrize("url", ["http://h/v1 beta", "http://h/v1\r\nx-injected: 1", "http://h/v1\tx"])
def test_a_base_url_path_that_would_break_the_request_line_is_refused_at_load(url: str) -> None:
    with pytest.raises(ConfigError, match="visible ASCII"):
        load_settings(None, gateway=_gateway(url))


def test_a_query_in_base_url_is_refused_at_load_not_silently_dropped() -> None:
    url = "https://x.openai.azure.com/openai/deployments/d?api-version=2024-06-01"
    with pytest.raises(ConfigError, match="under 'query'"):
        load_settings(None, gateway=_gateway(url))


def test_query_parameters_from_config_are_encoded_not_injected() -> None:
    origin = Origin.parse("http://h/v1", {"api-version": "1 HTTP/1.1\r\nx-injected: 1"})
    assert not any(c.isspace() for c in origin.query) and "x-injected: 1" not in origin.query
