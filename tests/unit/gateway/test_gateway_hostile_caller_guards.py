"""A hostile caller hiding text from the input guards while it still reaches the model, and the
``stream`` flag: what the gateway decides (streamed or not) is what the upstream is asked to do.

The guard here is the deny-list (``project zeus``; its findings block). For each place a request
can carry text the model reads: the SAFE behaviour is a 400 ``content_filter`` and no upstream call.
System and developer messages, tool and function definitions and response schemas are the
application's own: docs/gateway.md ("Default guards") leaves them unscanned unless ``scan_system: true``.
"""

from __future__ import annotations

from typing import Any

import pytest

from bastion.domain.events import EventTag

from .test_gateway_hostile_caller import (
    CHAT,
    COMPLETIONS,
    DENY,
    DENY_GUARDS,
    EMBEDDINGS,
    OK_CHAT,
    assert_openai_error,
    attrs,
    gateway,
    one_event,
    run,
    settings,
)

USER_HI = {"role": "user", "content": "hi"}


def chat(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "bastion-demo", "messages": list(messages or [USER_HI]), **fields}


def fn_tool(description: str = "looks things up", parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": "lookup", "description": description}
    fn["parameters"] = parameters or {"type": "object", "properties": {}}
    return {"type": "function", "function": fn}


SCANNED: list[Any] = [
    pytest.param(CHAT, chat({"role": "user", "content": DENY}), id="user-content"),
    pytest.param(CHAT, chat({"role": "user", "content": [{"type": "text", "text": DENY}]}), id="text-part"),
    pytest.param(
        CHAT,
        chat({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}, "text": DENY}]}),
        id="text-on-other-part",
    ),
    pytest.param(
        CHAT,
        chat(
            USER_HI,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": DENY}}],
            },
            {"role": "tool", "tool_call_id": "1", "content": "ok"},
        ),
        id="tool-call-arguments",
    ),
    pytest.param(
        CHAT, chat(USER_HI, {"role": "tool", "tool_call_id": "1", "content": DENY}), id="tool-result"
    ),
    pytest.param(
        CHAT,
        chat(USER_HI, {"role": "tool", "tool_call_id": "1", "content": [{"type": "text", "text": DENY}]}),
        id="tool-result-parts",
    ),
    pytest.param(
        CHAT, chat(USER_HI, {"role": "function", "name": "f", "content": DENY}), id="function-result"
    ),
    pytest.param(CHAT, chat({"role": "assistant", "content": DENY}, USER_HI), id="assistant-history"),
    pytest.param(COMPLETIONS, {"model": "bastion-demo", "prompt": DENY}, id="prompt"),
    pytest.param(COMPLETIONS, {"model": "bastion-demo", "prompt": ["fine", DENY]}, id="prompt-list"),
    pytest.param(EMBEDDINGS, {"model": "bastion-demo", "input": DENY}, id="input"),
    pytest.param(EMBEDDINGS, {"model": "bastion-demo", "input": ["fine", DENY]}, id="input-list"),
    pytest.param(
        CHAT,
        chat({"role": "user", "name": DENY, "content": "hi"}),
        id="message-name",
    ),
    pytest.param(
        CHAT,
        chat({"role": "assistant", "content": [{"type": "refusal", "refusal": DENY}]}, USER_HI),
        id="refusal-part",
    ),
    pytest.param(
        CHAT,
        chat({"role": "assistant", "content": None, "refusal": DENY}, USER_HI),
        id="assistant-refusal",
    ),
    pytest.param(
        COMPLETIONS,
        {"model": "bastion-demo", "prompt": "fine", "suffix": DENY},
        id="completion-suffix",
    ),
]


