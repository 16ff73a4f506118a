"""HTTP/1.1 client connections to model providers: pooled, kept alive, parsed by httptools.

Why not aiohttp, which the gateway used before: on the gateway's one core the upstream client is a
large share of a call's CPU. Against the same mock upstream, 16 concurrent POSTs, aiohttp 3.14 spent
236-244 µs of CPU per call and this client 20-23 µs (bench/results/gateway.md). What must be exactly
right, reading the provider's answer (status line, headers, Content-Length, chunked framing), is done by
httptools (llhttp, the parser of Node.js and of uvicorn); this module writes one request head per call
and keeps the connections.

Deliberately small, for the one request the gateway makes — a POST with a JSON body:

* HTTP/1.1 over TCP or TLS (certificates and host names verified by the system trust store);
* answers framed by Content-Length, chunked, or (over plain TCP only) the connection's close; 1xx
  answers skipped;
* ``accept-encoding: identity`` is asked for; gzip/deflate are still decoded if a provider compresses;
* no redirects, cookies, proxies, ``Expect`` or pipelining: a connection carries one call at a time and
  is reused only after a complete answer that allows keep-alive, and only within ``keepalive_s``;
* every wait is bounded: the connect timeout, the read timeout between bytes, and the caller's deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlencode, urlsplit

import httptools

#: A provider's header block larger than this is refused (no legitimate answer comes close).
MAX_HEADER_BYTES = 64 * 1024
#: Reading from the socket pauses while this much of an answer waits to be consumed (streams).
_PAUSE_BYTES = 256 * 1024


class TransportError(Exception):
    """The connection failed, or the provider's answer was not valid HTTP."""


class ConnectFailed(TransportError):
    """No connection was made: the request never reached the provider, so it may be retried."""


class PoolBusy(TimeoutError):
    """No pooled connection became free before the deadline: the request never left the gateway, so
    it says nothing about the provider (a ``TimeoutError``, for callers that do not tell them apart)."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where requests go: scheme, host and port, the Host header and the path prefix of ``base_url``."""

    https: bool
    host: str
    port: int
    host_header: str
    prefix: str
    query: str

    @classmethod
    def parse(cls, base_url: str, query: Mapping[str, str] | None = None) -> Origin:
        u = urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        https = u.scheme == "https"
        port = u.port or (443 if https else 80)
        host = u.hostname
        shown = f"[{host}]" if ":" in host else host
        default = port == (443 if https else 80)
        qs = urlencode(dict(query)) if query else ""
        return cls(https, host, port, shown if default else f"{shown}:{port}", u.path.rstrip("/"), qs)


