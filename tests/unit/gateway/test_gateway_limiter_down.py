"""The shared limit store (Redis) is down at the gateway: ``on_unavailable: closed`` (the default) answers
503 in OpenAI's error shape, ``open`` lets the call through and its ledger event says limits were not
enforced; either way a ``gateway:limiter:unavailable`` event is recorded and the metric counts it."""

from __future__ import annotations

import os
import re
import time
import uuid
from typing import Any

import httpx
import pytest

from bastion.domain.events import EventTag
from bastion.domain.identity import Role

from .harness import Live, gateway_settings, live_gateway, principal

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1
BODY = {"model": "bastion-demo", "messages": [{"role": "user", "content": "hi"}]}


def limiter_metric(lv: Live) -> float:
    text = httpx.get(lv.url + "/metrics", timeout=5).text
    m = re.search(r"^bastion_gateway_limiter_unavailable_total (\S+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


def settings(redis_url: str, **limits: Any) -> Any:
    return gateway_settings(
        limits={"storage": "redis", "redis_url": redis_url, **limits}, guards={"input": [], "output": []}
    )


def call(lv: Live) -> httpx.Response:
    return httpx.post(
        lv.v1 + "/chat/completions", json=BODY, headers={"authorization": "Bearer k"}, timeout=10
    )


def split(events: list[Any]) -> tuple[list[Any], list[Any]]:
    limiter = [e for e in events if e.tag is EventTag.GATEWAY_LIMITER_UNAVAILABLE]
    return limiter, [e for e in events if e.tag is not EventTag.GATEWAY_LIMITER_UNAVAILABLE]


def test_default_is_fail_closed() -> None:
    assert settings(DEAD_REDIS).gateway.limits.on_unavailable == "closed"


@pytest.mark.parametrize("explicit", [True, False])
def test_redis_down_fail_closed_is_503_with_event_and_metric(explicit: bool) -> None:
    s = settings(DEAD_REDIS, on_unavailable="closed") if explicit else settings(DEAD_REDIS)
    with live_gateway(s) as lv:
        lv.auth.add("k", principal("p", Role.ADMIN))
        assert limiter_metric(lv) == 0
        t0 = time.monotonic()
        r = call(lv)
        assert time.monotonic() - t0 < 3, "a dead Redis must not stall the call"
        assert r.status_code == 503
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"}
        assert err["code"] == "limiter_unavailable" and err["type"] == "api_error"
        assert "fine" not in r.text and "You said" not in r.text  # the model was not called
        assert limiter_metric(lv) >= 1
        r2 = call(lv)
        assert r2.status_code == 503
        assert limiter_metric(lv) >= 2, "every refused call counts"
        events = lv.audit.wait_for(3)
    limiter, calls = split(events)
    assert len(calls) == 2, "one ledger event per call"
    for ev in calls:
        assert ev.attributes["status"] == 503
        assert "upstream" not in ev.attributes["steps"]
        assert "rate-limit store unavailable (fail closed)" in ev.attributes["reasons"]
        assert ev.actor == "p"
    assert len(limiter) == 1, "the limiter-unavailable event is recorded (once a minute, not per call)"
    assert limiter[0].attributes["mode"] == "closed"
    assert limiter[0].outcome == "error" and limiter[0].target == "limits"


def test_redis_down_fail_open_serves_and_records_limits_not_enforced() -> None:
    with live_gateway(settings(DEAD_REDIS, on_unavailable="open")) as lv:
        lv.auth.add("k", principal("p", Role.ADMIN))
        r = call(lv)
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == "Bastion demo model here. You said: hi"
        assert limiter_metric(lv) >= 1
        events = lv.audit.wait_for(2)
    limiter, calls = split(events)
    assert len(calls) == 1
    ev = calls[0]
    assert ev.tag is EventTag.GATEWAY_REQUEST_COMPLETED
    assert ev.attributes["limits_enforced"] is False
    assert "upstream" in ev.attributes["steps"]
    assert len(limiter) == 1 and limiter[0].attributes["mode"] == "open"


@pytest.mark.redis
@pytest.mark.parametrize("mode", ["open", "closed"])
def test_redis_up_enforces_limits_and_records_nothing_unusual(mode: str) -> None:
    """The control: the same configuration with Redis reachable is a plain, enforced call."""
    url = os.environ.get("BASTION_TEST_REDIS_URL")
    if not url:
        pytest.skip("Redis tests need BASTION_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
    s = settings(url, on_unavailable=mode, per_key={"requests_per_minute": 2})
    with live_gateway(s) as lv:
        lv.auth.keys.clear()
        key = lv.auth.add(f"k-{uuid.uuid4().hex}", principal(uuid.uuid4().hex, Role.ADMIN))
        statuses = [
            httpx.post(
                lv.v1 + "/chat/completions", json=BODY, headers={"authorization": f"Bearer {key}"}, timeout=10
            ).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        assert limiter_metric(lv) == 0
        events = lv.audit.wait_for(3)
    limiter, calls = split(events)
    assert limiter == [] and len(calls) == 3
    assert all("limits_enforced" not in e.attributes for e in calls)
