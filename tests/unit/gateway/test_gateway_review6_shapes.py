"""Review 6: the answer and stream-event shapes real providers send, in tension.

* Completeness: every field of a chat/completions answer or stream event that carries text the caller
  (or its application) shows or acts on is scanned by the output guards, or the answer is refused —
  never relayed unscanned with the guard recorded as passed. (The defects this found are fixed; these
  are their regression tests.)
* Compatibility: the shapes OpenAI, Azure OpenAI, vLLM, llama.cpp, Ollama, LM Studio, DeepSeek, Groq
  and OpenRouter send still pass (a refused legitimate shape makes the provider unusable).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bastion.domain.identity import Role
from bastion.gateway.upstream import UpstreamReply

from .harness import principal
from .test_gateway_review3_support import Answer, ScriptedUpstream, attrs, build
from .test_gateway_review5_surface import (
    CHAT,
    DENY,
    GUARDS,
    USAGE,
    _chat_chunk,
    cfg,
    chat,
    chat_answer,
    one,
    reply,
    values_of,
)

SECRET = f"the plan is {DENY}"


def answer(message: dict[str, Any], choice: dict[str, Any] | None = None, **top: Any) -> UpstreamReply:
    """A chat.completion whose one choice has ``message`` (and the choice-level fields ``choice``)."""
    ch = {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop", **(choice or {})}
    obj = {"id": "x", "object": "chat.completion", "created": 1, "model": "internal-base-7b"}
    return reply({**obj, "choices": [ch], "usage": USAGE, **top})


def event(choices: list[Any] | None, **top: Any) -> bytes:
    """One chat.completion.chunk (``choices`` None: the key left out)."""
    obj: dict[str, Any] = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", **top}
    if choices is not None:
        obj["choices"] = choices
    return orjson.dumps(obj)


def delta(d: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    """A streamed choice 0 (``d`` None: no ``delta`` key)."""
    ch: dict[str, Any] = {"index": 0, "finish_reason": finish, **extra}
    if d is not None:
        ch["delta"] = d
    return ch


START = _chat_chunk(delta({"role": "assistant", "content": ""}))
END = _chat_chunk(delta({}, "stop"))


def stream(events: list[bytes], key: str = "alice-key", guards: dict[str, Any] | None = None) -> Answer:
    gw = build(cfg(guards=guards or GUARDS), ScriptedUpstream(events=events))
    return one(gw, chat(stream=True), CHAT, key=key)


# == completeness: unary answers ======================================================================


@pytest.mark.parametrize(
    ("message", "choice"),
    [
        pytest.param(
            {
                "content": None,
                "audio": {"id": "audio_1", "data": "UklGRg==", "expires_at": 1, "transcript": SECRET},
            },
            {},
            id="openai-audio-transcript",
        ),
        pytest.param(
            {
                "content": "see the source",
                "annotations": [
                    {
                        "type": "url_citation",
                        "url_citation": {
                            "start_index": 0,
                            "end_index": 3,
                            "title": SECRET,
                            "url": "https://x.test/",
                        },
                    }
                ],
            },
            {},
            id="openai-url-citation",
        ),
        pytest.param(
            {
                "content": None,
                "tool_calls": [{"id": "t", "type": "custom", "custom": {"name": "sh", "input": SECRET}}],
            },
            {},
            id="openai-custom-tool-input",
        ),
        pytest.param(
            {
                "content": None,
                "tool_calls": [
                    {"id": "t", "type": "function", "function": {"name": DENY, "arguments": "{}"}}
                ],
            },
            {},
            id="tool-call-name",
        ),
        pytest.param(
            {"content": [{"type": "refusal", "refusal": SECRET}]},
            {},
            id="refusal-part",
        ),
        pytest.param(
            {
                "content": [
                    {"type": "thinking", "thinking": [{"type": "text", "text": SECRET}]},
                    {"type": "text", "text": "ok"},
                ]
            },
            {},
            id="mistral-thinking-part",
        ),
        pytest.param(
            {"content": "ok", "thinking": SECRET},
            {},
            id="thinking",
        ),
        pytest.param(
            {
                "content": "ok",
                "reasoning": "thinking it over",
                "reasoning_details": [
                    {"type": "reasoning.text", "text": SECRET, "format": "unknown", "index": 0}
                ],
            },
            {},
            id="openrouter-reasoning-details-text",
        ),
        pytest.param(
            {
                "content": "ok",
                "reasoning_details": [{"type": "reasoning.summary", "summary": SECRET, "index": 0}],
            },
            {},
            id="openrouter-reasoning-details-summary",
        ),
        pytest.param(
            {"content": "ok"},
            {"text": SECRET},
            id="chat-choice-text",
        ),
    ],
)
def test_text_in_every_answer_field_is_scanned_or_refused(
    message: dict[str, Any], choice: dict[str, Any]
) -> None:
    gw = build(cfg(), ScriptedUpstream(reply=answer(message, choice)))
    a = one(gw, chat(), CHAT)
    assert DENY not in a.body.decode()
    assert a.status in (400, 502)
    assert attrs(gw.one_event())["guards"]["output"] != "passed"


@pytest.mark.parametrize(
    "body",
    [
        {
            "content": SECRET,
            "stop": True,
            "model": "x",
            "tokens_predicted": 5,
            "timings": {},
        },  # llama.cpp /completion
        {"model": "x", "message": {"role": "assistant", "content": SECRET}, "done": True},  # Ollama /api/chat
        {
            "id": "r",
            "object": "response",
            "output": [{"type": "message", "content": [{"type": "output_text", "text": SECRET}]}],
        },
    ],
    ids=["llamacpp-native", "ollama-native", "responses-api"],
)
def test_an_answer_without_choices_is_refused_not_relayed_unscanned(body: dict[str, Any]) -> None:
    """A provider (or a base_url without /v1 on llama.cpp, whose /completions is its native route)
    answering in another format: its text sits where no output guard reads."""
    gw = build(cfg(), ScriptedUpstream(reply=reply(body)))
    a = one(gw, chat(), CHAT)
    assert DENY not in a.body.decode()
    assert a.status == 502


# == completeness: stream events ======================================================================


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(
            _chat_chunk(delta({"audio": {"id": "a", "transcript": SECRET}})),
            id="openai-audio-transcript",
        ),
        pytest.param(
            _chat_chunk(
                delta(
                    {
                        "annotations": [
                            {
                                "type": "url_citation",
                                "url_citation": {"title": SECRET, "url": "https://x.test/"},
                            }
                        ]
                    }
                )
            ),
            id="openai-url-citation",
        ),
        pytest.param(
            _chat_chunk(
                delta(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "t",
                                "type": "function",
                                "function": {"name": DENY, "arguments": ""},
                            }
                        ]
                    }
                )
            ),
            id="tool-call-name",
        ),
        pytest.param(
            _chat_chunk(
                delta(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "t",
                                "type": "custom",
                                "custom": {"name": "sh", "input": SECRET},
                            }
                        ]
                    }
                )
            ),
            id="custom-tool-input",
        ),
        pytest.param(
            _chat_chunk(delta({"thinking": SECRET})),
            id="thinking",
        ),
        pytest.param(
            event(None, content=SECRET, stop=False),
            id="llamacpp-native-content",
        ),
    ],
)
def test_text_in_every_stream_event_field_is_scanned_or_refused(bad: bytes) -> None:
    a = stream([START, bad, END, b"[DONE]"])
    assert a.status == 200
    assert DENY not in a.body.decode()
    assert not a.done() and a.error_event() is not None


# == completeness: log-probabilities and token ids carry the text too ================================

REDACT = {**GUARDS, "rules": [{"action": "redact", "direction": "output"}]}


def _lp(*tokens: str) -> dict[str, Any]:
    return {
        "content": [
            {
                "token": t,
                "logprob": -0.1,
                "bytes": list(t.encode()),
                "top_logprobs": [{"token": t, "logprob": -0.1}],
            }
            for t in tokens
        ]
    }


def _ml_gw(guards: dict[str, Any], up: ScriptedUpstream) -> Any:
    gw = build(cfg(guards=guards), up)
    gw.auth.add("ml-key", principal("mel", Role.ML_ENGINEER, team="blue"))
    return gw


def test_a_redacted_span_does_not_reach_a_logprobs_caller_in_the_tokens() -> None:
    up = ScriptedUpstream(
        reply=answer({"content": SECRET}, {"logprobs": _lp("the", " plan", " is", " project", " zeus")})
    )
    gw = _ml_gw(REDACT, up)
    a = one(gw, chat(logprobs=True, top_logprobs=1), CHAT, key="ml-key")
    assert a.status == 200
    assert DENY not in a.json()["choices"][0]["message"]["content"]  # redacted: this much works
    assert "zeus" not in a.body.decode()


def test_a_blocked_span_does_not_reach_a_logprobs_caller_in_streamed_tokens() -> None:
    events = [
        START,
        _chat_chunk(delta({"content": "the plan is "}, logprobs=_lp("the", " plan", " is", " "))),
        _chat_chunk(delta({"content": "project"}, logprobs=_lp("project"))),
        _chat_chunk(delta({"content": " zeus"}, logprobs=_lp(" zeus"))),
        END,
        b"[DONE]",
    ]
    gw = _ml_gw(GUARDS, ScriptedUpstream(events=events))
    a = one(gw, chat(stream=True, logprobs=True), CHAT, key="ml-key")
    assert a.error_event() is not None and not a.done()  # blocked: this much works
    assert "zeus" not in a.body.decode()


def test_a_blocked_span_does_not_reach_the_caller_as_streamed_token_ids() -> None:
    """No permission needed: ``return_token_ids`` is a vLLM request field passed through."""
    events = [
        START,
        _chat_chunk(delta({"content": "the plan is "}, token_ids=[101, 102, 103])),
        _chat_chunk(delta({"content": "project"}, token_ids=[7777])),
        _chat_chunk(delta({"content": " zeus"}, token_ids=[9999])),
        END,
        b"[DONE]",
    ]
    gw = build(cfg(), ScriptedUpstream(events=events))
    a = one(gw, chat(stream=True, return_token_ids=True), CHAT)
    assert a.error_event() is not None and not a.done()  # blocked: this much works
    sent = {i for c in a.chunks() for ids in values_of(c, "token_ids") if ids for i in ids}
    assert not sent & {7777, 9999}


def test_a_caller_without_the_permission_gets_no_tokens_of_a_redacted_span() -> None:
    """The hardening already covers callers without ``model:logprobs``: logprobs are nulled."""
    up = ScriptedUpstream(reply=answer({"content": SECRET}, {"logprobs": _lp(" project", " zeus")}))
    gw = build(cfg(guards=REDACT), up)
    a = one(gw, chat(logprobs=True), CHAT)
    assert a.status == 200 and "zeus" not in a.body.decode()


# == compatibility: unary answers real providers send =================================================

_FILTER = {k: {"filtered": False, "severity": "safe"} for k in ("hate", "self_harm", "sexual", "violence")}
_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
}
_DETAILS = [
    {"type": "reasoning.text", "text": "thought", "format": "unknown", "index": 0},
    {"type": "reasoning.encrypted", "data": "gAAAA", "format": "openai-responses-v1", "index": 1},
]


@pytest.mark.parametrize(
    ("message", "choice", "top"),
    [
        (
            {"content": "fine", "refusal": None, "annotations": []},
            {"logprobs": None},
            {"service_tier": "default", "system_fingerprint": "fp"},
        ),
        (
            {"content": None, "refusal": None, "annotations": [], "tool_calls": [_CALL]},
            {"finish_reason": "tool_calls"},
            {},
        ),
        ({"content": "fine", "audio": None, "function_call": None}, {}, {}),
        ({"content": [{"type": "output_text", "text": "fine", "annotations": []}]}, {}, {}),
        (
            {"content": "fine"},
            {"content_filter_results": _FILTER},
            {"prompt_filter_results": [{"prompt_index": 0, "content_filter_results": _FILTER}]},
        ),
        (
            {"content": "fine", "reasoning_content": "thought", "tool_calls": []},
            {"stop_reason": None, "logprobs": None, "token_ids": None},
            {"prompt_logprobs": None, "kv_transfer_params": None},
        ),
        (
            {"content": "fine", "reasoning_content": "thought"},
            {},
            {"timings": {"predicted_n": 1, "predicted_ms": 2.0}},
        ),
        (
            {"content": "fine", "reasoning_content": "thought"},
            {"logprobs": None},
            {"system_fingerprint": "fp_x"},
        ),
        (
            {"content": "fine", "reasoning": "thought"},
            {},
            {"x_groq": {"id": "req_1"}, "usage_breakdown": None},
        ),
        (
            {"content": "fine", "reasoning": "thought", "reasoning_details": _DETAILS},
            {"native_finish_reason": "stop"},
            {"provider": "OpenAI"},
        ),
        ({"content": "fine", "reasoning": "thought"}, {}, {"system_fingerprint": "fp_ollama"}),
        ({"content": "fine"}, {}, {"stats": {}}),
    ],
    ids=[
        "openai",
        "openai-tool-call",
        "openai-null-audio",
        "content-parts",
        "azure",
        "vllm",
        "llamacpp",
        "deepseek",
        "groq",
        "openrouter",
        "ollama",
        "lmstudio",
    ],
)
def test_real_providers_unary_answers_pass(
    message: dict[str, Any], choice: dict[str, Any], top: dict[str, Any]
) -> None:
    gw = build(cfg(), ScriptedUpstream(reply=answer(message, choice, **top)))
    a = one(gw, chat(), CHAT)
    assert a.status == 200, a.body
    got = a.json()
    assert got["model"] == "m"
    assert got["choices"][0]["message"] == {"role": "assistant", **message}
    assert attrs(gw.one_event())["guards"]["output"] == "passed"


def test_an_openai_answer_with_a_null_refusal_and_tool_calls_keeps_them() -> None:
    gw = build(
        cfg(), ScriptedUpstream(reply=chat_answer({"content": None, "refusal": None, "tool_calls": [_CALL]}))
    )
    a = one(gw, chat(), CHAT)
    assert a.status == 200 and a.json()["choices"][0]["message"]["tool_calls"] == [_CALL]


# == compatibility: streams real providers send =======================================================

_USAGE_EVENT = event([], usage=USAGE)
_TOOL_FIRST = {
    "index": 0,
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": ""},
}

STREAMS: dict[str, list[bytes]] = {
    "openai": [
        _chat_chunk(delta({"role": "assistant", "content": "", "refusal": None}, logprobs=None)),
        _chat_chunk(delta({"content": "fi"}, logprobs=None)),
        _chat_chunk(delta({"content": "ne"}, logprobs=None)),
        _chat_chunk(delta({}, "stop", logprobs=None)),
        _USAGE_EVENT,
    ],
    "azure": [
        event([], prompt_filter_results=[{"prompt_index": 0, "content_filter_results": _FILTER}], model=""),
        _chat_chunk(delta({"role": "assistant", "content": ""}, content_filter_results={})),
        _chat_chunk(delta({"content": "fine"}, content_filter_results=_FILTER)),
        _chat_chunk(delta({}, "stop", content_filter_results={})),
        _chat_chunk(
            delta(
                None,
                content_filter_results=_FILTER,
                content_filter_offsets={"start_offset": 0, "end_offset": 4},
            )
        ),
    ],
    "vllm": [
        _chat_chunk(delta({"role": "assistant", "content": ""}, logprobs=None)),
        _chat_chunk(delta({"reasoning_content": "thought"}, logprobs=None)),
        _chat_chunk(delta({"content": "fine"}, logprobs=None, stop_reason=None, token_ids=None)),
        _chat_chunk(delta({"content": ""}, "stop", stop_reason=None)),
        _USAGE_EVENT,
    ],
    "llamacpp": [
        _chat_chunk(delta({"content": "fi"})),
        _chat_chunk(delta({"content": "ne"})),
        event([delta({}, "stop")], timings={"predicted_n": 2}, usage=USAGE),
    ],
    "deepseek": [
        _chat_chunk(delta({"role": "assistant", "content": None, "reasoning_content": ""})),
        _chat_chunk(delta({"content": None, "reasoning_content": "thought"})),
        _chat_chunk(delta({"content": "fine", "reasoning_content": None})),
        event([delta({"content": ""}, "stop")], usage=USAGE, system_fingerprint="fp_x"),
    ],
    "groq": [
        event([delta({"role": "assistant", "content": ""})], x_groq={"id": "req_1"}),
        _chat_chunk(delta({"reasoning": "thought"})),
        _chat_chunk(delta({"content": "fine"})),
        event([delta({}, "stop")], x_groq={"id": "req_1", "usage": USAGE}),
    ],
    "openrouter": [
        event(
            [
                delta(
                    {
                        "role": "assistant",
                        "content": "",
                        "reasoning": "thought",
                        "reasoning_details": _DETAILS[:1],
                    }
                )
            ],
            provider="OpenAI",
        ),
        event(
            [delta({"role": "assistant", "content": "fine"}, native_finish_reason=None)], provider="OpenAI"
        ),
        event(
            [delta({"role": "assistant", "content": ""}, "stop", native_finish_reason="stop")],
            provider="OpenAI",
        ),
        event([], usage=USAGE, provider="OpenAI"),
    ],
    "ollama": [
        _chat_chunk(delta({"role": "assistant", "content": "", "reasoning": "thought"})),
        _chat_chunk(delta({"role": "assistant", "content": "fine"})),
        event([delta({"role": "assistant", "content": ""}, "stop")], system_fingerprint="fp_ollama"),
        event([], usage=USAGE, system_fingerprint="fp_ollama"),
    ],
    "lmstudio": [
        _chat_chunk(delta({"role": "assistant", "content": "fine"}, logprobs=None)),
        _chat_chunk(delta({}, "stop", logprobs=None)),
        event([], usage=USAGE, stats={}),
    ],
}


@pytest.mark.parametrize("provider", list(STREAMS))
def test_real_providers_streams_pass(provider: str) -> None:
    a = stream([*STREAMS[provider], b"[DONE]"])
    assert a.status == 200
    assert a.error_event() is None and a.done(), a.body
    assert a.text() == "fine"


def test_an_openai_streamed_tool_call_passes_with_its_name_and_arguments() -> None:
    events = [
        _chat_chunk(
            delta({"role": "assistant", "content": None, "tool_calls": [_TOOL_FIRST], "refusal": None})
        ),
        _chat_chunk(delta({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]})),
        _chat_chunk(delta({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]})),
        _chat_chunk(delta({}, "tool_calls")),
        b"[DONE]",
    ]
    a = stream(events)
    assert a.done() and a.error_event() is None
    assert a.tool_args() == '{"city":"Paris"}'
    names = [
        tc["function"]["name"]
        for c in a.chunks()
        for ch in c["choices"]
        for tc in ch["delta"].get("tool_calls") or []
        if "name" in tc.get("function", {})
    ]
    assert names == ["get_weather"]


def test_a_stream_of_finish_only_and_empty_choices_passes() -> None:
    """OpenAI's ``delta: {}`` finish event, Azure's choice-less first event, a choice with no delta."""
    events = [event([], prompt_filter_results=[]), START, _chat_chunk(delta(None)), END, b"[DONE]"]
    a = stream(events)
    assert a.done() and a.error_event() is None


def test_openrouter_reasoning_details_keep_only_their_opaque_parts_on_a_guarded_stream() -> None:
    """Their text repeats the streamed ``reasoning`` (which the guards read) in pieces they would not:
    dropped; the encrypted reasoning and signatures the next turn sends back are kept."""
    details = [
        {"type": "reasoning.text", "text": SECRET, "signature": "sig-1", "index": 0},
        {"type": "reasoning.summary", "summary": SECRET, "index": 1},
        {"type": "reasoning.encrypted", "data": "opaque-blob", "index": 2},
    ]
    a = stream(
        [START, _chat_chunk(delta({"reasoning": "thinking", "reasoning_details": details})), END, b"[DONE]"]
    )
    assert a.status == 200 and a.done()
    assert DENY not in a.body.decode()
    assert a.text(fld="reasoning") == "thinking"
    kept = [
        d
        for c in a.chunks()
        for ch in c["choices"]
        for d in (ch.get("delta") or {}).get("reasoning_details", [])
    ]
    assert [d.get("signature") or d.get("data") for d in kept] == ["sig-1", None, "opaque-blob"]


def test_a_chat_choice_text_beside_its_delta_is_dropped_on_a_guarded_stream() -> None:
    """Together repeats a chunk's content as the choice's ``text``: the guards read the delta."""
    a = stream([START, _chat_chunk(delta({"content": "hello"}, text=SECRET)), END, b"[DONE]"])
    assert a.status == 200 and a.done()
    assert DENY not in a.body.decode() and a.text() == "hello"


# == found by the review of these fixes ============================================================


@pytest.mark.parametrize(
    "message",
    [
        {"content": "hi", "x": {f"note: {DENY}": 1}},  # a key is text when it is not a field name
        {"content": "hi", "data": SECRET},  # opaque only where it is known to be (audio, reasoning)
        {"content": "hi", "role": SECRET},  # a label that is not one word is text
    ],
)
def test_text_in_keys_opaque_names_and_labels_elsewhere_is_scanned(message: dict[str, Any]) -> None:
    a = one(build(cfg(), ScriptedUpstream(reply=answer(message))), chat(), CHAT)
    assert a.status == 400 and DENY not in a.body.decode()


def test_the_providers_model_name_is_not_scanned_it_is_replaced() -> None:
    """A deny-listed word in the provider's model name cannot block every answer: the caller's name
    replaces it before the scan, and the provider's never leaves."""
    guards = {**GUARDS, "options": {"denylist": {"terms": [DENY, "internal-base"]}}}
    a = one(build(cfg(guards=guards), ScriptedUpstream(reply=answer({"content": "fine"}))), chat(), CHAT)
    assert a.status == 200 and a.json()["model"] == "m" and "internal-base" not in a.body.decode()


@pytest.mark.parametrize(
    "bad",
    [
        _chat_chunk(delta({"content": "hi", f"a {DENY}": None})),  # a key that is not a field name
        _chat_chunk(delta({"content": "hi"}, extra={f"a {DENY}": 1})),  # nested, under an unknown key
    ],
)
def test_a_guarded_stream_event_with_text_in_a_key_is_refused(bad: bytes) -> None:
    a = stream([START, bad, END, b"[DONE]"])
    assert DENY not in a.body.decode() and not a.done() and a.error_event() is not None


@pytest.mark.parametrize("finish", ["STOP", ""])
def test_upper_case_and_empty_labels_pass_a_guarded_stream(finish: str) -> None:
    end = _chat_chunk(delta({"role": "", "content": ""}, finish=finish))
    a = stream([START, _chat_chunk(delta({"content": "hello"})), end, b"[DONE]"])
    assert a.status == 200 and a.done() and a.text() == "hello"