#: what the application itself writes besides system messages: scanned with ``scan_system: true``
DEFINITIONS: list[Any] = [
    pytest.param(
        CHAT,
        chat(USER_HI, tools=[fn_tool(description=DENY)]),
        id="tool-description",
    ),
    pytest.param(
        CHAT,
        chat(
            USER_HI,
            tools=[
                fn_tool(
                    parameters={
                        "type": "object",
                        "properties": {"q": {"type": "string", "description": DENY}},
                    }
                )
            ],
        ),
        id="tool-parameter-description",
    ),
    pytest.param(
        CHAT,
        chat(USER_HI, functions=[{"name": "lookup", "description": DENY, "parameters": {"type": "object"}}]),
        id="legacy-function-description",
    ),
    pytest.param(
        CHAT,
        chat(
            USER_HI,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "answer", "description": DENY, "schema": {"type": "object"}},
            },
        ),
        id="response-format-schema",
    ),
]


@pytest.mark.parametrize(("path", "body"), DEFINITIONS)
def test_definitions_are_scanned_with_the_system_prompt(path: str, body: dict[str, Any]) -> None:
    """Tool and function definitions and response schemas are the application's, like its system
    prompt: scanned with ``scan_system: true``, passed as they are without it (docs/gateway.md)."""
    gw = gateway(settings(guards={**DENY_GUARDS, "scan_system": True}))
    a = run(gw, path, body)
    assert_openai_error(a, 400, "invalid_request_error", "content_filter")
    assert gw.up.bodies == []
    plain = gateway()
    assert run(plain, path, body).status == 200 and DENY in str(plain.up.bodies[-1])


@pytest.mark.parametrize(("path", "body"), SCANNED)
def test_text_the_model_reads_is_scanned_by_the_input_guards(path: str, body: dict[str, Any]) -> None:
    gw = gateway()
    a = run(gw, path, body)
    assert_openai_error(a, 400, "invalid_request_error", "content_filter")
    ev = one_event(gw)
    assert ev.tag is EventTag.GATEWAY_REQUEST_BLOCKED and attrs(ev)["guards"]["input"] == "blocked"
    assert gw.up.bodies == []


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (COMPLETIONS, {"model": "bastion-demo", "prompt": [1, 2, 3]}, "prompt"),
        (COMPLETIONS, {"model": "bastion-demo", "prompt": [[1, 2], [3]]}, "prompt"),
        (EMBEDDINGS, {"model": "bastion-demo", "input": [1, 2, 3]}, "input"),
        (EMBEDDINGS, {"model": "bastion-demo", "input": [[1, 2]]}, "input"),
    ],
)
def test_token_arrays_the_guards_cannot_read_are_refused(path: str, body: dict[str, Any], param: str) -> None:
    gw = gateway()
    a = run(gw, path, body)
    assert_openai_error(a, 422, "invalid_request_error", "unscannable_input", param)
    assert gw.up.bodies == []


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (COMPLETIONS, {"model": "bastion-demo", "prompt": ["fine", [1, 2]]}, "prompt"),
        (COMPLETIONS, {"model": "bastion-demo", "prompt": ["fine", None]}, "prompt"),
        (COMPLETIONS, {"model": "bastion-demo", "prompt": []}, "prompt"),
        (COMPLETIONS, {"model": "bastion-demo", "prompt": {"text": DENY}}, "prompt"),
        (EMBEDDINGS, {"model": "bastion-demo", "input": ["fine", 7]}, "input"),
        (EMBEDDINGS, {"model": "bastion-demo", "input": {"text": DENY}}, "input"),
    ],
)
def test_mixed_or_odd_prompt_shapes_are_a_400(path: str, body: dict[str, Any], param: str) -> None:
    gw = gateway()
    a = run(gw, path, body)
    assert_openai_error(a, 400, "invalid_request_error", "invalid_request", param)
    assert gw.up.bodies == []


@pytest.mark.parametrize("role", ["system", "developer"])
def test_system_messages_are_unscanned_by_default_as_documented(role: str) -> None:
    """docs/gateway.md: system/developer messages are the application's own instructions and are not
    scanned unless ``scan_system: true``. A caller that controls the whole ``messages`` array can use
    that to hide text from the input guards: operators facing untrusted callers must set it."""
    gw = gateway()
    a = run(gw, CHAT, chat({"role": role, "content": DENY}, USER_HI))
    assert a.status == 200 and gw.up.bodies[-1]["messages"][0]["content"] == DENY
    assert attrs(one_event(gw))["guards"]["input"] == "passed"


