"""Review: rate, token and concurrency limits as the gateway applies them (limits.py, pipeline
acquire/charge, the charge after unary and streamed calls).

Each test asserts the SAFE behaviour (the bugs found as strict xfails are fixed). Redis tests run when
BASTION_TEST_REDIS_URL is set (as in test_limits.py).
"""

from __future__ import annotations

import asyncio
import math
import os
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from bastion.config import LimitSet, LimitsSettings
from bastion.domain.identity import KeyScope
from bastion.errors import LimitExceeded, UpstreamError
from bastion.gateway.upstream import UpstreamReply
from bastion.services.limits import Lease, LimitService, Subject

from .test_gateway_review3_support import (
    Answer,
    Gw,
    ScriptedUpstream,
    acall,
    body_of,
    build,
    chat_reply,
    run_session,
    settings,
    text_stream,
)

DENY = "project zeus"
GUARDS: dict[str, Any] = {
    "input": ["denylist"],
    "output": ["secrets", "denylist"],
    "options": {"denylist": {"terms": [DENY]}},
}
LONG = "lorem ipsum dolor sit amet " * 12  # 324 characters
BIG_PROMPT = "please summarise this report. " * 300  # 9000 characters: about 2250 tokens


def redis_url() -> str:
    url = os.environ.get("BASTION_TEST_REDIS_URL")
    if not url:
        pytest.skip("BASTION_TEST_REDIS_URL is not set")
    return url


