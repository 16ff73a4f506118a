"""Every text field of an answer the caller reads goes past the output guards: refusals and the
reasoning of reasoning models (``reasoning_content`` from vLLM and DeepSeek, ``reasoning`` from
OpenRouter and Ollama), unary and streamed (split over chunks); and a chat answer without a readable
``message`` is refused, not relayed unscanned."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bastion.domain.events import EventTag
from bastion.gateway.wire import MESSAGE_TEXT_FIELDS

from .test_gateway_hostile_upstream import RawServer, _run, answering, http, sse, sse_answer, through_gateway

SECRET = "aws AKIAQWERTYUIOPASDFGH secret"  # the default output guards redact the AWS key id


def _answer(message: dict[str, Any]) -> bytes:
    choice = {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}
    return orjson.dumps(
        {"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": [choice]}
    )


def _chunk(delta: dict[str, Any]) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": None}
    return orjson.dumps(
        {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}
    )


@pytest.mark.parametrize("field", MESSAGE_TEXT_FIELDS)
def test_a_secret_in_a_unary_answer_field_is_redacted(field: str) -> None:
    async def main() -> Any:
        async with RawServer(answering(http(200, _answer({"content": "ok", field: SECRET})))) as srv:
            answer, raised = await through_gateway(srv)
            assert not raised
            return answer

    answer = _run(main())
    assert answer.status == 200
    assert b"AKIA" not in answer.body
    assert orjson.loads(answer.body)["choices"][0]["message"][field].startswith("aws ")


@pytest.mark.parametrize("field", MESSAGE_TEXT_FIELDS)
def test_a_secret_split_over_streamed_chunks_of_a_field_is_redacted(field: str) -> None:
    """The key id arrives in three pieces of ``delta.<field>``: the caller never sees it whole or in
    part, and the rest of the field's text still arrives."""
    pieces = ["aws AKIAQWER", "TYUIOPA", "SDFGH secret and more"]
    body = sse(*(_chunk({field: p}) for p in pieces), _chunk({"content": "done"}), b"[DONE]")

    async def main() -> Any:
        async with RawServer(answering(sse_answer(body))) as srv:
            answer, raised = await through_gateway(srv, stream=True)
            assert not raised
            return answer

    answer = _run(main())
    assert answer.status == 200 and answer.events()[-1] == b"[DONE]"
    texts = [
        orjson.loads(e)["choices"][0]["delta"].get(field) or ""
        for e in answer.events()[:-1]
        if orjson.loads(e).get("choices")
    ]
    relayed = "".join(texts)
    assert "AKIA" not in relayed and "QWER" not in relayed
    assert relayed.startswith("aws ") and relayed.endswith(" secret and more")


@pytest.mark.parametrize(
    "choice",
    [
        {"index": 0, "text": SECRET},
        {"index": 0, "delta": {"content": SECRET}},
        {"index": 0, "message": SECRET},
    ],
    ids=["text", "delta", "message-a-string"],
)
def test_a_chat_answer_without_a_message_object_is_refused(choice: dict[str, Any]) -> None:
    body = orjson.dumps({"id": "x", "object": "chat.completion", "model": "m", "choices": [choice]})

    async def main() -> Any:
        async with RawServer(answering(http(200, body))) as srv:
            answer, _ = await through_gateway(srv)
            return answer

    answer = _run(main())
    assert answer.status == 502 and b"AKIA" not in answer.body
    [event] = answer.audit.events
    assert event.tag is EventTag.GATEWAY_REQUEST_FAILED
