"""Every refusal a hostile caller can provoke is exactly one ledger event and an OpenAI error JSON
with the status's ``type`` and a stable ``code`` (what the SDKs and dashboards key on)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bastion.domain.events import EventTag
from bastion.domain.identity import KeyScope, Role

from .harness import principal
from .test_gateway_hostile_caller import (
    CHAT,
    COMPLETIONS,
    DENY,
    EMBEDDINGS,
    OK_CHAT,
    Answer,
    Gw,
    assert_openai_error,
    gateway,
    one_event,
    run,
    run_all,
    settings,
)


@dataclass(frozen=True)
class Refusal:
    status: int
    type: str
    code: str
    param: str | None
    tag: EventTag
    provoke: Callable[[], tuple[Gw, Answer]]


def _call(
    path: str, payload: Any, gw_factory: Callable[[], Gw] = gateway, **kw: Any
) -> Callable[[], tuple[Gw, Answer]]:
    def provoke() -> tuple[Gw, Answer]:
        gw = gw_factory()
        return gw, run(gw, path, payload, **kw)

    return provoke


def _scoped() -> Gw:
    gw = gateway()
    gw.auth.add("scoped", principal("sam", Role.USER, team="blue"), KeyScope(routes=("embeddings",)))
    return gw


REJECTED, BLOCKED = EventTag.GATEWAY_REQUEST_REJECTED, EventTag.GATEWAY_REQUEST_BLOCKED
INVALID, AUTHN, PERM = "invalid_request_error", "authentication_error", "permission_error"

REFUSALS: dict[str, Refusal] = {
    "400-json": Refusal(400, INVALID, "invalid_request", None, REJECTED, _call(CHAT, b"{not json")),
    "400-field": Refusal(
        400, INVALID, "invalid_request", "messages", REJECTED, _call(CHAT, {"model": "bastion-demo"})
    ),
    "400-guard": Refusal(
        400,
        INVALID,
        "content_filter",
        None,
        BLOCKED,
        _call(CHAT, {"model": "bastion-demo", "messages": [{"role": "user", "content": DENY}]}),
    ),
    "401-missing": Refusal(401, AUTHN, "invalid_api_key", None, REJECTED, _call(CHAT, OK_CHAT, key=None)),
    "401-unknown": Refusal(401, AUTHN, "invalid_api_key", None, REJECTED, _call(CHAT, OK_CHAT, key="nope")),
    "401-models": Refusal(
        401, AUTHN, "invalid_api_key", None, REJECTED, _call("/v1/models", None, key=None, method="GET")
    ),
    "403-model": Refusal(
        403, PERM, "permission_denied", "model", REJECTED, _call(CHAT, {**OK_CHAT, "model": "red-model"})
    ),
    "403-route": Refusal(
        403, PERM, "permission_denied", None, REJECTED, _call(CHAT, OK_CHAT, _scoped, key="scoped")
    ),
    "404-model": Refusal(
        404, INVALID, "model_not_found", "model", REJECTED, _call(CHAT, {**OK_CHAT, "model": "nope"})
    ),
    "404-models-id": Refusal(
        404, INVALID, "model_not_found", "model", REJECTED, _call("/v1/models/red-model", None, method="GET")
    ),
    "413-body": Refusal(
        413,
        INVALID,
        "request_too_large",
        None,
        REJECTED,
        _call(CHAT, b"x" * 3000, lambda: gateway(settings(server={"max_body_bytes": 2048}))),
    ),
    "413-scan": Refusal(
        413,
        INVALID,
        "request_too_large",
        None,
        REJECTED,
        _call(
            CHAT,
            {"model": "bastion-demo", "messages": [{"role": "user", "content": "a" * 2000}]},
            lambda: gateway(
                settings(
                    guards={
                        "input": ["denylist"],
                        "output": [],
                        "max_scan_chars": 1024,
                        "options": {"denylist": {"terms": [DENY]}},
                    }
                )
            ),
        ),
    ),
    "422-prompt-tokens": Refusal(
        422,
        INVALID,
        "unscannable_input",
        "prompt",
        REJECTED,
        _call(COMPLETIONS, {"model": "bastion-demo", "prompt": [1, 2]}),
    ),
    "422-input-tokens": Refusal(
        422,
        INVALID,
        "unscannable_input",
        "input",
        REJECTED,
        _call(EMBEDDINGS, {"model": "bastion-demo", "input": [[1, 2]]}),
    ),
    "422-kind": Refusal(
        422,
        INVALID,
        "unsupported_model_operation",
        "model",
        REJECTED,
        _call(EMBEDDINGS, {"model": "chat-only", "input": "x"}),
    ),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_each_refusal_is_one_event_and_an_openai_error(name: str) -> None:
    r = REFUSALS[name]
    gw, a = r.provoke()
    assert_openai_error(a, r.status, r.type, r.code, r.param)
    ev = one_event(gw)
    assert ev.tag is r.tag and ev.attributes["status"] == r.status
    assert ev.outcome == ("blocked" if r.tag is BLOCKED else "denied")
    assert gw.up.bodies == []


def test_a_rate_limited_call_is_one_event_a_429_and_retry_after() -> None:
    gw = gateway(settings(limits={"per_key": {"requests_per_minute": 1}}))
    first, second = run_all(gw, [(CHAT, OK_CHAT, {}), (CHAT, OK_CHAT, {})])
    assert first.status == 200
    assert_openai_error(second, 429, "rate_limit_error", "rate_limited")
    assert int(second.headers[b"retry-after"]) >= 1
    events = gw.events()
    assert [e.attributes["status"] for e in events] == [200, 429]
    assert events[1].tag is EventTag.GATEWAY_LIMIT_EXCEEDED and events[1].outcome == "limited"
    assert len(gw.up.bodies) == 1


def huge_headers() -> list[tuple[bytes, bytes]]:
    return [(b"x-junk", b"j" * 40_000)]


@pytest.mark.parametrize("path", [CHAT, "/v1/models", "/admin/anything"])
def test_oversized_headers_are_one_event_and_a_431(path: str) -> None:
    gw = gateway()
    a = run(gw, path, OK_CHAT, headers=huge_headers())
    assert a.status == 431 and a.error()["code"] == "request_header_fields_too_large"
    ev = one_event(gw)
    assert ev.tag is EventTag.GATEWAY_REQUEST_REJECTED and ev.attributes["status"] == 431
    assert gw.up.bodies == []


def test_oversized_headers_are_an_invalid_request_error() -> None:
    gw = gateway()
    a = run(gw, CHAT, OK_CHAT, headers=huge_headers())
    assert_openai_error(a, 431, "invalid_request_error", "request_header_fields_too_large")


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [
        ("/v1/chat/completion", "POST", 404),
        ("/v1/files", "POST", 404),
        (CHAT, "GET", 405),
        ("/v1/models", "POST", 405),
    ],
)
def test_unknown_v1_paths_and_methods_are_recorded(path: str, method: str, status: int) -> None:
    gw = gateway()
    a = run(gw, path, OK_CHAT, method=method)
    assert a.status == status and a.error()["type"] == "invalid_request_error"
    assert len(gw.events()) == 1