def limits_cfg(storage: str, **kw: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {"per_key": {}, **kw}
    if storage == "redis":
        cfg.update(storage="redis", redis_url=redis_url())
    return cfg


async def tokens_charged(gw: Gw, kind: str, ident: str, per: str, amount: int) -> int:
    """What the token window of ``kind``/``ident`` (limit ``amount`` per ``per``) has counted."""
    lim = gw.app.gateway.limits
    count = await lim._storage.get(lim._item(per, amount).key_for("tok", kind, ident))
    return int(count)


def retry_after(a: Answer) -> int:
    return int(a.headers[b"retry-after"])


# == tokens: checked before, charged after with real usage =========================================


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_tokens_are_checked_before_and_charged_after_with_the_real_usage(stream: bool) -> None:
    """tokens/min 13, each call uses 5+7 (the provider's usage): the second call is admitted (1 token
    left: a call is not refused for tokens it has not used), both are charged exactly 12, the third is
    refused (429, Retry-After within the minute). Fails if the charge were an estimate (the reply is
    longer than 48 characters), skipped for streams, or checked as 'tokens left >= some guess'."""
    up = ScriptedUpstream(
        reply=UpstreamReply(200, chat_reply("fine", usage=(5, 7))), events=text_stream(["fine"], usage=(5, 7))
    )
    gw = build(settings(limits={"per_key": {}, "per_principal": {"tokens_per_minute": 13}}), up)

    async def go(gw: Gw) -> tuple[list[Answer], int]:
        answers = [await acall(gw.app, body_of(stream=stream)) for _ in range(3)]
        return answers, await tokens_charged(gw, "principal", "alice", "minute", 13)

    (a1, a2, a3), charged = run_session(gw, go)
    assert (a1.status, a2.status, a3.status) == (200, 200, 429)
    assert charged == 24
    assert "token limit" in a3.json()["error"]["message"]
    assert 1 <= retry_after(a3) <= 60


def test_a_day_token_window_gives_a_retry_after_within_the_day() -> None:
    """Fails if the day window's reset were computed as a minute's, or as an absolute time."""
    gw = build(settings(limits={"per_key": {}, "per_team": {"tokens_per_day": 10}}))

    async def go(gw: Gw) -> list[Answer]:
        return [await acall(gw.app, body_of()) for _ in range(2)]

    a1, a2 = run_session(gw, go)
    assert (a1.status, a2.status) == (200, 429)
    assert 60 < retry_after(a2) <= 86_400


def test_a_stream_the_caller_leaves_is_charged_for_the_output_it_produced() -> None:
    """The provider sent 324 characters, then the caller left (no usage ever came): the window is
    charged ceil(324/4) completion tokens, plus the prompt estimated from the request's size. Fails
    if a cancelled stream skipped the charge."""
    up = ScriptedUpstream(events=text_stream([LONG, "more"]), hang_after=1)
    gw = build(
        settings(guards=GUARDS, limits={"per_key": {}, "per_principal": {"tokens_per_minute": 10**6}}), up
    )

    async def go(gw: Gw) -> int:
        a = await acall(gw.app, body_of(stream=True), leave_when=up.hanging)
        assert a.status == 200
        await asyncio.sleep(0.05)
        return await tokens_charged(gw, "principal", "alice", "minute", 10**6)

    prompt = math.ceil(len(orjson.dumps(body_of(stream=True))) / 4)
    assert run_session(gw, go) == math.ceil(len(LONG) / 4) + prompt


@pytest.mark.parametrize(
    "ending", ["stream-caller-leaves", "stream-without-usage", "stream-blocked", "unary-without-usage"]
)
def test_a_call_without_usage_is_charged_at_least_its_prompt(ending: str) -> None:
    if ending == "stream-caller-leaves":
        up = ScriptedUpstream(events=text_stream(["ok", "more"]), hang_after=1)
    elif ending == "stream-without-usage":
        up = ScriptedUpstream(events=text_stream(["ok"]))
    elif ending == "stream-blocked":
        up = ScriptedUpstream(events=text_stream([f"ok {DENY}"], usage=(2250, 3)))
    else:
        up = ScriptedUpstream(reply=UpstreamReply(200, chat_reply("ok", usage=None)))
    gw = build(
        settings(guards=GUARDS, limits={"per_key": {}, "per_principal": {"tokens_per_minute": 10**6}}), up
    )
    stream = ending.startswith("stream")

    async def go(gw: Gw) -> int:
        leave = up.hanging if ending == "stream-caller-leaves" else None
        await acall(
            gw.app, body_of([{"role": "user", "content": BIG_PROMPT}], stream=stream), leave_when=leave
        )
        await asyncio.sleep(0.05)
        return await tokens_charged(gw, "principal", "alice", "minute", 10**6)

    assert run_session(gw, go) >= len(BIG_PROMPT) // 8  # half the usual 4-characters-per-token estimate


def test_a_unary_answer_blocked_by_an_output_guard_is_still_charged() -> None:
    up = ScriptedUpstream(reply=UpstreamReply(200, chat_reply(f"about {DENY}", usage=(500, 20))))
    gw = build(
        settings(guards=GUARDS, limits={"per_key": {}, "per_principal": {"tokens_per_minute": 10**6}}), up
    )

    async def go(gw: Gw) -> int:
        a = await acall(gw.app, body_of())
        assert a.status == 400
        return await tokens_charged(gw, "principal", "alice", "minute", 10**6)

    assert run_session(gw, go) == 520
    assert gw.one_event().attributes["tokens"] == {"prompt": 500, "completion": 20}


# == concurrency slots: released on every exit path ==================================================

#: (name, upstream, stream, prompt, how, ledger fails)
EXITS: list[tuple[str, Callable[[], ScriptedUpstream], bool, str, str, bool]] = [
    ("ok-unary", ScriptedUpstream, False, "hi", "", False),
    ("ok-stream", lambda: ScriptedUpstream(events=text_stream([LONG, "x"])), True, "hi", "", False),
    ("input-block", ScriptedUpstream, False, f"about {DENY}", "", False),
    (
        "output-block-unary",
        lambda: ScriptedUpstream(reply=UpstreamReply(200, chat_reply(DENY))),
        False,
        "hi",
        "",
        False,
    ),
    (
        "output-block-stream",
        lambda: ScriptedUpstream(events=text_stream([LONG, f"x {DENY}"])),
        True,
        "hi",
        "",
        False,
    ),
    ("upstream-500", lambda: ScriptedUpstream(reply=UpstreamReply(500, b"{}")), False, "hi", "", False),
    (
        "upstream-down-unary",
        lambda: ScriptedUpstream(raises=UpstreamError("down", status=502)),
        False,
        "hi",
        "",
        False,
    ),
    (
        "upstream-down-stream",
        lambda: ScriptedUpstream(raises=UpstreamError("down", status=502)),
        True,
        "hi",
        "",
        False,
    ),
    ("stream-503", lambda: ScriptedUpstream(stream_status=UpstreamReply(503, b"{}")), True, "hi", "", False),
    (
        "stream-fails",
        lambda: ScriptedUpstream(events=text_stream([LONG, "x"]), fail_after=1),
        True,
        "hi",
        "",
        False,
    ),
    (
        "stream-truncated",
        lambda: ScriptedUpstream(events=[b'{"choices":[{"index":0,"delta":{"content":"x"}}]}']),
        True,
        "hi",
        "",
        False,
    ),
    (
        "stream-caller-leaves",
        lambda: ScriptedUpstream(events=text_stream([LONG, "x"]), hang_after=1),
        True,
        "hi",
        "leave",
        False,
    ),
    (
        "stream-cancelled",
        lambda: ScriptedUpstream(events=text_stream([LONG, "x"]), hang_after=1),
        True,
        "hi",
        "cancel",
        False,
    ),
    ("unary-cancelled", lambda: ScriptedUpstream(unary_hangs=True), False, "hi", "cancel", False),
    ("stream-opening-cancelled", lambda: ScriptedUpstream(opening_hangs=True), True, "hi", "cancel", False),
    ("gateway-bug", lambda: ScriptedUpstream(raises=RuntimeError("bug")), False, "hi", "", False),
    ("ledger-fails-unary", ScriptedUpstream, False, "hi", "", True),
    ("ledger-fails-stream", lambda: ScriptedUpstream(events=text_stream(["x"])), True, "hi", "", True),
    ("bad-json", ScriptedUpstream, False, "", "raw", False),
]


async def _exit_call(
    gw: Gw, exit_: tuple[str, Callable[[], ScriptedUpstream], bool, str, str, bool]
) -> Answer:
    _name, make, stream, prompt, how, ledger_fails = exit_
    up = make()
    gw.app.gateway.upstreams["demo"] = up
    gw.up = up
    gw.audit.fail = ledger_fails
    payload: dict[str, Any] | bytes = body_of([{"role": "user", "content": prompt}], stream=stream)
    if how == "raw":
        payload = b'{"model": "m", "messages": ['
    try:
        return await acall(
            gw.app,
            payload,
            leave_when=up.hanging if how == "leave" else None,
            cancel_when=up.hanging if how == "cancel" else None,
        )
    finally:
        gw.audit.fail = False


@pytest.mark.parametrize("storage", ["memory", "redis"])
def test_no_concurrency_slot_leaks_on_any_exit_path(storage: str) -> None:
    """Key, principal and team each allow ONE call at a time; every exit path three times over (57
    calls); after each, the slots are free again, and a last ordinary call is admitted. Fails if any
    exit (an error, a block, a cancellation, a failed ledger write, a bug) kept its lease."""
    tag = f"-{uuid.uuid4().hex[:8]}" if storage == "redis" else ""
    one = {"concurrent": 1}
    cfg = limits_cfg(storage, per_key=one, per_principal=one, per_team=one)
    gw = build(settings(guards=GUARDS, limits=cfg), tag=tag)
    keys = [
        f"bastion:slots:key:kid-alice-key{tag}",
        f"bastion:slots:principal:alice{tag}",
        f"bastion:slots:team:blue{tag}",
    ]

    async def held(gw: Gw) -> list[int]:
        lim = gw.app.gateway.limits
        if lim._redis is None:
            return [lim._concurrent.get(k, 0) for k in keys]
        return [int(await lim._redis.zcard(k)) for k in keys]

    async def go(gw: Gw) -> tuple[list[tuple[str, int, list[int]]], Answer]:
        seen: list[tuple[str, int, list[int]]] = []
        for _ in range(3):
            for exit_ in EXITS:
                a = await _exit_call(gw, exit_)
                seen.append((exit_[0], a.status, await held(gw)))
        gw.app.gateway.upstreams["demo"] = ScriptedUpstream()
        return seen, await acall(gw.app, body_of())

    seen, last = run_session(gw, go, timeout=20)
    leaks = [(name, status, counts) for name, status, counts in seen if counts != [0, 0, 0]]
    assert leaks == []
    assert all(status != 429 for _, status, _ in seen), seen
    assert last.status == 200


def test_a_concurrency_refusal_says_retry_after_one_second() -> None:
    """A second call while the first holds the only slot: 429, Retry-After 1, and the slot is free
    again once the first caller leaves. Fails if the refusal leaked a slot or had no Retry-After."""
    up = ScriptedUpstream(events=text_stream([LONG, "x"]), hang_after=1)
    gw = build(settings(limits={"per_key": {"concurrent": 1}}), up)

    async def go(gw: Gw) -> tuple[Answer, Answer]:
        leave = asyncio.Event()
        first = asyncio.ensure_future(acall(gw.app, body_of(stream=True), leave_when=leave))
        await asyncio.wait_for(up.hanging.wait(), 5)
        second = await acall(gw.app, body_of())
        leave.set()
        await first
        gw.app.gateway.upstreams["demo"] = ScriptedUpstream()
        return second, await acall(gw.app, body_of())

    second, third = run_session(gw, go)
    assert second.status == 429 and retry_after(second) == 1
    assert "concurrent" in second.json()["error"]["message"]
    assert third.status == 200


# == per-team limits and key scopes =================================================================


def test_a_team_token_limit_is_shared_by_its_members_only() -> None:
    """Alice (team blue) spends the team's 12 tokens/min: Bob (blue) is refused, Carol (red) is not.
    Fails if team windows were keyed by principal or key, or not checked at all."""
    gw = build(settings(limits={"per_key": {}, "per_team": {"tokens_per_minute": 12}}))

    async def go(gw: Gw) -> list[int]:
        return [(await acall(gw.app, body_of(), key=k)).status for k in ("alice-key", "bob-key", "carol-key")]

    assert run_session(gw, go) == [200, 429, 200]


def test_a_narrower_key_scope_limits_that_key_only() -> None:
    """Per-key 100/min, alice-key's scope 1/min: its second call is refused (naming the key limit);
    alice's other key is not. Fails if the scope override were ignored or applied to the principal."""
    scopes = {"alice-key": KeyScope(requests_per_minute=1)}
    gw = build(settings(limits={"per_key": {"requests_per_minute": 100}}), scopes=scopes)

    async def go(gw: Gw) -> list[Answer]:
        return [await acall(gw.app, body_of(), key=k) for k in ("alice-key", "alice-key", "alice-key2")]

    a1, a2, a3 = run_session(gw, go)
    assert (a1.status, a2.status, a3.status) == (200, 429, 200)
    assert "key request rate limit" in a2.json()["error"]["message"]
    assert 1 <= retry_after(a2) <= 60


def test_a_key_scope_cannot_widen_the_configured_per_key_limit() -> None:
    scopes = {"alice-key": KeyScope(requests_per_minute=50)}
    gw = build(settings(limits={"per_key": {"requests_per_minute": 2}}), scopes=scopes)

    async def go(gw: Gw) -> list[int]:
        return [(await acall(gw.app, body_of())).status for _ in range(3)]

    assert run_session(gw, go) == [200, 200, 429]


def test_a_query_budget_refusal_says_when_it_resets() -> None:
    """queries_per_day 1: the second call is refused with a Retry-After within the day. Fails if the
    budget error lost its retry_after on the way to the header."""
    gw = build(settings(limits={"per_key": {}, "queries_per_day": 1}))

    async def go(gw: Gw) -> list[Answer]:
        return [await acall(gw.app, body_of()) for _ in range(2)]

    a1, a2 = run_session(gw, go)
    assert (a1.status, a2.status) == (200, 429)
    assert 60 < retry_after(a2) <= 86_400
    assert orjson.loads(a2.body)["error"]["code"] == "budget_exceeded"


# == memory and Redis decide alike ====================================================================


async def _script(svc: LimitService, tag: str) -> list[str]:
    """A fixed sequence of acquisitions, releases and charges over two keys of one principal and a
    teammate; the decision of each step."""
    a = Subject(key_id=f"k1{tag}", principal_id=f"p{tag}", team=f"t{tag}")
    a2 = Subject(key_id=f"k2{tag}", principal_id=f"p{tag}", team=f"t{tag}")
    b = Subject(key_id=f"k3{tag}", principal_id=f"q{tag}", team=f"t{tag}")
    narrow = Subject(key_id=f"k4{tag}", principal_id=f"r{tag}", key_requests_per_minute=1)
    out: list[str] = []
    held: list[Lease] = []

    async def step(s: Subject, keep: bool = False) -> None:
        try:
            lease = await svc.acquire(s)
        except LimitExceeded as e:
            out.append(f"refused: {e.message} ({1 <= e.retry_after <= 86_400})")
            return
        out.append("admitted")
        if keep:
            held.append(lease)
        else:
            await lease.release()

    await step(a, keep=True)
    await step(a2, keep=True)
    await step(a)  # key 1: its one slot is held
    await step(b)  # the team's two slots are held
    for lease in held:
        await lease.release()
    held.clear()
    await step(a)
    out.append(str(await svc.charge_tokens(a, 40)))
    await step(a2)  # principal tokens: 40 of 50 spent, admitted
    out.append(str(await svc.charge_tokens(a2, 40)))
    await step(a2)  # now spent
    await step(b)  # team tokens (100) not spent; b's own principal is fresh
    await step(b)
    await step(b)  # b's key: 4 requests/min
    await step(narrow)
    await step(narrow)  # the key scope's 1/min
    return out


def test_memory_and_redis_storage_make_the_same_decisions() -> None:
    """The same script against both storages: the same decisions, step by step. Fails if one storage
    counted differently (e.g. concurrency in Redis not decremented, or tokens charged by cost 1)."""
    url = redis_url()
    mem_cfg = LimitsSettings(
        per_key=LimitSet(requests_per_minute=4, concurrent=1),
        per_principal=LimitSet(tokens_per_minute=50),
        per_team=LimitSet(concurrent=2, tokens_per_minute=100),
    )
    red_cfg = mem_cfg.model_copy(update={"storage": "redis", "redis_url": url})

    async def both() -> tuple[list[str], list[str]]:
        mem = LimitService(mem_cfg)
        red = LimitService(red_cfg)
        try:
            return await _script(mem, ""), await _script(red, f"-{uuid.uuid4().hex[:8]}")
        finally:
            await red.close()

    mem, red = asyncio.run(both())
    assert mem == red
    assert (
        mem.count("admitted") >= 5 and any("concurrent" in d for d in mem) and any("token" in d for d in mem)
    )


def test_a_redis_slot_released_after_its_key_expired_does_not_grant_an_extra_slot() -> None:
    url = redis_url()

    async def go() -> list[bool]:
        svc = LimitService(LimitsSettings(storage="redis", redis_url=url, per_key=LimitSet(concurrent=1)))
        s = Subject(key_id=uuid.uuid4().hex, principal_id=uuid.uuid4().hex)
        try:
            lease = await svc.acquire(s)
            assert svc._redis is not None
            await svc._redis.delete(f"bastion:slots:key:{s.key_id}")  # as if its TTL ran out
            await lease.release()
            got: list[bool] = []
            leases = []
            for _ in range(2):
                try:
                    leases.append(await svc.acquire(s))
                    got.append(True)
                except LimitExceeded:
                    got.append(False)
            for lease in leases:
                await lease.release()
            return got
        finally:
            await svc.close()

    assert asyncio.run(go()) == [True, False]
