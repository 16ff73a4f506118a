"""Review 6: the daily query budget after batches started spending their share of it (limits.py
``_spend_budget``/``_budget_reset``, wire.py ``queries``, pipeline ``Gateway.acquire``, errors.py
``x-should-retry``), with concurrency slots and in-flight counts on every budget refusal.

Each test asserts the CORRECT behaviour; the defects found are strict xfails naming file:line. Redis
runs use unique principal, key and team names (and delete their keys) and are skipped without
BASTION_TEST_REDIS_URL (as in test_limits.py).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

import pytest

from bastion.config import LimitSet, LimitsSettings
from bastion.domain.events import EventTag
from bastion.errors import LimitExceeded
from bastion.gateway.errors import ApiError, from_bastion_error
from bastion.services.limits import BudgetExceeded, LimitService, Subject

from .test_gateway_review3_support import Answer, Gw, ScriptedUpstream, acall, body_of, build, run_session
from .test_gateway_review5_surface import (
    COMPLETIONS,
    EMBEDDING_REPLY,
    EMBEDDINGS,
    cfg,
    completion_reply,
    completions,
    embeddings,
    many,
)

CHAT = "/v1/chat/completions"
STORAGES = ["memory", pytest.param("redis", marks=pytest.mark.redis)]
DAY = 86_400


def redis_url() -> str:
    url = os.environ.get("BASTION_TEST_REDIS_URL")
    if not url:
        pytest.skip("BASTION_TEST_REDIS_URL is not set")
    return url


def service_cfg(storage: str, budget: int, **kw: Any) -> LimitsSettings:
    s = LimitsSettings(per_key=LimitSet(), queries_per_day=budget, **kw)
    return s.model_copy(update={"storage": "redis", "redis_url": redis_url()}) if storage == "redis" else s


async def forget(svc: LimitService, tag: str) -> None:
    """Delete this test's Redis keys (budget windows last a day)."""
    if svc._redis is not None:
        async for k in svc._redis.scan_iter(match=f"*{tag}*"):
            await svc._redis.delete(k)
        await svc.close()


async def outcome(svc: LimitService, s: Subject, queries: int = 1) -> str:
    """``admitted``, ``first`` (the refusal that crossed the budget) or ``refused``."""
    try:
        lease = await svc.acquire(s, queries)
    except BudgetExceeded as e:
        return "first" if e.first else "refused"
    await lease.release()
    return "admitted"


def pair(storage: str, budget: int) -> tuple[LimitService, LimitService]:
    """Two services counting in one store: two gateway replicas on one Redis, or (memory) two
    services on one MemoryStorage, the same thing within one process."""
    conf = service_cfg(storage, budget)
    if storage == "redis":
        return LimitService(conf), LimitService(conf)
    a = LimitService(conf)
    return a, LimitService(conf, storage=a._storage)


# == a batch that loses a race ======================================================================