class _Connection(asyncio.Protocol):
    """One connection and the answer to the call it currently carries (httptools calls back into it)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, read_timeout_s: float, *, tls: bool = False) -> None:
        self.loop = loop
        self.read_timeout = read_timeout_s
        self.tls = tls
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.busy = False
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self.begin()

    def begin(self) -> None:
        """Forget the previous answer; the next bytes belong to a new call."""
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.header_bytes = 0
        self.head_read = 0  # bytes fed in a row that brought no body (parser-held ones too)
        self.headers_done = False
        self.complete = False
        self.until_eof = False
        self.keep_alive = False
        self.informational = False
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.error: TransportError | None = None
        self.last_read = self.loop.time()

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's does not subclass asyncio's
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.last_read = self.loop.time()
        if not self.busy or self.complete:
            self._fail("the upstream sent bytes nobody asked for")
            return
        body_before = self.buffered
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(f"the upstream's answer is not valid HTTP/1.1 ({e})")
            return
        except httptools.HttpParserUpgrade:  # a 101: llhttp stops parsing, the rest is another protocol
            self._fail("the upstream answered with an unexpected upgrade")
            return
        if self.buffered == body_before and not self.complete:
            # on_header sees a line only once it has ended: a header or trailer line (or a chunk
            # size or extension) that never ends is held inside the parser, so bytes that bring no
            # body are bounded like a header block; any body starts the count again
            self.head_read += len(data)
            if self.head_read > MAX_HEADER_BYTES:
                part = "trailers" if self.headers_done else "header block"
                self._fail(f"the upstream's {part} is too large")
                return
        else:
            self.head_read = 0
        if self.buffered > _PAUSE_BYTES and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.error is None:
            if exc is None and self.headers_done and self.until_eof:
                self.complete = True  # the body was delimited by the close (a clean one, not a reset)
            elif self.busy:
                how = "lost the connection" if exc is not None else "closed the connection"
                self.error = TransportError(f"the upstream {how} before its answer ended")
        self._wake()

    # -- httptools callbacks (must not raise) --------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:  # a second answer to one request
            self._fail("the upstream sent more than one answer")

    # Once the answer is complete, nothing more is taken from the parser: a second answer to the
    # same request (the connection is closed) must not rewrite the first's status, headers or body.

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.complete:
            return
        self.header_bytes += len(name) + len(value)
        if self.header_bytes > MAX_HEADER_BYTES:
            self._fail("the upstream's header block is too large")
            return
        if not self.headers_done:  # trailers (after a chunked body) never override headers
            self.headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self.informational = True  # 100 Continue, 103 Early Hints: the real answer follows
            return
        h = self.headers
        until_eof = (
            b"content-length" not in h
            and b"chunked" not in h.get(b"transfer-encoding", b"").lower()
            and status not in (204, 304)
        )
        if until_eof and self.tls and 200 <= status < 300:
            # asyncio cannot tell a close_notify from a bare FIN, so a cut would pass for the end
            # (providers send Content-Length or chunked); an error answer, read only for its
            # message, may still end at the close (a load balancer's 503, say)
            self._fail("the upstream's answer over TLS has no length (it would end at any cut)")
            return
        self.status = status
        self.headers_done = True
        self.keep_alive = self.parser.should_keep_alive()
        self.until_eof = until_eof

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self.chunks.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        if self.complete:
            return
        if self.informational:
            self.informational = False
            self.headers = {}
            self.header_bytes = 0
            return
        self.complete = True

    # -- for the pool and the reply ------------------------------------------------------------

    def _fail(self, message: str) -> None:
        if self.error is None and not self.complete:
            self.error = TransportError(message)
        self.close()
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    @property
    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed

    def send(self, head: bytes, body: bytes) -> None:
        """Start a call: write its request (one write for a small body; a large one is not copied)."""
        assert self.transport is not None
        self.begin()
        self.busy = True
        if len(body) < 65536:
            self.transport.write(head + body)
        else:
            self.transport.writelines((head, body))

    def take(self) -> bytes:
        """The body bytes received so far (and reading resumes if it was paused)."""
        data = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.drop_unread()
        return data

    def drop_unread(self) -> None:
        """Forget the body bytes received so far, and read again if they had paused reading."""
        self.chunks = []
        self.buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    async def wait(self, deadline: float) -> None:
        """Until more of the answer arrives, it ends or fails; ``TimeoutError`` after the read timeout
        between bytes or at ``deadline`` (loop time)."""
        if self.error is not None:
            raise self.error
        loop = self.loop
        waiter = self._waiter = loop.create_future()
        timer = loop.call_at(min(deadline, self.last_read + self.read_timeout), self._time_out, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
        if self.error is not None:
            raise self.error

    @staticmethod
    def _time_out(waiter: asyncio.Future[None]) -> None:
        # Any byte wakes the waiter (and the next wait arms a new timer), so firing means silence.
        if not waiter.done():
            waiter.set_exception(TimeoutError())


class Reply:
    """A provider's answer: status and headers at once, the body read in full or piece by piece."""

    def __init__(self, pool: ConnectionPool, conn: _Connection) -> None:
        self._pool = pool
        self._conn: _Connection | None = conn
        self.status = conn.status
        self._headers = conn.headers
        encoding = conn.headers.get(b"content-encoding", b"identity").strip().lower()
        self._decoder = _decoder(encoding)
        self._decoded = False  # whether any compressed input reached the decoder
        #: called once, just before :meth:`read_some` first has to wait for the provider (then cleared)
        self.before_wait: Callable[[], None] | None = None

    def header(self, name: bytes) -> str | None:
        value = self._headers.get(name)
        return value.decode("latin-1") if value is not None else None

    async def read(self, deadline: float, max_bytes: int, *, truncate: bool = False) -> bytes:
        """The whole body (decoded); the connection goes back to the pool. A body over ``max_bytes``
        is a :class:`TransportError`, or with ``truncate`` its first ``max_bytes`` (the rest unread)."""
        parts: list[bytes] = []
        size = 0
        while True:
            part = await self.read_some(deadline, max_bytes - size + 1)
            if not part:
                return parts[0] if len(parts) == 1 else b"".join(parts)
            parts.append(part)
            size += len(part)
            if size > max_bytes:
                self.close()
                if truncate:
                    return b"".join(parts)[:max_bytes]
                raise TransportError(f"the upstream's answer is larger than {max_bytes} bytes")

    async def read_some(self, deadline: float, max_bytes: int = _PAUSE_BYTES) -> bytes:
        """The next piece of the body, decoded (at most ``max_bytes`` of it); ``b""`` at its end, when
        the connection is released. ``TimeoutError`` once ``deadline`` has passed, even while bytes
        keep coming."""
        conn = self._conn
        if conn is None:
            return b""
        d = self._decoder
        try:
            if conn.loop.time() >= deadline:
                raise TimeoutError
            while True:
                if d is not None and d.unconsumed_tail:  # input the last piece's bound left over
                    data = d.decompress(d.unconsumed_tail, max_bytes)
                elif conn.chunks:
                    data = conn.take()
                    if d is not None:
                        self._decoded = True
                        data = d.decompress(data, max_bytes)
                elif conn.complete:
                    data = b"" if d is None else self._decoded_end(conn, d)
                    self._release()
                    return data
                else:
                    if self.before_wait is not None:
                        hook, self.before_wait = self.before_wait, None
                        hook()
                    await conn.wait(deadline)
                    continue
                if data:  # compressed input may decode to nothing yet (a gzip header alone)
                    return data
        except zlib.error as e:  # callers handle transport failures, not the decoder's own errors
            conn.close()  # nor is the connection reused, even if the body's framing was sound
            self.close()
            raise TransportError(f"the upstream's compressed answer is corrupt ({e})") from e
        except BaseException:
            self.close()
            raise

    def _decoded_end(self, conn: _Connection, d: zlib._Decompress) -> bytes:
        """The last of the decoded body, at its end: the compressed stream must have ended too (an
        empty body, sent with a content-encoding all the same, has none to end)."""
        rest = d.flush()
        if self._decoded and not d.eof:
            conn.close()  # an answer cut short is not trusted, nor its connection reused
            raise TransportError("the upstream's compressed answer was cut short")
        return rest

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.release(conn)

    def close(self) -> None:
        """Abandon the answer: an unfinished one closes its connection (the provider stops working)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            if not conn.complete:
                conn.close()
            self._pool.release(conn)


def _decoder(encoding: bytes) -> zlib._Decompress | None:
    if encoding in (b"identity", b""):
        return None
    if encoding in (b"gzip", b"x-gzip", b"deflate"):
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
    raise TransportError(f"the upstream used an unsupported content-encoding ({encoding.decode('latin-1')})")


class ConnectionPool:
    """Keep-alive connections to one origin, at most ``max_connections`` open or opening at once."""

    def __init__(
        self,
        origin: Origin,
        *,
        max_connections: int,
        connect_timeout_s: float,
        read_timeout_s: float,
        keepalive_s: float = 15.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.origin = origin
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout_s
        self.read_timeout = read_timeout_s
        self.keepalive = keepalive_s
        self._idle: list[_Connection] = []
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._ssl = (ssl_context or ssl.create_default_context()) if origin.https else None
        self._closed = False

    @property
    def open_connections(self) -> int:
        return self._open

    async def post(self, path: str, head: bytes, body: bytes, deadline: float) -> Reply:
        """Send one POST (``head``: the header lines after Host, each ending in CRLF) and wait for the
        answer's status and headers. Raises ``ConnectFailed`` (nothing was sent), ``PoolBusy`` (no
        connection became free, nothing was sent), ``TransportError`` or ``TimeoutError``."""
        o = self.origin
        target = o.prefix + path + ("?" + o.query if o.query else "")
        # built before a connection is taken: a target that cannot be encoded holds none
        request = b"POST %s HTTP/1.1\r\nhost: %s\r\n%scontent-length: %d\r\n\r\n" % (
            target.encode("latin-1"),
            o.host_header.encode("latin-1"),
            head,
            len(body),
        )
        conn = await self._acquire(deadline)
        try:
            conn.send(request, body)
            while not conn.headers_done:
                await conn.wait(deadline)
            return Reply(self, conn)
        except BaseException:
            conn.close()
            self.release(conn)
            raise

    async def _acquire(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        while True:
            if self._closed:
                raise ConnectFailed("the upstream client is closed")
            now = loop.time()
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed and now - conn.idle_since < self.keepalive:
                    return conn
                conn.close()
                self._forget()
            if self._open < self.max_connections:
                self._open += 1
                try:
                    return await self._connect(loop, deadline)
                except BaseException:
                    self._forget()
                    raise
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except BaseException as e:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # pass on the turn this caller no longer takes
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
                if isinstance(e, TimeoutError):
                    busy = f"all {self.max_connections} connections to {self.origin.host} stayed busy"
                    raise PoolBusy(busy) from e
                raise

    async def _connect(self, loop: asyncio.AbstractEventLoop, deadline: float) -> _Connection:
        o = self.origin
        timeout = min(self.connect_timeout, deadline - loop.time())
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop, self.read_timeout, tls=o.https),
                    o.host,
                    o.port,
                    ssl=self._ssl,
                    server_hostname=o.host if o.https else None,
                )
        except TimeoutError as e:
            raise ConnectFailed(f"connecting to {o.host}:{o.port} timed out") from e
        except (OSError, ssl.SSLError) as e:
            raise ConnectFailed(f"connecting to {o.host}:{o.port} failed ({type(e).__name__})") from e
        return conn

    def release(self, conn: _Connection) -> None:
        """Take a connection back after its call: kept for the next one when its answer ended cleanly."""
        if not conn.busy:
            return
        conn.busy = False
        if conn.reusable and not self._closed:
            if conn.buffered:  # an answer left unread may have paused reading: the next call's would stall
                conn.drop_unread()
            conn.idle_since = conn.loop.time()
            self._idle.append(conn)
        else:
            conn.close()
            self._forget()
            return
        self._wake_one()

    def _forget(self) -> None:
        self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)
                return

    async def aclose(self) -> None:
        """Close idle connections now and the busy ones as they are released."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
            self._open -= 1
        for w in self._waiters:
            if not w.done():
                w.set_result(None)
        self._waiters.clear()