@pytest.mark.parametrize("role", ["system", "developer"])
@pytest.mark.parametrize("content", [DENY, [{"type": "text", "text": DENY}]], ids=["string", "parts"])
def test_scan_system_scans_system_messages(role: str, content: object) -> None:
    gw = gateway(settings(guards={**DENY_GUARDS, "scan_system": True}))
    a = run(gw, CHAT, chat({"role": role, "content": content}, USER_HI))
    assert a.status == 400 and a.error()["code"] == "content_filter"
    assert gw.up.bodies == []


def test_redacted_text_is_what_reaches_the_upstream() -> None:
    """A redact rule: the upstream gets the redacted text, in every place the guards read."""
    guards = {**DENY_GUARDS, "rules": [{"action": "redact", "direction": "input"}]}
    gw = gateway(settings(guards=guards))
    body = chat(
        {"role": "user", "content": [{"type": "text", "text": f"about {DENY}"}]},
        {"role": "tool", "tool_call_id": "1", "content": DENY},
    )
    a = run(gw, CHAT, body)
    assert a.status == 200
    sent = gw.up.raw[-1].decode()
    assert DENY not in sent and "[REDACTED]" in sent


# -- the stream flag -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stream", "streamed"), [(True, True), (False, False), (None, False)])
@pytest.mark.parametrize("path", [CHAT, COMPLETIONS])
def test_the_upstream_streams_exactly_when_the_gateway_relays_a_stream(
    path: str, stream: bool | None, streamed: bool
) -> None:
    body: dict[str, Any] = dict(OK_CHAT) if path == CHAT else {"model": "bastion-demo", "prompt": "hi"}
    body["stream"] = stream
    gw = gateway()
    a = run(gw, path, body)
    assert a.status == 200
    is_sse = a.headers.get(b"content-type", b"").startswith(b"text/event-stream")
    assert is_sse is streamed and gw.up.streamed == [streamed]
    assert bool(gw.up.bodies[-1].get("stream")) is streamed
    assert one_event(gw).attributes["stream"] is streamed


@pytest.mark.parametrize("value", ["true", "false", 1, 0, "1", [], {}, "yes"])
@pytest.mark.parametrize("path", [CHAT, COMPLETIONS])
def test_a_stream_flag_that_is_not_a_boolean_is_a_400(path: str, value: object) -> None:
    """``"false"`` is truthy in Python and ``1`` is true to some providers: neither may leave the
    gateway and the provider disagreeing on whether the answer is a stream."""
    body: dict[str, Any] = dict(OK_CHAT) if path == CHAT else {"model": "bastion-demo", "prompt": "hi"}
    gw = gateway()
    a = run(gw, path, {**body, "stream": value})
    assert_openai_error(a, 400, "invalid_request_error", "invalid_request", "stream")
    assert gw.up.bodies == []


@pytest.mark.parametrize("value", ["include_usage", ["include_usage"], True, 1])
def test_stream_options_that_are_not_an_object_are_a_400(value: object) -> None:
    gw = gateway()
    a = run(gw, CHAT, {**OK_CHAT, "stream": True, "stream_options": value})
    assert_openai_error(a, 400, "invalid_request_error", "invalid_request", "stream_options")
    assert gw.up.bodies == []


def test_a_streamed_call_always_asks_the_upstream_for_usage_and_relays_it_only_when_asked() -> None:
    gw = gateway()
    a = run(gw, CHAT, {**OK_CHAT, "stream": True, "stream_options": {"include_usage": False}})
    assert a.status == 200
    assert gw.up.bodies[-1]["stream_options"] == {"include_usage": True}
    assert b'"usage"' not in a.body
    assert attrs(one_event(gw))["tokens"]["completion"] > 0