@pytest.mark.parametrize("storage", STORAGES)
def test_a_batch_refused_after_losing_a_race_spends_nothing(
    storage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Budget 10. Replica A counts its batch of 6 (6 of 10); right after, replica B's batch of 6 finds
    only 4 left: B is refused and adds nothing, so four single calls pass, and the fifth is the one
    crossing (one ledger event)."""
    tag = uuid.uuid4().hex[:8]
    s = Subject(key_id=f"k-{tag}", principal_id=f"p-{tag}")

    async def go() -> list[str]:
        a, b = pair(storage, 10)
        spend = a._spend
        raced: list[str] = []

        async def spend_then_race(key: str, queries: int, budget: int, expiry: int) -> int | None:
            monkeypatch.setattr(a, "_spend", spend)  # once
            result = await spend(key, queries, budget, expiry)
            raced.append(await outcome(b, s, 6))  # the other replica's batch lands now
            return result

        monkeypatch.setattr(a, "_spend", spend_then_race)
        try:
            raced.append(await outcome(a, s, 6))
            return raced + [await outcome(a if i % 2 else b, s) for i in range(5)]
        finally:
            await forget(a, tag)
            await forget(b, tag)

    got = asyncio.run(go())
    # B's batch (refused: 4 were left, not the crossing), A's, 4 singles, the crossing
    assert got == ["refused", "admitted"] + ["admitted"] * 4 + ["first"]


@pytest.mark.parametrize("storage", STORAGES)
def test_a_batch_too_big_for_what_is_left_does_not_crowd_out_a_concurrent_small_call(storage: str) -> None:
    """Budget 10, 8 spent: a batch of 5 and a single call at once. The batch is refused (2 left, not
    the crossing); the single call passes; the crossing comes when the budget is really spent."""
    tag = uuid.uuid4().hex[:8]
    s = Subject(key_id=f"k-{tag}", principal_id=f"p-{tag}")

    async def go() -> list[str]:
        a, b = pair(storage, 10)
        try:
            assert await outcome(a, s, 8) == "admitted"
            together = list(await asyncio.gather(outcome(a, s, 5), outcome(b, s, 1)))
            return [*together, await outcome(a, s), await outcome(b, s)]
        finally:
            await forget(a, tag)
            await forget(b, tag)

    assert asyncio.run(go()) == ["refused", "admitted", "admitted", "first"]


@pytest.mark.parametrize("storage", STORAGES)
def test_racing_batches_on_two_replicas_never_pass_the_budget_and_cross_it_once(storage: str) -> None:
    """Budget 10; 30 calls of 1, 2 and 3 queries race over two replicas, then 11 single calls: what is
    admitted never adds up to more than 10, and exactly one refusal is the crossing."""
    tag = uuid.uuid4().hex[:8]
    s = Subject(key_id=f"k-{tag}", principal_id=f"p-{tag}")

    async def go() -> list[tuple[int, str]]:
        a, b = pair(storage, 10)
        try:
            sizes = [1 + i % 3 for i in range(30)]
            raced = await asyncio.gather(*(outcome(a if i % 2 else b, s, q) for i, q in enumerate(sizes)))
            after = [(1, await outcome(a, s)) for _ in range(11)]
            return list(zip(sizes, raced, strict=True)) + after
        finally:
            await forget(a, tag)
            await forget(b, tag)

    got = asyncio.run(go())
    assert sum(q for q, o in got if o == "admitted") <= 10
    assert [o for _, o in got].count("first") == 1
    assert got[-1][1] == "refused"


# == Retry-After ==================================================================================


async def _end_window_in(svc: LimitService, s: Subject, budget: int, seconds: int) -> None:
    """As if the budget's day window of ``s`` had only ``seconds`` left."""
    key = svc._item("day", budget).key_for("budget", s.principal_id)
    if svc._redis is None:
        svc._storage.expirations[key] = time.time() + seconds  # type: ignore[attr-defined]
    else:
        await svc._redis.expire(svc._storage.bridge.prefixed_key(key), seconds)  # type: ignore[attr-defined]


@pytest.mark.parametrize("storage", STORAGES)
def test_a_batch_larger_than_the_whole_budget_is_told_a_day_even_when_the_budget_is_spent(
    storage: str,
) -> None:
    """Budget 2, both spent, the window ends in 30 s: a single call may retry then (Retry-After ~30 s,
    the SDK may retry); a batch of 3 can never pass in any window: a day and ``x-should-retry: false``
    (as it gets while the budget is not yet spent), not 30 s that the SDK retries in vain."""
    tag = uuid.uuid4().hex[:8]
    s = Subject(key_id=f"k-{tag}", principal_id=f"p-{tag}")

    async def go() -> tuple[BudgetExceeded, BudgetExceeded]:
        svc = LimitService(service_cfg(storage, 2))
        try:
            for _ in range(2):
                await (await svc.acquire(s)).release()
            await _end_window_in(svc, s, 2, 30)
            errors = []
            for q in (1, 3):
                with pytest.raises(BudgetExceeded) as e:
                    await svc.acquire(s, q)
                errors.append(e.value)
            return errors[0], errors[1]
        finally:
            await forget(svc, tag)

    single, batch = asyncio.run(go())
    assert 1 <= single.retry_after <= 31
    assert b"x-should-retry" not in dict(from_bastion_error(single).headers())
    assert batch.retry_after >= DAY - 1
    assert dict(from_bastion_error(batch).headers())[b"x-should-retry"] == b"false"


@pytest.mark.parametrize(
    ("retry_after", "header", "no_retry"),
    [
        (-5.0, b"1", False),
        (0.0, b"1", False),
        (0.2, b"1", False),
        (60.0, b"60", False),
        (60.2, b"61", True),
        (float(DAY), b"86400", True),
    ],
)
def test_retry_after_is_never_below_one_and_no_retry_only_past_the_sdk_wait(
    retry_after: float, header: bytes, no_retry: bool
) -> None:
    h = dict(ApiError(429, "x", "budget_exceeded", retry_after=retry_after).headers())
    assert h[b"retry-after"] == header
    assert (h.get(b"x-should-retry") == b"false") is no_retry


# == the cost of a call ===========================================================================


def test_input_the_cost_cannot_be_computed_from_is_refused_before_the_budget() -> None:
    """Budget 1. Token-id prompts and inputs (a list of ints is NOT three prompts; a list of token
    lists neither), mixed lists, empty lists and ``n`` that is not an integer >= 1 (a bool, 0, a
    float, a number past 64 bits that JSON gives as a float) are refused before the limits: the one
    query of the day is still there for the good call after them."""
    up = ScriptedUpstream(reply=completion_reply({"index": 0, "text": "ok", "message": {"content": "ok"}}))
    gw = build(cfg(max_n=4, limits={"per_key": {}, "queries_per_day": 1}), up)
    bad: list[tuple[dict[str, Any], str, int]] = [
        (completions([1, 2, 3]), COMPLETIONS, 422),
        (completions([[1, 2], [3]]), COMPLETIONS, 422),
        (embeddings([101, 202]), EMBEDDINGS, 422),
        (embeddings([[1], [2]]), EMBEDDINGS, 422),
        (completions(["a", 1]), COMPLETIONS, 400),
        (completions([]), COMPLETIONS, 400),
        (embeddings([]), EMBEDDINGS, 400),
        (completions("a", n=True), COMPLETIONS, 400),
        (body_of(n=0), CHAT, 400),
        (body_of(n=2.0), CHAT, 400),
        (body_of(n="2"), CHAT, 400),
    ]
    raw_big_n = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 100000000000000000000}'

    async def go(gw: Gw) -> list[Answer]:
        out = [await acall(gw.app, p, path=path) for p, path, _ in bad]
        out.append(await acall(gw.app, raw_big_n))
        out.append(await acall(gw.app, completions(), path=COMPLETIONS))
        out.append(await acall(gw.app, completions(), path=COMPLETIONS))
        return out

    answers = run_session(gw, go)
    assert [a.status for a in answers] == [st for *_, st in bad] + [400, 200, 429]
    assert len(gw.up.bodies) == 1


