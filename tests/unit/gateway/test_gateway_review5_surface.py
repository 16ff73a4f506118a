"""Review 5: the model-theft and abuse defences (query budgets and their ledger event, log-probability
strips, caps on ``n``/``best_of``/token limits) and the less-travelled routes: ``/v1/completions``
(string, list and token-array prompts, ``suffix``), ``/v1/embeddings`` and ``GET /v1/models``.

Each test asserts the SAFE behaviour; the defects found were strict xfails naming file:line, and run as
regression tests now that they are fixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import orjson
import pytest

from bastion.domain.events import EventTag
from bastion.domain.identity import KeyScope, Role
from bastion.gateway.upstream import UpstreamReply

from .harness import asgi_scope, principal
from .test_gateway_review3_support import (
    Answer,
    Gw,
    ScriptedUpstream,
    acall,
    attrs,
    body_of,
    build,
    chat_reply,
    completion_chunk,
    drive,
    run_session,
    settings,
)

DENY = "project zeus"
GUARDS: dict[str, Any] = {
    "input": ["denylist"],
    "output": ["denylist"],
    "options": {"denylist": {"terms": [DENY]}},
}
MODELS: dict[str, Any] = {
    "m": {"upstream": "demo", "upstream_model": "internal-base-7b", "attributes": {"team": "shared"}},
    "red-m": {"upstream": "demo", "upstream_model": "internal-red-70b", "attributes": {"team": "red"}},
    "chat-only": {"upstream": "demo", "kinds": ["chat"], "attributes": {"team": "shared"}},
}
CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
EMBEDDINGS = "/v1/embeddings"
LOGPROBS = {"content": [{"token": "fine", "logprob": -0.1, "bytes": [102], "top_logprobs": []}]}
USAGE = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}


def cfg(**gateway: Any) -> Any:
    gateway.setdefault("models", MODELS)
    gateway.setdefault("guards", GUARDS)
    gateway.setdefault("max_n", 1)
    gateway.setdefault("max_tokens_cap", 100)
    gateway.setdefault("limits", {"per_key": {}})
    return settings(**gateway)


def reply(obj: dict[str, Any]) -> UpstreamReply:
    return UpstreamReply(200, orjson.dumps(obj))


def completion_reply(choice: dict[str, Any] | None = None, **top: Any) -> UpstreamReply:
    ch = choice if choice is not None else {"index": 0, "text": "fine", "finish_reason": "stop"}
    obj = {"id": "c", "object": "text_completion", "created": 1, "model": "internal-base-7b"}
    return reply({**obj, "choices": [ch], "usage": USAGE, **top})


EMBEDDING_REPLY = reply(
    {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
        "model": "internal-base-7b",
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
)


def completions(prompt: Any = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": "m", "prompt": prompt, **extra}


def embeddings(inp: Any = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": "m", "input": inp, **extra}


def one(gw: Gw, payload: dict[str, Any], path: str, key: str = "alice-key") -> Answer:
    """One call through the gateway, drained afterwards (its ledger event written)."""

    async def go(gw: Gw) -> Answer:
        return await acall(gw.app, payload, path=path, key=key)

    return run_session(gw, go)


def many(gw: Gw, calls: list[tuple[dict[str, Any], str, str]]) -> list[Answer]:
    """``(payload, path, key)`` calls one after the other, on one loop (one limiter's counts)."""

    async def go(gw: Gw) -> list[Answer]:
        return [await acall(gw.app, p, path=path, key=key) for p, path, key in calls]

    return run_session(gw, go)


def values_of(obj: Any, key: str) -> Iterator[Any]:
    """Every value stored under ``key`` anywhere in a JSON document."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key:
                yield v
            yield from values_of(v, key)
    elif isinstance(obj, list):
        for v in obj:
            yield from values_of(v, key)


def error_of(a: Answer) -> dict[str, Any]:
    err: dict[str, Any] = a.json()["error"]
    return err


# == output hardening: log-probabilities ===========================================================


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        (CHAT, body_of(top_logprobs=5)),  # top_logprobs without logprobs
        (CHAT, body_of(logprobs=True, top_logprobs=20)),
        (COMPLETIONS, completions(logprobs=0)),  # still the sampled tokens' log-probabilities
        (COMPLETIONS, completions(logprobs=5, echo=True)),  # echo: the prompt's too
    ],
)
def test_every_spelling_of_logprobs_is_stripped_for_a_caller_without_the_permission(
    path: str, payload: dict[str, Any]
) -> None:
    if path == CHAT:
        answer = orjson.loads(chat_reply("fine"))
        answer["choices"][0]["logprobs"] = LOGPROBS
        up_reply = reply(answer)
    else:
        up_reply = completion_reply(
            {"index": 0, "text": "fine", "finish_reason": "stop", "logprobs": LOGPROBS}
        )
    gw = build(cfg(), ScriptedUpstream(reply=up_reply))
    a = one(gw, payload, path)
    assert a.status == 200
    sent = gw.up.bodies[-1]
    assert "logprobs" not in sent and "top_logprobs" not in sent
    assert all(v is None for v in values_of(a.json(), "logprobs"))
    assert "logprobs_stripped" in attrs(gw.one_event())["hardening"]


def test_a_caller_with_the_logprobs_permission_keeps_them() -> None:
    gw = build(
        cfg(), ScriptedUpstream(reply=completion_reply({"index": 0, "text": "x", "logprobs": LOGPROBS}))
    )
    gw.auth.add("ml-key", principal("mel", Role.ML_ENGINEER, team="blue"))
    a = one(gw, completions(logprobs=3), COMPLETIONS, key="ml-key")
    assert a.status == 200 and gw.up.bodies[-1]["logprobs"] == 3
    assert a.json()["choices"][0]["logprobs"] == LOGPROBS
    assert "logprobs_stripped" not in attrs(gw.one_event()).get("hardening", [])


@pytest.mark.parametrize(
    ("path", "payload", "param"),
    [
        (CHAT, body_of(logprobs=5), "logprobs"),  # chat's is a boolean
        (COMPLETIONS, completions(logprobs=True), "logprobs"),  # completions' an integer
        (COMPLETIONS, completions(logprobs=2.0), "logprobs"),
        (CHAT, body_of(top_logprobs="5"), "top_logprobs"),
    ],
)
def test_logprobs_of_the_wrong_type_are_a_400_that_spends_no_budget(
    path: str, payload: dict[str, Any], param: str
) -> None:
    gw = build(cfg(limits={"per_key": {}, "queries_per_day": 1}))
    bad, good = many(gw, [(payload, path, "alice-key"), (completions(), COMPLETIONS, "alice-key")])
    assert bad.status == 400 and error_of(bad)["param"] == param
    assert error_of(bad)["type"] == "invalid_request_error"
    assert good.status == 200  # the refused call did not spend the one query of the day
    assert len(gw.up.bodies) == 1


@pytest.mark.parametrize("path", [CHAT, COMPLETIONS])
def test_prompt_logprobs_are_stripped_without_the_logprobs_permission(path: str) -> None:
    payload = body_of(prompt_logprobs=5) if path == CHAT else completions(prompt_logprobs=5)
    gw = build(cfg())
    a = one(gw, payload, path)
    assert a.status == 400 or "prompt_logprobs" not in gw.up.bodies[-1]


@pytest.mark.parametrize("path", [CHAT, COMPLETIONS])
def test_prompt_logprobs_in_an_answer_never_reach_a_caller_without_the_permission(path: str) -> None:
    lp = [None, {"1": {"logprob": -0.5, "rank": 1, "decoded_token": "hi"}}]
    if path == CHAT:
        up_reply = reply({**orjson.loads(chat_reply("fine")), "prompt_logprobs": lp})
    else:
        up_reply = completion_reply(
            {"index": 0, "text": "fine", "finish_reason": "stop", "prompt_logprobs": lp}
        )
    gw = build(cfg(), ScriptedUpstream(reply=up_reply))
    a = one(gw, body_of() if path == CHAT else completions(), path)
    assert a.status == 200
    assert all(v is None for v in values_of(a.json(), "prompt_logprobs"))


@pytest.mark.parametrize("output_guards", [True, False], ids=["guarded", "unguarded"])
def test_streamed_prompt_logprobs_never_reach_a_caller_without_the_permission(output_guards: bool) -> None:
    lp = [None, {"1": {"logprob": -0.5, "rank": 1, "decoded_token": "hi"}}]
    first = orjson.loads(completion_chunk("fi"))
    first["choices"][0]["prompt_logprobs"] = lp
    top = {"id": "c", "object": "text_completion", "created": 1, "model": "m", "prompt_logprobs": lp}
    events = [orjson.dumps(top), orjson.dumps(first), completion_chunk("ne", finish="stop"), b"[DONE]"]
    guards = GUARDS if output_guards else {**GUARDS, "output": []}
    gw = build(cfg(guards=guards), ScriptedUpstream(events=events))
    a = one(gw, completions(stream=True), COMPLETIONS)
    assert a.done() and b"prompt_logprobs" in a.body  # the events came, their log-probabilities nulled
    assert all(v is None for c in a.chunks() for v in values_of(c, "prompt_logprobs"))


# == caps ============================================================================================


@pytest.mark.parametrize("best_of", [20, "20"], ids=["int", "str"])
def test_best_of_is_capped_like_n(best_of: object) -> None:
    gw = build(cfg(max_n=2))
    a = one(gw, completions(best_of=best_of), COMPLETIONS)
    if a.status == 400:
        assert error_of(a)["param"] == "best_of" and gw.up.bodies == []
        return
    assert a.status == 200
    sent = gw.up.bodies[-1]["best_of"]
    assert type(sent) is int and 1 <= sent <= 2


@pytest.mark.parametrize("best_of", [0, 2.0, True, None])
def test_best_of_must_be_a_positive_integer(best_of: object) -> None:
    gw = build(cfg(max_n=2))
    a = one(gw, completions(best_of=best_of, n=2), COMPLETIONS)
    if best_of is None:  # null counts as absent
        assert a.status == 200 and gw.up.bodies[-1]["best_of"] is None
        return
    assert a.status == 400 and error_of(a)["param"] == "best_of"
    assert gw.up.bodies == []


@pytest.mark.parametrize("path", [CHAT, COMPLETIONS])
def test_a_nested_extra_body_cannot_carry_fields_past_the_hardening(path: str) -> None:
    smuggled = {"n": 50, "logprobs": 5, "top_logprobs": 5, "max_tokens": 10**6}
    payload = body_of(extra_body=smuggled) if path == CHAT else completions(extra_body=smuggled)
    gw = build(cfg(max_n=2))
    a = one(gw, payload, path)
    if a.status == 400:
        assert gw.up.bodies == []
        return
    sent = gw.up.bodies[-1]
    assert all(v <= 2 for v in values_of(sent, "n"))
    assert all(v <= 100 for v in values_of(sent, "max_tokens"))
    assert not list(values_of(sent, "logprobs")) and not list(values_of(sent, "top_logprobs"))


def test_completions_and_streams_get_the_caps_and_the_token_limit() -> None:
    gw = build(cfg(max_n=2), ScriptedUpstream(events=[completion_chunk("x", finish="stop"), b"[DONE]"]))
    a1, a2 = many(
        gw,
        [
            (completions(n=9, max_tokens=10**6), COMPLETIONS, "alice-key"),
            (completions(n=2, stream=True), COMPLETIONS, "alice-key"),
        ],
    )
    assert (a1.status, a2.status) == (200, 200)
    assert (gw.up.bodies[0]["n"], gw.up.bodies[0]["max_tokens"]) == (2, 100)
    assert (gw.up.bodies[1]["n"], gw.up.bodies[1]["max_tokens"]) == (2, 100)
    first, second = gw.events()
    assert attrs(first)["hardening"] == ["n_capped", "max_tokens_capped"]
    assert attrs(second)["hardening"] == ["max_tokens_defaulted"] and attrs(second)["stream"] is True


# == the query budget ================================================================================


def test_the_query_budget_is_per_principal_counts_streams_and_records_its_crossing_once() -> None:
    gw = build(
        cfg(limits={"per_key": {}, "queries_per_day": 2}),
        ScriptedUpstream(reply=completion_reply(), events=[completion_chunk("x", finish="stop"), b"[DONE]"]),
    )
    answers = many(
        gw,
        [
            (body_of(model="red-m"), CHAT, "alice-key"),  # 403: never reached the limits
            (completions([[1, 2, 3]]), COMPLETIONS, "alice-key"),  # 422: nor did this
            (completions(), COMPLETIONS, "alice-key"),  # 1
            (completions(stream=True), COMPLETIONS, "alice-key2"),  # 2: another key, a stream
            (embeddings(), EMBEDDINGS, "alice-key"),  # crosses the budget
            (completions(), COMPLETIONS, "alice-key2"),  # still spent
            (completions(), COMPLETIONS, "bob-key"),  # a teammate has a budget of his own
        ],
    )
    assert [a.status for a in answers] == [403, 422, 200, 200, 429, 429, 200]
    assert {error_of(a)["code"] for a in answers[4:6]} == {"budget_exceeded"}
    assert {error_of(a)["type"] for a in answers[4:6]} == {"rate_limit_error"}
    crossings = [e for e in gw.events() if e.tag is EventTag.GATEWAY_BUDGET_EXCEEDED]
    assert len(crossings) == 1
    (crossing,) = crossings
    assert crossing.actor == "alice" and crossing.outcome == "limited"
    assert attrs(crossing) == {"key_id": "kid-alice-key", "budget": "queries_per_day"}
    call_tags = [e.tag for e in gw.events() if e.tag is not EventTag.GATEWAY_BUDGET_EXCEEDED]
    assert call_tags.count(EventTag.GATEWAY_LIMIT_EXCEEDED) == 2
    assert len(call_tags) == len(answers)  # and each call its one event


def test_a_batch_of_prompts_cannot_spend_less_of_the_budget_than_the_prompts_it_sends() -> None:
    gw = build(cfg(limits={"per_key": {}, "queries_per_day": 3}), ScriptedUpstream(reply=completion_reply()))
    batch, after = many(
        gw,
        [
            (completions([f"prompt {i}" for i in range(50)]), COMPLETIONS, "alice-key"),
            (completions(), COMPLETIONS, "alice-key"),
        ],
    )
    # 50 prompts against a budget of 3: refused outright, or the budget is spent after it
    assert 429 in (batch.status, after.status)


def test_a_call_spends_a_query_per_prompt_and_completion_and_a_batch_too_big_spends_nothing() -> None:
    gw = build(
        cfg(max_n=2, limits={"per_key": {}, "queries_per_day": 5}),
        # one answer both routes read: a completions choice's text, a chat choice's message
        ScriptedUpstream(
            reply=completion_reply({"index": 0, "text": "fine", "message": {"content": "fine"}})
        ),
    )
    answers = many(
        gw,
        [
            (completions(["a", "b", "c"], n=9), COMPLETIONS, "alice-key"),  # 3 x 2 (n capped): 6 > 5
            (completions(["a", "b"]), COMPLETIONS, "alice-key"),  # 2: 3 left
            (embeddings(["x", "y"]), EMBEDDINGS, "alice-key"),  # 2: 1 left
            (body_of(n=2), CHAT, "alice-key"),  # 2 > 1
            (body_of(), CHAT, "alice-key"),  # the last one
            (completions(), COMPLETIONS, "alice-key"),  # crosses the budget
        ],
    )
    assert [a.status for a in answers] == [429, 200, 200, 429, 200, 429]
    assert {error_of(answers[i])["code"] for i in (0, 3, 5)} == {"budget_exceeded"}
    assert "6 queries" in error_of(answers[0])["message"] and "budget is 5" in error_of(answers[0])["message"]
    assert answers[0].headers[b"x-should-retry"] == b"false"  # more than the whole budget: never passes
    assert len(gw.up.bodies) == 3
    crossings = [e for e in gw.events() if e.tag is EventTag.GATEWAY_BUDGET_EXCEEDED]
    assert len(crossings) == 1  # recorded by the call that spent the budget, not by the batches


def test_a_spent_budget_tells_the_sdk_not_to_retry_and_a_rate_limit_does_not() -> None:
    gw = build(cfg(limits={"per_key": {}, "queries_per_day": 1}))
    _, spent = many(gw, [(completions(), COMPLETIONS, "alice-key")] * 2)
    assert spent.status == 429 and spent.headers[b"x-should-retry"] == b"false"
    assert int(spent.headers[b"retry-after"]) > 60  # what it says: not within seconds
    gw = build(cfg(limits={"per_key": {"requests_per_minute": 1}}))
    _, limited = many(gw, [(completions(), COMPLETIONS, "alice-key")] * 2)
    assert limited.status == 429 and int(limited.headers[b"retry-after"]) <= 60
    assert b"x-should-retry" not in limited.headers  # back within the minute: the SDK may retry


# == /v1/completions: every prompt shape is scanned ==================================================


@pytest.mark.parametrize(
    "payload",
    [
        completions(f"tell me about {DENY}"),
        completions(["a harmless line", f"and {DENY}"]),
        completions("def f():", suffix=f"# {DENY}"),
        embeddings(f"about {DENY}"),
        embeddings(["fine", "also fine", DENY]),
    ],
    ids=["prompt", "prompt-list", "suffix", "input", "input-list"],
)
def test_every_text_prompt_shape_is_scanned_before_it_goes_upstream(payload: dict[str, Any]) -> None:
    gw = build(cfg())
    path = EMBEDDINGS if "input" in payload else COMPLETIONS
    a = one(gw, payload, path)
    assert a.status == 400 and error_of(a)["code"] == "content_filter"
    assert gw.up.bodies == []
    ev = gw.one_event()
    assert ev.tag is EventTag.GATEWAY_REQUEST_BLOCKED
    assert attrs(ev)["guards"]["input"] == "blocked"


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        (COMPLETIONS, completions([1, 2, 3])),
        (COMPLETIONS, completions([[1, 2], [3]])),
        (EMBEDDINGS, embeddings([101, 202])),
        (EMBEDDINGS, embeddings([[101], [202, 303]])),
    ],
)
def test_token_arrays_are_refused_unsent_and_their_guard_is_not_recorded_as_passed(
    path: str, payload: dict[str, Any]
) -> None:
    gw = build(cfg())
    a = one(gw, payload, path)
    assert a.status == 422
    err = error_of(a)
    assert err["code"] == "unscannable_input" and err["param"] in ("prompt", "input")
    assert gw.up.bodies == []
    assert attrs(gw.one_event())["guards"] == {"input": "not_run", "output": "not_run"}


@pytest.mark.parametrize(
    "payload", [completions([]), completions(["ok", 3]), completions(None), embeddings({"t": DENY})]
)
def test_malformed_prompts_are_a_400(payload: dict[str, Any]) -> None:
    gw = build(cfg())
    a = one(gw, payload, EMBEDDINGS if "input" in payload else COMPLETIONS)
    assert a.status == 400 and error_of(a)["param"] in ("prompt", "input")
    assert gw.up.bodies == []


@pytest.mark.parametrize("suffix", [[f"# {DENY}"], {"text": DENY}])
def test_a_suffix_that_is_not_text_is_refused_not_sent_unscanned(suffix: object) -> None:
    gw = build(cfg())
    a = one(gw, completions("def f():", suffix=suffix), COMPLETIONS)
    assert a.status == 400
    assert gw.up.bodies == []


# == what comes back from /v1/completions and /v1/embeddings ========================================


@pytest.mark.parametrize("text", [[f"the plan is {DENY}"], {"value": DENY}])
def test_a_completions_answer_whose_text_is_not_a_string_is_still_scanned(text: object) -> None:
    """Every string of an answer is scanned, whatever shape holds it: the term is found and blocks."""
    gw = build(
        cfg(), ScriptedUpstream(reply=completion_reply({"index": 0, "text": text, "finish_reason": "stop"}))
    )
    a = one(gw, completions(), COMPLETIONS)
    assert DENY not in a.body.decode()
    assert a.status == 400 and error_of(a)["code"] == "content_filter"


def test_a_completions_answer_with_a_null_text_is_still_an_answer() -> None:
    gw = build(
        cfg(), ScriptedUpstream(reply=completion_reply({"index": 0, "text": None, "finish_reason": "stop"}))
    )
    a = one(gw, completions(), COMPLETIONS)
    assert a.status == 200 and a.json()["choices"][0]["text"] is None


def test_a_streamed_completions_chunk_whose_text_is_not_a_string_is_not_relayed() -> None:
    bad = orjson.dumps(
        {
            "id": "c",
            "object": "text_completion",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "text": [f"the plan is {DENY}"], "finish_reason": None}],
        }
    )
    gw = build(cfg(), ScriptedUpstream(events=[bad, completion_chunk("", finish="stop"), b"[DONE]"]))
    a = one(gw, completions(stream=True), COMPLETIONS)
    assert DENY not in a.body.decode()
    assert not a.done()


def test_a_completions_answer_is_guarded_and_names_the_callers_model() -> None:
    gw = build(
        cfg(),
        ScriptedUpstream(
            reply=completion_reply({"index": 0, "text": f"it is {DENY}", "finish_reason": "stop"})
        ),
    )
    a = one(gw, completions(), COMPLETIONS)
    assert a.status == 400 and error_of(a)["code"] == "content_filter"
    assert DENY not in a.body.decode()
    assert gw.up.bodies[-1]["model"] == "internal-base-7b"  # the provider's name goes upstream only
    gw = build(cfg(), ScriptedUpstream(reply=completion_reply()))
    a = one(gw, completions(echo=True), COMPLETIONS)
    assert a.status == 200 and a.json()["model"] == "m"
    assert "internal-base-7b" not in a.body.decode()
    assert attrs(gw.one_event())["guards"] == {"input": "passed", "output": "passed"}


def test_embeddings_pass_their_options_and_never_name_the_upstream_model() -> None:
    gw = build(cfg(), ScriptedUpstream(reply=EMBEDDING_REPLY))
    a = one(gw, embeddings(["one", "two"], encoding_format="base64", dimensions=3), EMBEDDINGS)
    assert a.status == 200
    assert a.json()["model"] == "m" and "internal-base-7b" not in a.body.decode()
    sent = gw.up.bodies[-1]
    assert sent["input"] == ["one", "two"] and sent["encoding_format"] == "base64" and sent["dimensions"] == 3
    assert "max_tokens" not in sent and "max_completion_tokens" not in sent  # no completion caps added
    ev = gw.one_event()
    # embeddings have no output text to guard: not_configured, never passed
    assert attrs(ev)["guards"] == {"input": "passed", "output": "not_configured"}
    assert attrs(ev)["tokens"] == {"prompt": 2, "completion": 0}


@pytest.mark.parametrize("dimensions", [0, 2.0, "3", True])
def test_embeddings_dimensions_must_be_a_positive_integer(dimensions: object) -> None:
    gw = build(cfg(), ScriptedUpstream(reply=EMBEDDING_REPLY))
    a = one(gw, embeddings(dimensions=dimensions), EMBEDDINGS)
    assert a.status == 400 and error_of(a)["param"] == "dimensions"
    assert gw.up.bodies == []


def test_a_model_that_does_not_serve_a_route_is_a_422_before_any_limit() -> None:
    gw = build(cfg(limits={"per_key": {}, "queries_per_day": 1}), ScriptedUpstream(reply=EMBEDDING_REPLY))
    a1, a2 = many(
        gw,
        [
            ({**embeddings(), "model": "chat-only"}, EMBEDDINGS, "alice-key"),
            (embeddings(), EMBEDDINGS, "alice-key"),
        ],
    )
    assert a1.status == 422 and error_of(a1)["code"] == "unsupported_model_operation"
    assert a2.status == 200


# == GET /v1/models ===================================================================================


def _get(gw: Gw, path: str, key: str) -> Answer:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def go(gw: Gw) -> Answer:
        headers = [(b"authorization", b"Bearer " + key.encode())]
        return await drive(gw.app, asgi_scope(path, method="GET", headers=headers), receive)

    return run_session(gw, go)


def test_models_lists_only_what_the_caller_may_invoke_and_nothing_of_the_upstreams() -> None:
    scopes = {"alice-key2": KeyScope(models=("m",))}
    gw = build(cfg(), scopes=scopes)
    ids = {
        key: sorted(m["id"] for m in _get(gw, "/v1/models", key).json()["data"])
        for key in ("alice-key", "alice-key2", "carol-key")
    }
    assert ids == {
        "alice-key": ["chat-only", "m"],
        "alice-key2": ["m"],
        "carol-key": ["chat-only", "m", "red-m"],
    }
    listing = _get(gw, "/v1/models", "carol-key").body.decode()
    for leak in ("internal-", "demo", "upstream", "http"):
        assert leak not in listing
    hidden = _get(gw, "/v1/models/red-m", "alice-key")
    assert hidden.status == 404 and error_of(hidden)["code"] == "model_not_found"
    shown = _get(gw, "/v1/models/red-m", "carol-key")
    assert shown.status == 200 and shown.json() == {**shown.json(), "id": "red-m", "owned_by": "bastion"}
    assert _get(gw, "/v1/models", "nobody").status == 401


# == the official SDK maps every refusal to its usual exception ======================================


def test_the_openai_sdk_raises_its_usual_exceptions_on_the_less_travelled_routes() -> None:
    gw = build(cfg(limits={"per_key": {}, "queries_per_day": 2}), ScriptedUpstream(reply=EMBEDDING_REPLY))

    async def go(gw: Gw) -> list[tuple[type[Exception], str | None, str | None]]:
        transport = httpx2.ASGITransport(app=gw.app)
        out: list[tuple[type[Exception], str | None, str | None]] = []
        async with httpx2.AsyncClient(transport=transport) as http:
            c = openai.AsyncOpenAI(
                base_url="http://gw/v1", api_key="alice-key", max_retries=0, http_client=http
            )
            calls: list[Any] = [
                lambda: c.embeddings.create(model="m", input=[101, 202]),
                lambda: c.completions.create(model="m", prompt=[[1, 2, 3]]),
                lambda: c.embeddings.create(model="nope", input="x"),
                lambda: c.completions.create(model="m", prompt="x", extra_body={"n": 1.5}),
                lambda: c.completions.create(model="m", prompt=f"x {DENY}"),
                lambda: c.models.retrieve("red-m"),
                lambda: c.embeddings.create(model="red-m", input="x"),
            ]
            for fn in calls:
                try:
                    await fn()
                except openai.APIStatusError as e:
                    out.append((type(e), e.code, e.param))
            await c.embeddings.create(model="m", input="x")  # the second query (the blocked one spent one)
            for _ in range(2):
                try:
                    await c.embeddings.create(model="m", input="x")
                except openai.APIStatusError as e:
                    out.append((type(e), e.code, e.param))
        return out

    assert run_session(gw, go) == [
        (openai.UnprocessableEntityError, "unscannable_input", "input"),
        (openai.UnprocessableEntityError, "unscannable_input", "prompt"),
        (openai.NotFoundError, "model_not_found", "model"),
        (openai.BadRequestError, "invalid_request", "n"),
        (openai.BadRequestError, "content_filter", None),
        (openai.NotFoundError, "model_not_found", "model"),
        (openai.PermissionDeniedError, "permission_denied", "model"),
        (openai.RateLimitError, "budget_exceeded", None),
        (openai.RateLimitError, "budget_exceeded", None),
    ]


# -- chat text in shapes the output guards do not read (found while fixing the above) ---------------


def chat_answer(message: dict[str, Any]) -> UpstreamReply:
    obj = {"id": "x", "object": "chat.completion", "created": 1, "model": "internal-base-7b"}
    choice = {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}
    return reply({**obj, "choices": [choice], "usage": USAGE})


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}


@pytest.mark.parametrize(
    "message",
    [
        {"content": None, "refusal": {"text": f"no: {DENY}"}},
        {"content": "ok", "reasoning_content": [f"thinking of {DENY}"]},
        {
            "content": None,
            "tool_calls": [
                {"id": "t", "type": "function", "function": {"name": "f", "arguments": {"q": DENY}}}
            ],
        },
        {"content": None, "function_call": {"name": "f", "arguments": [DENY]}},
        {"content": [{"type": "text", "text": {"value": DENY}}]},
        {"content": "ok", "tool_calls": [f"call {DENY}"]},
    ],
)
def test_a_chat_answer_with_text_in_an_odd_shape_is_still_scanned(message: dict[str, Any]) -> None:
    """Unscanned, it would reach the caller with the output guard recorded as passed: every string of
    an answer is scanned, whatever shape holds it, so the term is found and blocks; arguments that are
    not JSON text (an object, whose keys no guard reads) are refused as not an answer."""
    gw = build(cfg(), ScriptedUpstream(reply=chat_answer(message)))
    a = one(gw, chat(), CHAT)
    fns = [tc.get("function") or {} for tc in message.get("tool_calls", []) if isinstance(tc, dict)]
    args = [fn.get("arguments") for fn in [*fns, message.get("function_call") or {}]]
    refused = any(x is not None and not isinstance(x, str) for x in args)
    assert (a.status, error_of(a)["code"]) == (
        (502, "upstream_error") if refused else (400, "content_filter")
    )
    assert DENY not in a.body.decode()


def test_a_chat_answer_with_null_texts_and_string_arguments_is_relayed() -> None:
    message = {
        "content": None,
        "refusal": None,
        "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": '{"q": 1}'}}],
    }
    gw = build(cfg(), ScriptedUpstream(reply=chat_answer(message)))
    a = one(gw, chat(), CHAT)
    assert a.status == 200
    assert a.json()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == '{"q": 1}'


def _chat_chunk(choice: Any) -> bytes:
    obj = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}
    return orjson.dumps(obj)


@pytest.mark.parametrize(
    "choice",
    [
        {"index": 0, "delta": {"content": [f"the plan is {DENY}"]}, "finish_reason": None},
        {
            "index": 0,
            "delta": {"content": [{"type": "text", "text": f"the plan is {DENY}"}]},
            "finish_reason": None,
        },
        f"the plan is {DENY}",
        {"index": 0, "delta": f"the plan is {DENY}", "finish_reason": None},
        {"index": 0, "delta": {"refusal": {"text": DENY}}, "finish_reason": None},
        {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": {"q": DENY}}}]}},
    ],
)
def test_a_guarded_chat_stream_event_with_text_in_a_shape_no_guard_reads_is_not_relayed(choice: Any) -> None:
    """After the answer began (a role event first): the stream ends with the error event, no [DONE]."""
    start = _chat_chunk({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None})
    end = _chat_chunk({"index": 0, "delta": {}, "finish_reason": "stop"})
    gw = build(cfg(), ScriptedUpstream(events=[start, _chat_chunk(choice), end, b"[DONE]"]))
    a = one(gw, chat(stream=True), CHAT)
    assert a.status == 200
    assert DENY not in a.body.decode()
    assert not a.done()
    assert a.error_event() is not None
