"""Review 4: cancellation events, key-scope narrowing, the Redis release script, token charges
without usage, upload slots, guard scan timeouts and the scrubbing of provider error messages.

Each test asserts the SAFE behaviour; the defects found are strict xfails naming file:line. Redis
tests run when BASTION_TEST_REDIS_URL is set (unique key names per test).
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import uuid
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from bastion.config import LimitSet, LimitsSettings
from bastion.detectors.interface import Direction, ScanContext
from bastion.domain.events import AuditEvent
from bastion.domain.findings import Finding
from bastion.errors import LimitExceeded, UpstreamError
from bastion.gateway import GatewayApp
from bastion.gateway.provider_errors import scrub_credentials
from bastion.gateway.upstream import UpstreamReply
from bastion.services.guard import SCAN_TIMEOUT
from bastion.services.limits import LimitService, Subject

from .test_gateway_review3_support import (
    Answer,
    Gw,
    ScriptedUpstream,
    acall,
    attrs,
    body_of,
    build,
    chat_reply,
    drive,
    run_session,
    scope,
    settings,
    text_stream,
)
from .test_guard_scan_timeout import guards

BIG = "lorem ipsum dolor " * 1_200  # 21 600 characters: scanned in a worker thread
BIG_PROMPT = "please summarise this report. " * 300  # 9000 characters
DENY = "project zeus"
GUARDS: dict[str, Any] = {
    "input": ["denylist"],
    "output": ["denylist"],
    "options": {"denylist": {"terms": [DENY]}},
}
ONE = {"concurrent": 1}
WIDE = 10**6


def redis_url() -> str:
    url = os.environ.get("BASTION_TEST_REDIS_URL")
    if not url:
        pytest.skip("BASTION_TEST_REDIS_URL is not set")
    return url


async def until(flag: threading.Event | asyncio.Event, timeout: float = 5.0) -> None:
    """Wait (bounded) for ``flag``, a thread's event or the loop's."""

    async def poll() -> None:
        while not flag.is_set():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


async def charged(gw: Gw, ident: str = "alice") -> int:
    """What the principal token window (``tokens_per_minute`` WIDE) of ``ident`` has counted."""
    lim = gw.app.gateway.limits
    return int(await lim._storage.get(lim._item("minute", WIDE).key_for("tok", "principal", ident)))


def slots(gw: Gw) -> tuple[dict[str, int], dict[str, int]]:
    """(uploads, concurrency slots) held in this process."""
    lim = gw.app.gateway.limits
    return dict(lim._uploads), dict(lim._concurrent)


# -- a caller whose body arrives in parts ----------------------------------------------------------


@dataclass
class Body:
    """A request body sent in ``parts``; then ``end``: complete, stall (never finishes) or disconnect.
    ``waiting`` is set once every part was read and the gateway asks for more."""

    parts: list[bytes]
    end: str = "complete"
    waiting: asyncio.Event = field(default_factory=asyncio.Event)


async def send_body(
    app: GatewayApp, body: Body, *, key: str = "alice-key", cancel_when: asyncio.Event | None = None
) -> Answer:
    parts = list(body.parts)

    async def receive() -> dict[str, Any]:
        if parts:
            part = parts.pop(0)
            return {"type": "http.request", "body": part, "more_body": bool(parts) or body.end != "complete"}
        body.waiting.set()
        if body.end == "disconnect":
            return {"type": "http.disconnect"}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return await drive(app, scope(key), receive, cancel_when)


def js(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload)


# == 4. upload slots ==================================================================================

#: (name, body, expected status; 0: no answer, the task was cancelled)
UPLOAD_EXITS: list[tuple[str, Body, int]] = [
    ("ok", Body([js(body_of())]), 200),
    ("ok-in-parts", Body([b'{"model":"m",', b'"messages":[{"role":"user","content":"hi"}]}']), 200),
    ("too-large", Body([b"{" + b" " * 700, b" " * 700]), 413),
    ("bad-json", Body([b"{"]), 400),
    ("unknown-model", Body([js({**body_of(), "model": "nope"})]), 404),
    ("input-blocked", Body([js(body_of([{"role": "user", "content": DENY}]))]), 400),
    ("disconnect", Body([b'{"model":'], end="disconnect"), 0),
    ("body-timeout", Body([b'{"model":'], end="stall"), 408),
    ("cancel", Body([b'{"model":'], end="stall"), 0),
]


@pytest.mark.parametrize(("name", "body", "status"), UPLOAD_EXITS, ids=[e[0] for e in UPLOAD_EXITS])
def test_an_upload_slot_is_given_back_on_every_exit(name: str, body: Body, status: int) -> None:
    """Key, principal and team each allow ONE call (upload) at a time: after the exit, no upload or
    concurrency slot is held, the call has exactly one event, and the next call is admitted."""
    cfg = {"per_key": ONE, "per_principal": ONE, "per_team": ONE}
    s = settings(guards=GUARDS, limits=cfg, server={"max_body_bytes": 1024, "body_timeout_s": 0.1})
    gw = build(s)

    async def go(gw: Gw) -> tuple[Answer, tuple[dict[str, int], dict[str, int]], int, Answer]:
        b = Body(list(body.parts), body.end)
        a = await send_body(gw.app, b, cancel_when=b.waiting if name == "cancel" else None)
        return a, slots(gw), len(gw.events()), await acall(gw.app, body_of())

    a, held, n, nxt = run_session(gw, go)
    assert a.status == status and a.cancelled == (name == "cancel")
    assert held == ({}, {})
    assert n == 1
    assert nxt.status == 200
    first = gw.events()[0]
    if status == 0:
        assert first.outcome == "cancelled" and attrs(first)["status"] == 499


def test_bodies_still_arriving_count_against_the_concurrency_limit() -> None:
    """per_key concurrent 1: while alice-key's body is arriving, a second alice-key call is refused
    (429, Retry-After 1, naming uploads); another key is not; once the first caller leaves, the key
    is admitted again. One event per call."""
    gw = build(settings(limits={"per_key": ONE}))

    async def go(gw: Gw) -> list[Answer]:
        slow = Body([b'{"model":"m",'], end="disconnect")
        gate = asyncio.Event()

        async def leave_later() -> dict[str, Any]:
            await gate.wait()
            return {"type": "http.disconnect"}

        first_sent: list[MutableMapping[str, Any]] = []
        parts = list(slow.parts)

        async def receive() -> dict[str, Any]:
            if parts:
                return {"type": "http.request", "body": parts.pop(0), "more_body": True}
            slow.waiting.set()
            return await leave_later()

        async def send(msg: MutableMapping[str, Any]) -> None:
            first_sent.append(msg)

        first = asyncio.ensure_future(gw.app(scope("alice-key"), receive, send))
        await until(slow.waiting)
        second = await acall(gw.app, body_of())
        other = await acall(gw.app, body_of(), key="alice-key2")
        gate.set()
        await first
        return [second, other, await acall(gw.app, body_of())]

    second, other, again = run_session(gw, go)
    assert second.status == 429 and second.headers[b"retry-after"] == b"1"
    assert "uploads" in second.json()["error"]["message"]
    assert (other.status, again.status) == (200, 200)
    assert len(gw.events()) == 4
    assert slots(gw) == ({}, {})


# == 1. cancellation at each await point: exactly one event, nothing held ==========================


class Gate:
    """A detector that waits (in its worker thread) on ``release`` over any text over 16 KiB."""

    name = "gate"
    directions = frozenset({Direction.INPUT, Direction.OUTPUT})

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.returned = threading.Event()

    def scan(self, text: str, context: ScanContext) -> Sequence[Finding]:
        if len(text) > 16_384:
            self.started.set()
            self.release.wait(10)
            self.returned.set()
        return ()


class SlowCharge(LimitService):
    """Charging tokens never finishes (a store that stopped answering mid-call)."""

    def __init__(self, settings: LimitsSettings) -> None:
        super().__init__(settings)
        self.charging = asyncio.Event()

    async def charge_tokens(self, subject: Subject, tokens: int) -> bool:
        self.charging.set()
        await asyncio.Event().wait()
        return True


POINTS = ["body", "input-scan", "upstream-unary", "upstream-stream-open", "charge-unary", "ledger-unary"]


@pytest.mark.parametrize("point", POINTS)
def test_a_call_cancelled_at_any_await_point_has_exactly_one_event(
    point: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    det = Gate()
    limits_cfg = LimitsSettings(
        per_key=LimitSet(concurrent=1), per_principal=LimitSet(tokens_per_minute=WIDE)
    )
    extra: dict[str, Any] = {}
    gcfg: dict[str, Any] = {}
    if point == "input-scan":
        gcfg, extra["guards"] = guards(det, "input", timeout=30)
    if point == "charge-unary":
        extra["limits"] = SlowCharge(limits_cfg)
    up = ScriptedUpstream(
        unary_hangs=point == "upstream-unary", opening_hangs=point == "upstream-stream-open"
    )
    s = settings(guards=gcfg, limits=limits_cfg.model_dump())
    gw = build(s, up, **extra)
    gate = asyncio.Event()
    entered = asyncio.Event()
    if point == "ledger-unary":
        original = gw.audit.arecord

        async def gated(event: AuditEvent) -> object:
            entered.set()
            await gate.wait()
            return await original(event)

        monkeypatch.setattr(gw.audit, "arecord", gated)

    async def go(gw: Gw) -> tuple[Answer, tuple[dict[str, int], dict[str, int]]]:
        prompt = BIG if point == "input-scan" else "hi"
        payload = js(body_of([{"role": "user", "content": prompt}], stream=point == "upstream-stream-open"))
        body = Body([payload[:10]], end="stall") if point == "body" else Body([payload])
        signal = asyncio.Event()

        async def arm() -> None:
            if point == "body":
                await until(body.waiting)
            elif point == "input-scan":
                await until(det.started)
            elif point.startswith("upstream"):
                await until(up.hanging)
            elif point == "charge-unary":
                assert isinstance(extra["limits"], SlowCharge)
                await until(extra["limits"].charging)
            else:
                await until(entered)
            signal.set()

        armer = asyncio.ensure_future(arm())
        try:
            a = await send_body(gw.app, body, cancel_when=signal)
        finally:
            det.release.set()
            gate.set()
            await armer
        if point == "input-scan":
            await until(det.returned)
        await asyncio.wait_for(_events_at_least(gw, 1), 5)  # (a cancelled ledger write goes on)
        return a, slots(gw)

    a, held = run_session(gw, go)
    assert a.cancelled
    ev = gw.one_event()
    assert held == ({}, {})
    if point == "ledger-unary":  # the event was handed to the ledger before the cancellation
        return
    assert ev.outcome == "cancelled" and attrs(ev)["status"] == 499
    if point == "charge-unary":  # the provider answered: the event still says what it used
        assert attrs(ev)["tokens"] == {"prompt": 5, "completion": 7}
    else:
        assert "tokens" not in attrs(ev)


async def _events_at_least(gw: Gw, n: int) -> None:
    while len(gw.events()) < n:
        await asyncio.sleep(0.005)


# == 3. charges: once, estimated without usage, never for calls the provider did not answer ========


def test_a_unary_call_without_usage_is_charged_its_estimate_exactly_once() -> None:
    reply = chat_reply("fine " * 40, usage=None)
    up = ScriptedUpstream(reply=UpstreamReply(200, reply))
    gw = build(settings(limits={"per_key": {}, "per_principal": {"tokens_per_minute": WIDE}}), up)
    payload = js(body_of([{"role": "user", "content": BIG_PROMPT}]))

    async def go(gw: Gw) -> int:
        a = await acall(gw.app, payload)
        assert a.status == 200
        return await charged(gw)

    prompt, completion = math.ceil(len(payload) / 4), math.ceil(len(reply) / 4)
    assert run_session(gw, go) == prompt + completion
    assert attrs(gw.one_event())["tokens"] == {"prompt": prompt, "completion": completion, "estimated": True}


@pytest.mark.parametrize(
    "case",
    ["input-blocked", "upstream-400-unary", "upstream-400-stream", "upstream-down", "input-scan-timeout"],
)
def test_a_call_the_provider_never_answered_is_not_charged(case: str) -> None:
    det = Gate()
    extra: dict[str, Any] = {}
    gcfg: dict[str, Any] = GUARDS
    if case == "input-scan-timeout":
        gcfg, extra["guards"] = guards(det, "input", timeout=0.05)
    bad = UpstreamReply(400, b'{"error":{"message":"no"}}')
    down = UpstreamError("the upstream cannot be reached", status=502)
    up = ScriptedUpstream(reply=bad, stream_status=bad, raises=down if case == "upstream-down" else None)
    lim = {"per_key": {}, "per_principal": {"tokens_per_minute": WIDE}}
    gw = build(settings(guards=gcfg, limits=lim), up, **extra)
    prompt = {"input-blocked": DENY, "input-scan-timeout": BIG}.get(case, "hi")

    async def go(gw: Gw) -> tuple[Answer, int]:
        try:
            a = await acall(
                gw.app, body_of([{"role": "user", "content": prompt}], stream=case.endswith("stream"))
            )
        finally:
            det.release.set()
        return a, await charged(gw)

    a, n = run_session(gw, go)
    assert a.status in (400, 502)
    assert n == 0
    assert "tokens" not in attrs(gw.one_event())
    if case.startswith("input"):
        assert up.bodies == []


def test_a_usage_without_prompt_tokens_still_charges_the_prompt() -> None:
    body = orjson.loads(chat_reply("ok", usage=None))
    body["usage"] = {"completion_tokens": 7}
    up = ScriptedUpstream(reply=UpstreamReply(200, orjson.dumps(body)))
    gw = build(settings(limits={"per_key": {}, "per_principal": {"tokens_per_minute": WIDE}}), up)

    async def go(gw: Gw) -> int:
        await acall(gw.app, body_of([{"role": "user", "content": BIG_PROMPT}]))
        return await charged(gw)

    assert run_session(gw, go) >= len(BIG_PROMPT) // 8


# == 5. scan timeouts ==================================================================================


def test_a_stream_scan_that_times_out_leaks_nothing_once_its_thread_finishes() -> None:
    """The worker thread of a timed-out stream scan finishes later: the caller got nothing of that
    event and no [DONE], the call has one blocked event (guard error), and nothing is added after."""
    det = Gate()
    cfg, svc = guards(det, "output", timeout=0.05)
    up = ScriptedUpstream(events=text_stream(["head ", BIG, " tail"]))
    gw = build(settings(guards=cfg), up, guards=svc)

    async def go(gw: Gw) -> tuple[Answer, int]:
        try:
            a = await acall(gw.app, body_of(stream=True))
        finally:
            det.release.set()
        await until(det.returned)
        await asyncio.sleep(0.05)  # (the thread's last steps after the detector returned)
        return a, len(gw.events())

    a, n = run_session(gw, go)
    assert det.started.is_set()
    assert not a.done()
    assert BIG[:64] not in a.body.decode() and "tail" not in a.text()
    assert n == 1
    ev = gw.one_event()
    assert ev.outcome == "blocked"
    assert attrs(ev)["guards"]["output"] == "error"
    assert f"{SCAN_TIMEOUT}:error:block" in attrs(ev)["reasons"]


# == 2. key-scope narrowing and the Redis release script =============================================


def key_limits(cfg: LimitSet, rpm: int | None, tpm: int | None) -> LimitSet:
    svc = LimitService(LimitsSettings(per_key=cfg))
    s = Subject(key_id="k", principal_id="p", key_requests_per_minute=rpm, key_tokens_per_minute=tpm)
    return next(sc for sc in svc._scopes(s) if sc.kind == "key").limits


@pytest.mark.parametrize(
    ("configured", "scoped", "expected"),
    [(None, None, None), (None, 5, 5), (100, None, 100), (100, 5, 5), (5, 100, 5), (7, 7, 7)],
)
def test_a_key_scope_only_narrows_the_per_key_limit(
    configured: int | None, scoped: int | None, expected: int | None
) -> None:
    lim = key_limits(
        LimitSet(requests_per_minute=configured, tokens_per_minute=configured, concurrent=3), scoped, scoped
    )
    assert (lim.requests_per_minute, lim.tokens_per_minute, lim.concurrent) == (expected, expected, 3)


def test_a_key_scope_with_one_limit_keeps_the_other_configured() -> None:
    lim = key_limits(LimitSet(requests_per_minute=100, tokens_per_minute=1000), 5, None)
    assert (lim.requests_per_minute, lim.tokens_per_minute) == (5, 1000)


def test_a_key_scope_of_zero_never_removes_the_per_key_limit() -> None:
    lim = key_limits(LimitSet(requests_per_minute=100, tokens_per_minute=1000), 0, 0)
    assert lim.requests_per_minute and lim.requests_per_minute <= 100
    assert lim.tokens_per_minute and lim.tokens_per_minute <= 1000


def test_redis_slots_are_per_lease_and_lapse_when_their_holder_died() -> None:
    """Two slots taken, a third refused, each slot a member with the TTL on the set; releasing each
    lease twice gives back exactly its own slot once; a slot whose holder died (its score long past)
    is purged by the next entry instead of holding the key forever."""
    url = redis_url()

    async def go() -> list[object]:
        svc = LimitService(LimitsSettings(storage="redis", redis_url=url, per_key=LimitSet(concurrent=2)))
        assert svc._redis is not None
        r = svc._redis
        s = Subject(key_id=uuid.uuid4().hex, principal_id=uuid.uuid4().hex)
        kk = f"bastion:slots:key:{s.key_id}"
        out: list[object] = []
        try:
            leases = [await svc.acquire(s), await svc.acquire(s)]
            with pytest.raises(LimitExceeded):
                await svc.acquire(s)
            out += [await r.zcard(kk), 0 < await r.ttl(kk) <= 600]
            for lease in leases:
                await lease.release()
                await lease.release()  # a second release gives nothing back
            out.append(await r.zcard(kk))
            await r.zadd(kk, {"dead-replica-1": 1.0, "dead-replica-2": 2.0})  # lapsed long ago
            again = [await svc.acquire(s), await svc.acquire(s)]
            out.append(await r.zcard(kk))
            for lease in again:
                await lease.release()
        finally:
            await r.delete(kk)
            await svc.close()
        return out

    assert asyncio.run(go()) == [2, True, 0, 2]


def test_a_late_release_never_frees_another_calls_slot() -> None:
    url = redis_url()

    async def go() -> bool:
        svc = LimitService(LimitsSettings(storage="redis", redis_url=url, per_key=LimitSet(concurrent=1)))
        s = Subject(key_id=uuid.uuid4().hex, principal_id=uuid.uuid4().hex)
        assert svc._redis is not None
        try:
            long_call = await svc.acquire(s)
            await svc._redis.delete(f"bastion:slots:key:{s.key_id}")  # its TTL ran out
            second = await svc.acquire(s)  # admitted: the only slot is now the second call's
            await long_call.release()  # late
            try:
                third = await svc.acquire(s)
            except LimitExceeded:
                return True
            await third.release()
            await second.release()
            return False
        finally:
            await svc._redis.delete(f"bastion:slots:key:{s.key_id}")
            await svc.close()

    assert asyncio.run(go())


# == errors: a database outage is an error, not a denial =============================================


def test_a_database_outage_is_a_503_recorded_as_an_error() -> None:
    gw = build()
    gw.auth.store_down = True

    async def go(gw: Gw) -> Answer:
        return await acall(gw.app, body_of())

    a = run_session(gw, go)
    assert a.status == 503 and a.json()["error"]["code"] == "service_unavailable"
    ev = gw.one_event()
    assert ev.outcome == "error" and attrs(ev)["status"] == 503


# == 6. provider error messages =======================================================================

AWS = "AKIAQWERTYUIOPASDFGH"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
GH = "ghp_" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6"
SECRETS = [AWS, JWT, GH, "hunter2-Secret"]
TOKEN = "Zq8vN2rT5wY1uE4oP7aS0dF3gH6jK9lX"  # high entropy: a generic secret when assigned to a key name


def test_secrets_in_a_relayed_provider_message_are_masked_and_the_rest_kept() -> None:
    msg = (
        f"Invalid request: key {AWS} and token {JWT} rejected; repo token {GH}; "
        "db postgres://app:hunter2-Secret@db.internal:5432/x unreachable (see https://platform.example/docs)"
    )
    reply = UpstreamReply(400, orjson.dumps({"error": {"message": msg, "type": "invalid_request_error"}}))
    gw = build(up=ScriptedUpstream(reply=reply))

    async def go(gw: Gw) -> Answer:
        return await acall(gw.app, body_of())

    a = run_session(gw, go)
    assert a.status == 400
    text = a.json()["error"]["message"]
    assert not [s for s in SECRETS if s in text]
    assert text.startswith("Invalid request: key [redacted] and token [redacted] rejected")
    assert "db.internal:5432/x unreachable (see https://platform.example/docs)" in text


ORDINARY = [
    "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
    "Rate limit reached for gpt-4o in organization org-AbCdEf123456 on tokens per min (TPM): Limit 30000, "
    "Used 29000, Requested 2000. Please try again in 2.5s.",
    "Invalid value for 'model': 'gpt-4o-mini-2024-07-18'. See https://platform.openai.com/docs/models",
    "messages.0.content.0.image.source.base64.data: Image does not match the provided media type image/png",
    "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
    "request req_6f1c2d3e4b5a69788796a5b4c3d2e1f0 failed: contact help@example.com or http://localhost:11434",
    "Invalid 'messages[1].content': string too long. Expected a maximum length of 1048576, got 2000000.",
]


@pytest.mark.parametrize("msg", ORDINARY)
def test_an_ordinary_provider_message_is_relayed_unchanged(msg: str) -> None:
    assert scrub_credentials(msg, "sk-upstream-secret-0123456789") == msg


def test_the_upstreams_own_key_is_masked_wherever_it_appears() -> None:
    key = "0123456789abcdef0123456789abcdef"  # an Azure-style key: no prefix any pattern knows
    out = scrub_credentials(f"key {key} is invalid; got '{key}'", key)
    assert key not in out and out == "key [redacted] is invalid; got '[redacted]'"


@pytest.mark.parametrize(
    "hostile",
    [
        "eyJ" * 667,
        "AKIA" * 500,
        "sk-" + "a" * 1997,
        ("token: '" + TOKEN + "' ") * 40,
        "postgres://u:" + "p" * 120 + "@" + "h" * 1800,
        "Bearer " * 286,
    ],
    ids=["jwt-heads", "aws-heads", "one-long-key", "generic-secrets", "huge-uri", "bearers"],
)
def test_a_hostile_long_message_is_scrubbed_and_cut(hostile: str) -> None:
    """(The scrub runs on the event loop over at most 2000 characters: RE2, linear.)"""
    reply = UpstreamReply(400, orjson.dumps({"error": {"message": hostile}}))
    gw = build(up=ScriptedUpstream(reply=reply))

    async def go(gw: Gw) -> Answer:
        return await acall(gw.app, body_of())

    a = run_session(gw, go)
    text = a.json()["error"]["message"]
    assert a.status == 400 and len(text) <= 500
    assert TOKEN not in text and "p" * 20 not in text and "a" * 20 not in text


def test_the_word_after_bearer_is_kept_when_it_is_not_a_token() -> None:
    msg = "Invalid Authorization header: use the Bearer scheme with your key"
    assert scrub_credentials(msg) == msg