def test_an_enormous_batch_is_refused_at_once_for_a_day_and_spends_nothing() -> None:
    """A million prompts (about what a 4 MiB body holds) against a budget of 6: a 429 telling the SDK
    not to retry (it never passes), nothing sent upstream, nothing spent; and ``n`` far past
    ``max_n`` costs only what it is capped to (3 prompts x 2)."""
    gw = build(
        cfg(max_n=2, limits={"per_key": {}, "queries_per_day": 6}), ScriptedUpstream(reply=completion_reply())
    )
    answers = many(
        gw,
        [
            (completions(["a"] * 10**6), COMPLETIONS, "alice-key"),
            (completions(["a"] * 10**6, n=2), COMPLETIONS, "alice-key2"),
            (embeddings(["a"] * 10**6), EMBEDDINGS, "alice-key"),
            (completions(["a", "b", "c"], n=10**9), COMPLETIONS, "alice-key"),  # 6: the whole budget
            (completions(), COMPLETIONS, "alice-key"),
        ],
    )
    assert [a.status for a in answers] == [429, 429, 429, 200, 429]
    for a in answers[:3]:
        assert a.json()["error"]["code"] == "budget_exceeded"
        assert a.headers[b"retry-after"] == b"86400" and a.headers[b"x-should-retry"] == b"false"
    assert "2000000 queries" in answers[1].json()["error"]["message"]
    assert all("1000000 queries" in answers[i].json()["error"]["message"] for i in (0, 2))
    assert len(gw.up.bodies) == 1 and gw.up.bodies[0]["n"] == 2
    assert len([e for e in gw.events() if e.tag is EventTag.GATEWAY_BUDGET_EXCEEDED]) == 1


# == slots and in-flight counts on every budget refusal ==============================================


