from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from bastion.config import LimitSet, LimitsSettings
from bastion.domain.identity import Authentication, AuthMethod, KeyScope, Principal, PrincipalKind
from bastion.errors import LimitExceeded
from bastion.services.limits import BudgetExceeded, LimiterUnavailable, LimitService, Subject

S = Subject(key_id="k1", principal_id="p1", team="t1")


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_requests_per_minute_per_key() -> None:
    async def go() -> None:
        svc = LimitService(LimitsSettings(per_key=LimitSet(requests_per_minute=2)))
        for _ in range(2):
            await (await svc.acquire(S)).release()
        with pytest.raises(LimitExceeded) as e:
            await svc.acquire(S)
        assert 1.0 <= e.value.retry_after <= 60.0
        # another key of the same principal is not affected
        await svc.acquire(Subject(key_id="k2", principal_id="p1"))

    run(go())


def test_key_scope_override_and_team_limit() -> None:
    async def go() -> None:
        svc = LimitService(
            LimitsSettings(
                per_key=LimitSet(requests_per_minute=100), per_team=LimitSet(requests_per_minute=2)
            )
        )
        narrow = Subject(key_id="k", principal_id="p", team="t", key_requests_per_minute=1)
        await svc.acquire(narrow)
        with pytest.raises(LimitExceeded, match="key"):
            await svc.acquire(narrow)
        await svc.acquire(Subject(key_id="x", principal_id="q", team="t"))
        with pytest.raises(LimitExceeded, match="team"):
            await svc.acquire(Subject(key_id="y", principal_id="r", team="t"))

    run(go())


def test_concurrency_slots_are_released() -> None:
    async def go() -> None:
        svc = LimitService(LimitsSettings(per_key=LimitSet(concurrent=2)))
        a, b = await svc.acquire(S), await svc.acquire(S)
        with pytest.raises(LimitExceeded, match="concurrent"):
            await svc.acquire(S)
        await a.release()
        await a.release()  # idempotent
        c = await svc.acquire(S)
        await b.release()
        await c.release()
        assert svc._concurrent == {}

    run(go())


def test_tokens_checked_before_and_charged_after() -> None:
    async def go() -> None:
        svc = LimitService(LimitsSettings(per_key=LimitSet(), per_principal=LimitSet(tokens_per_minute=100)))
        await svc.acquire(S)
        assert await svc.charge_tokens(S, 150)
        with pytest.raises(LimitExceeded, match="token"):
            await svc.acquire(S)

    run(go())


def test_daily_and_per_key_token_windows() -> None:
    async def go() -> None:
        svc = LimitService(
            LimitsSettings(per_key=LimitSet(tokens_per_minute=10**6), per_team=LimitSet(tokens_per_day=50))
        )
        narrow = Subject(key_id="k9", principal_id="p9", team="t9", key_tokens_per_minute=20)
        await (await svc.acquire(narrow)).release()
        assert await svc.charge_tokens(narrow, 25)  # past the key's own 20/minute
        with pytest.raises(LimitExceeded, match=r"key token limit reached \(20/minute\)"):
            await svc.acquire(narrow)
        other = Subject(key_id="k8", principal_id="p8", team="t9")  # same team, its own key
        await (await svc.acquire(other)).release()
        assert await svc.charge_tokens(other, 30)  # the team's day: 25 + 30 > 50
        with pytest.raises(LimitExceeded, match=r"team token limit reached \(50/day\)"):
            await svc.acquire(other)
        assert await svc.charge_tokens(S, 0)  # nothing to charge

    run(go())


def test_budget_crossing_is_reported_once() -> None:
    async def go() -> None:
        svc = LimitService(LimitsSettings(per_key=LimitSet(), queries_per_day=1))
        await svc.acquire(S)
        with pytest.raises(BudgetExceeded) as first:
            await svc.acquire(S)
        with pytest.raises(BudgetExceeded) as second:
            await svc.acquire(S)
        assert first.value.first and not second.value.first
        assert first.value.retry_after > 3600

    run(go())


def test_calls_refused_by_other_limits_do_not_spend_the_budget() -> None:
    """A call the rate or concurrency limits refuse never reached a model: the day's query budget
    counts admitted calls only, and a call the budget refuses holds no concurrency slot."""

    async def go() -> None:
        svc = LimitService(LimitsSettings(per_key=LimitSet(concurrent=1), queries_per_day=2))
        held = await svc.acquire(S)  # 1 of 2
        for _ in range(3):
            with pytest.raises(LimitExceeded, match="concurrent"):
                await svc.acquire(S)
        await held.release()
        await (await svc.acquire(S)).release()  # 2 of 2: the refusals spent nothing
        with pytest.raises(BudgetExceeded) as e:
            await svc.acquire(S)
        assert e.value.first
        assert svc._concurrent == {}

    run(go())


DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_redis_down(mode: str) -> None:
    async def go() -> None:
        seen: list[Exception] = []
        svc = LimitService(LimitsSettings(storage="redis", redis_url=DEAD_REDIS, on_unavailable=mode))  # type: ignore[arg-type]
        svc.on_unavailable = seen.append
        if mode == "closed":
            with pytest.raises(LimiterUnavailable):
                await svc.acquire(S)
        else:
            lease = await svc.acquire(S)
            assert lease.degraded
        assert seen
        await svc.close()

    run(go())


@pytest.mark.redis
def test_redis_shared_between_two_services() -> None:
    url = os.environ.get("BASTION_TEST_REDIS_URL")
    if not url:
        pytest.skip("BASTION_TEST_REDIS_URL is not set")

    async def go() -> None:
        cfg = LimitsSettings(
            storage="redis", redis_url=url, per_key=LimitSet(requests_per_minute=3, concurrent=1)
        )
        a, b = LimitService(cfg), LimitService(cfg)
        subj = Subject(key_id=uuid.uuid4().hex, principal_id=uuid.uuid4().hex)
        la = await a.acquire(subj)
        with pytest.raises(LimitExceeded, match="concurrent"):
            await b.acquire(subj)
        await la.release()
        await (await b.acquire(subj)).release()
        with pytest.raises(LimitExceeded, match="rate"):
            await a.acquire(subj)  # 4th hit across both services
        await a.close()
        await b.close()

    run(go())


@pytest.mark.redis
def test_a_budget_crossing_is_reported_once_across_services() -> None:
    """Two gateway processes on one Redis: of many calls racing past the budget, exactly one is the
    crossing (the one ledger event), whichever service it reached."""
    url = os.environ.get("BASTION_TEST_REDIS_URL")
    if not url:
        pytest.skip("BASTION_TEST_REDIS_URL is not set")

    async def go() -> None:
        cfg = LimitsSettings(storage="redis", redis_url=url, per_key=LimitSet(), queries_per_day=5)
        a, b = LimitService(cfg), LimitService(cfg)
        subj = Subject(key_id=uuid.uuid4().hex, principal_id=uuid.uuid4().hex)

        async def one(svc: LimitService) -> bool | None:
            try:
                await (await svc.acquire(subj)).release()
            except BudgetExceeded as e:
                return e.first
            return None

        outcomes = await asyncio.gather(*(one(a if i % 2 else b) for i in range(40)))
        assert outcomes.count(None) == 5  # admitted: the budget
        assert outcomes.count(True) == 1  # the crossing, once
        assert outcomes.count(False) == 34
        await a.close()
        await b.close()

    run(go())


def test_subject_is_remembered_per_authentication() -> None:
    svc = LimitService(LimitsSettings())
    p = Principal(id="p1", kind=PrincipalKind.USER, name="p", team="t1")
    auth = Authentication(p, AuthMethod.API_KEY, key_id="k1", scope=KeyScope(requests_per_minute=5))
    s = svc.subject(auth)
    assert s == Subject.of(auth) == Subject("k1", "p1", "t1", key_requests_per_minute=5)
    assert svc.subject(auth) is s
    other = Authentication(p, AuthMethod.API_KEY, key_id="k2")
    assert svc.subject(other) == Subject("k2", "p1", "t1")


def test_uploads_count_against_each_scope_and_a_refusal_holds_nothing() -> None:
    """Key 2 concurrent, team 3: two bodies of k1 arriving fill the key; a third of k1 is refused;
    one of k2 (same team) fills the team, so a fourth (k3) is refused by the team and, refused, holds
    no key slot of its own. Releasing makes room again, and releasing twice gives nothing extra."""
    svc = LimitService(LimitsSettings(per_key=LimitSet(concurrent=2), per_team=LimitSet(concurrent=3)))
    k1, k2, k3 = (Subject(key_id=f"k{i}", principal_id="p", team="t") for i in (1, 2, 3))
    held = [svc.enter_upload(k1), svc.enter_upload(k1)]
    with pytest.raises(LimitExceeded, match="key concurrent request limit reached \\(2, counting uploads\\)"):
        svc.enter_upload(k1)
    held.append(svc.enter_upload(k2))
    with pytest.raises(LimitExceeded, match="team concurrent"):
        svc.enter_upload(k3)
    assert "bastion:conc:key:k3" not in svc._uploads
    held[0]()
    held[0]()  # a second release of the same upload changes nothing
    held.append(svc.enter_upload(k3))
    with pytest.raises(LimitExceeded):
        svc.enter_upload(k3)
    for leave in held:
        leave()
    assert svc._uploads == {}
