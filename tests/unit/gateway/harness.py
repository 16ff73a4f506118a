"""Test harness for the gateway: in-memory fakes of its components, a live uvicorn server in a
thread, and a misbehaving upstream server (refuses, hangs, 5xx, garbage, truncates, drips)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from bastion.config import Settings, load_settings
from bastion.domain.access import Decision, Operation, Resource
from bastion.domain.events import AuditEvent
from bastion.domain.identity import Authentication, AuthMethod, KeyScope, Principal, PrincipalKind, Role
from bastion.errors import AuthenticationError, StoreError
from bastion.gateway import GatewayApp, GatewayComponents, create_gateway
from support.net import free_port, serve


def principal(pid: str, *roles: Role, team: str | None = None) -> Principal:
    return Principal(id=pid, kind=PrincipalKind.USER, name=pid, roles=frozenset(roles), team=team)


@dataclass
class FakeAuthenticator:
    keys: dict[str, Authentication] = field(default_factory=dict)
    store_down: bool = False

    def add(self, key: str, p: Principal, scope: KeyScope = KeyScope()) -> str:
        self.keys[key] = Authentication(
            principal=p, method=AuthMethod.API_KEY, key_id=f"kid-{key}", scope=scope
        )
        return key

    async def authenticate(self, credential: str, client_ip: str) -> Authentication:
        if self.store_down:
            raise StoreError("database down")
        try:
            return self.keys[credential]
        except KeyError:
            raise AuthenticationError("unknown key") from None

    async def authenticate_certificate(self, der: bytes, client_ip: str) -> Authentication:
        raise AuthenticationError("no client certificates in this harness")


class FakeAuthorizer:
    """Deny by default; users/ML engineers invoke shared and own-team models; ML engineers get logprobs."""

    def is_authorized(
        self, principal: Principal, operation: Operation, resource: Resource, *, scope: KeyScope | None = None
    ) -> Decision:
        roles = principal.roles
        if scope and scope.models and resource.type == "model" and resource.id not in scope.models:
            return Decision(False, ("key-scope",), ("key limited",))
        if Role.ADMIN in roles:
            return Decision(True, ("admin",))
        team = resource.attributes.get("team")
        if operation is Operation.MODEL_LIST:
            return Decision(bool(roles), ("list",))
        if operation is Operation.MODEL_INVOKE and roles & {Role.USER, Role.ML_ENGINEER}:
            ok = team == "shared" or (team is not None and team == principal.team)
            return Decision(ok, ("invoke",), () if ok else ("not your team's model",))
        if operation is Operation.MODEL_LOGPROBS and Role.ML_ENGINEER in roles:
            return Decision(True, ("logprobs",))
        return Decision(False, ("deny-by-default",), ("no policy permits this",))


@dataclass
class MemoryAudit:
    events: list[AuditEvent] = field(default_factory=list)
    fail: bool = False
    attempts: int = 0  # writes asked for, failed ones included

    async def arecord(self, event: AuditEvent) -> object:
        self.attempts += 1
        if self.fail:
            raise StoreError("ledger down")
        await asyncio.sleep(0)
        self.events.append(event)
        return len(self.events)

    def wait_for(self, n: int, timeout: float = 5.0) -> list[AuditEvent]:
        deadline = time.monotonic() + timeout
        while len(self.events) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.events)


@dataclass
class Ready:
    ok: bool = True

    async def ready(self) -> bool:
        return self.ok


@dataclass
class Live:
    url: str
    app: GatewayApp
    auth: FakeAuthenticator
    audit: MemoryAudit
    ready: Ready
    clients: dict[str, Any] = field(default_factory=dict)

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def openai(self, key: str) -> Any:
        """An openai SDK client for ``key`` (no retries), closed when the gateway stops."""
        import openai

        if key not in self.clients:
            self.clients[key] = openai.OpenAI(base_url=self.v1, api_key=key, max_retries=0, timeout=10)
        return self.clients[key]


def gateway_settings(**gateway: Any) -> Settings:
    return load_settings(None, gateway=gateway)


def asgi_scope(
    path: str,
    *,
    method: str = "POST",
    headers: Sequence[tuple[bytes, bytes]] = (),
    client: str = "127.0.0.1",
) -> dict[str, Any]:
    """The ASGI HTTP scope of ``method path`` with ``headers``, for tests that call the app directly."""
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": list(headers),
        "client": (client, 5555),
        "server": ("127.0.0.1", 8000),
        "scheme": "http",
        "http_version": "1.1",
        "asgi": {"version": "3.0"},
        "root_path": "",
    }


def post_scope(path: str, key: str = "k") -> dict[str, Any]:
    """The ASGI scope of a JSON ``POST path`` with bearer ``key``, for tests that call the app directly."""
    auth = (b"authorization", b"Bearer " + key.encode())
    return asgi_scope(path, headers=[auth, (b"content-type", b"application/json")])


def direct_gateway(settings: Settings, **components: Any) -> tuple[GatewayApp, MemoryAudit]:
    """The gateway app for tests that call it as ASGI directly: key ``k`` is an admin's, the ledger
    is a :class:`MemoryAudit` (returned too); ``components`` adds others (``content=…``)."""
    auth, audit = FakeAuthenticator(), MemoryAudit()
    auth.add("k", principal("p", Role.ADMIN))
    comps = GatewayComponents(
        authenticator=auth, authorizer=FakeAuthorizer(), audit=audit, readiness=Ready(), **components
    )
    return create_gateway(settings, comps), audit


@contextlib.contextmanager
def live_gateway(settings: Settings, **components: Any) -> Iterator[Live]:
    auth, audit, ready = FakeAuthenticator(), MemoryAudit(), Ready()
    comps = GatewayComponents(
        authenticator=auth, authorizer=FakeAuthorizer(), audit=audit, readiness=ready, **components
    )
    app = create_gateway(settings, comps)
    with serve(app) as url:
        live = Live(url, app, auth, audit, ready)
        try:
            yield live
        finally:
            for c in live.clients.values():
                c.close()


# -- a misbehaving upstream -------------------------------------------------------------------------

CHAT_OK = (
    b'{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"fine"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}'
)


def _chunk(text: str) -> bytes:
    return (
        b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,'
        b'"delta":{"content":"' + text.encode() + b'"},"finish_reason":null}]}\n\n'
    )


class BadUpstream:
    """A raw asyncio HTTP server; the first path segment picks the misbehaviour.

    ok, fail500, garbage, hang, truncate, drip, slowstream, sse (a whole stream in one write), sse2 (in two), cookie
    (ok, setting a cookie), status<N>.
    ``closed`` counts connections that the gateway closed while the server was still sending
    (cancellation reached upstream). ``heads`` holds each request's header block.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[tuple[str, bytes]] = []
        self.heads: list[str] = []
        self.closed_early = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = threading.Event()

    def base(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mode}/v1"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self._server = server
        self._started.set()
        self._loop.run_forever()

    def __enter__(self) -> BadUpstream:
        self._thread.start()
        self._started.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        async def shutdown() -> None:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                length = 0
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                self.requests.append((path, body))
                self.heads.append(head.decode("latin-1"))
                mode = path.strip("/").split("/")[0]
                if not await self._respond(mode, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
                await writer.wait_closed()

    async def _respond(self, mode: str, w: asyncio.StreamWriter) -> bool:
        def head(status: int, ctype: str, length: int | None, extra: str = "") -> bytes:
            h = f"HTTP/1.1 {status} X\r\ncontent-type: {ctype}\r\n{extra}"
            h += f"content-length: {length}\r\n" if length is not None else "connection: close\r\n"
            return (h + "\r\n").encode()

        if mode == "ok":
            w.write(head(200, "application/json", len(CHAT_OK)) + CHAT_OK)
        elif mode == "cookie":
            cookie = "set-cookie: __session=caller-a; Path=/\r\n"
            w.write(head(200, "application/json", len(CHAT_OK), cookie) + CHAT_OK)
        elif mode == "fail500":
            body = b'{"error":{"message":"boom sk-secret-provider-key"}}'
            w.write(head(500, "application/json", len(body)) + body)
        elif mode.startswith("status"):
            status = int(mode[6:])
            body = b'{"error":{"message":"upstream says no","type":"x"}}'
            w.write(head(status, "application/json", len(body), "retry-after: 7\r\n") + body)
        elif mode == "garbage":
            w.write(head(200, "application/json", 9) + b"not json!")
        elif mode == "hang":
            await asyncio.sleep(3600)
        elif mode == "truncate":
            w.write(head(200, "text/event-stream", None) + _chunk("Hello") + _chunk(" wor"))
            await w.drain()
            return False
        elif mode == "drip":
            w.write(head(200, "text/event-stream", None))
            await w.drain()
            for b in _chunk("drip") * 100:
                w.write(bytes([b]))
                await w.drain()
                await asyncio.sleep(0.2)
            return False
        elif mode == "sse":
            body = _chunk("Hello") + _chunk(" world") + b"data: [DONE]\n\n"
            w.write(head(200, "text/event-stream", len(body)) + body)
        elif mode == "sse2":  # the first event, then the rest with [DONE] in a second write
            w.write(head(200, "text/event-stream", None) + _chunk("Hello"))
            await w.drain()
            await asyncio.sleep(0.02)
            w.write(_chunk(" world") + _chunk("!") + b"data: [DONE]\n\n")
            await w.drain()
            return False
        elif mode == "slowstream":
            w.write(head(200, "text/event-stream", None))
            try:
                for i in range(200):
                    w.write(_chunk(f"part{i} "))
                    await w.drain()
                    await asyncio.sleep(0.05)
            except ConnectionError:
                self.closed_early += 1
                return False
            w.write(b"data: [DONE]\n\n")
            return False
        await w.drain()
        return True