@pytest.mark.parametrize("storage", STORAGES)
def test_budget_refusals_hold_no_concurrency_slot(storage: str) -> None:
    """Key, principal and team each allow one call at a time; the budget is 3. Every kind of budget
    refusal (a batch larger than what is left, the crossing, a single and a batch after it, through
    the other key of the principal) leaves no slot held and no call in flight; Bob, of the same team,
    is admitted after them (the team's slot is free) and has a budget of his own."""
    tag = f"-{uuid.uuid4().hex[:8]}" if storage == "redis" else ""
    one = {"concurrent": 1}
    lim: dict[str, Any] = {"per_key": one, "per_principal": one, "per_team": one, "queries_per_day": 3}
    if storage == "redis":
        lim.update(storage="redis", redis_url=redis_url())
    up = ScriptedUpstream(reply=EMBEDDING_REPLY)
    gw = build(cfg(max_n=2, limits=lim), up, tag=tag)
    keys = [
        f"bastion:slots:key:kid-alice-key{tag}",
        f"bastion:slots:key:kid-alice-key2{tag}",
        f"bastion:slots:principal:alice{tag}",
        f"bastion:slots:team:blue{tag}",
    ]
    calls: list[tuple[dict[str, Any], str, str]] = [
        (embeddings(["a", "b", "c", "d"]), EMBEDDINGS, "alice-key"),  # 4 > 3 left
        (embeddings(["a", "b"]), EMBEDDINGS, "alice-key"),  # 2: 1 left
        (embeddings(["a", "b"]), EMBEDDINGS, "alice-key2"),  # 2 > 1 left
        (embeddings("a"), EMBEDDINGS, "alice-key2"),  # the last one
        (embeddings("a"), EMBEDDINGS, "alice-key"),  # the crossing
        (embeddings(["a", "b"]), EMBEDDINGS, "alice-key2"),  # spent
        (embeddings("a"), EMBEDDINGS, "alice-key"),  # spent
        (embeddings("a"), EMBEDDINGS, "bob-key"),  # same team, his own budget
    ]

    async def held(gw: Gw) -> list[int]:
        limits = gw.app.gateway.limits
        if limits._redis is None:
            return [limits._concurrent.get(k, 0) for k in keys]
        return [int(await limits._redis.zcard(k)) for k in keys]

    async def go(gw: Gw) -> list[tuple[int, list[int], int]]:
        out = []
        try:
            for p, path, key in calls:
                a = await acall(gw.app, p, path=path, key=key)
                out.append((a.status, await held(gw), gw.app.gateway.in_flight))
        finally:
            limits = gw.app.gateway.limits
            if limits._redis is not None:
                async for k in limits._redis.scan_iter(match=f"*{tag}*"):
                    await limits._redis.delete(k)
        return out

    got = run_session(gw, go)
    assert [st for st, _, _ in got] == [429, 200, 429, 200, 429, 429, 429, 200]
    assert all(counts == [0, 0, 0, 0] and in_flight == 0 for _, counts, in_flight in got), got
    assert len([e for e in gw.events() if e.tag is EventTag.GATEWAY_BUDGET_EXCEEDED]) == 1


# == memory and Redis decide alike ================================================================


async def _budget_script(svc: LimitService, tag: str) -> list[str]:
    """Batches and single calls over two keys of one principal and a teammate, budget 5."""
    a = Subject(key_id=f"k1{tag}", principal_id=f"p{tag}", team=f"t{tag}")
    a2 = Subject(key_id=f"k2{tag}", principal_id=f"p{tag}", team=f"t{tag}")
    b = Subject(key_id=f"k3{tag}", principal_id=f"q{tag}", team=f"t{tag}")
    steps: list[tuple[Subject, int]] = [
        (a, 6),
        (a, 3),
        (a2, 3),
        (a2, 2),
        (a, 1),
        (a2, 1),
        (a, 4),
        (a, 1),
        (a, 1),
        (b, 5),
        (b, 1),
    ]
    out = []
    for s, q in steps:
        try:
            await (await svc.acquire(s, q)).release()
            out.append("admitted")
        except BudgetExceeded as e:
            out.append(f"{e.first} {e.retry_after >= DAY - 5} {e.message}")
        except LimitExceeded as e:
            out.append(f"limited {e.message}")
    return out


def test_memory_and_redis_make_the_same_budget_decisions() -> None:
    url = redis_url()
    tag = f"-{uuid.uuid4().hex[:8]}"

    async def both() -> tuple[list[str], list[str]]:
        mem = LimitService(LimitsSettings(per_key=LimitSet(requests_per_minute=5), queries_per_day=5))
        red = LimitService(
            LimitsSettings(
                storage="redis", redis_url=url, per_key=LimitSet(requests_per_minute=5), queries_per_day=5
            )
        )
        try:
            return await _budget_script(mem, ""), await _budget_script(red, tag)
        finally:
            await forget(red, tag)

    mem, red = asyncio.run(both())
    assert mem == red
    assert mem[0] == "False True this call asks for 6 queries; the daily budget is 5"
    assert mem.count("admitted") == 3 and any(d.startswith("True ") for d in mem)
    assert any(d.startswith("limited key request rate") for d in mem)
