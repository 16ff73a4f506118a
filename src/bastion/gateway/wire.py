"""The OpenAI wire format: request validation, the texts guards scan, hardening, token counts.

Requests stay plain dicts (parsed with orjson) and unknown fields pass through untouched, so
tools/function calling, JSON mode and new provider options keep working. Only what Bastion relies
on is validated; a wrong type is a 400 naming the parameter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from bastion.gateway.errors import ApiError, bad_request

KIND_PATH = {"chat": "/chat/completions", "completions": "/completions", "embeddings": "/embeddings"}
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_MAX_MODEL_CHARS = 256

#: (container, key): where one scannable text lives inside a request or response.
TextRef = tuple[Any, Any]


def parse(body: bytes, kind: str) -> dict[str, Any]:
    """Parse and validate a request body for ``kind`` (chat | completions | embeddings)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise bad_request("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise bad_request("the request body must be a JSON object")
    model = data.get("model")
    if not isinstance(model, str) or not model or len(model) > _MAX_MODEL_CHARS:
        raise bad_request("'model' must be a non-empty string", param="model")
    if "extra_body" in data:
        # the SDKs merge extra_body into the body; a literal one means nothing to OpenAI, but an
        # upstream that merges it too (a LiteLLM proxy) would take its fields past the hardening
        raise bad_request(
            "'extra_body' is not a request field: send its fields at the top level", param="extra_body"
        )
    _VALIDATORS[kind](data)
    return data


def encode(data: dict[str, Any]) -> bytes:
    """The request as the provider gets it. orjson reads JSON nested up to 1024 levels but writes
    only 254: a request nested deeper is the caller's error (400), not the gateway's (500)."""
    try:
        return orjson.dumps(data)
    except orjson.JSONEncodeError:
        raise bad_request("the request is nested too deeply") from None


def _int_field(data: dict[str, Any], name: str, *, minimum: int) -> None:
    v = data.get(name)
    if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < minimum):
        raise bad_request(f"'{name}' must be an integer >= {minimum}", param=name)


def _common(data: dict[str, Any]) -> None:
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise bad_request("'stream' must be a boolean", param="stream")
    _int_field(data, "n", minimum=1)
    _int_field(data, "best_of", minimum=1)
    _int_field(data, "max_tokens", minimum=1)
    _int_field(data, "max_completion_tokens", minimum=1)
    _int_field(data, "top_logprobs", minimum=0)
    so = data.get("stream_options")
    if so is not None and not isinstance(so, dict):
        raise bad_request("'stream_options' must be an object", param="stream_options")


def _validate_chat(data: dict[str, Any]) -> None:
    _common(data)
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array", param="messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            raise bad_request(f"messages[{i}] must be an object with a valid 'role'", param=f"messages[{i}]")
        c = m.get("content")
        if c is not None and not isinstance(c, str | list):
            raise bad_request(
                f"messages[{i}].content must be a string or an array", param=f"messages[{i}].content"
            )
        if isinstance(c, list):
            for j, part in enumerate(c):
                if not isinstance(part, dict) or ("text" in part and not isinstance(part["text"], str)):
                    raise bad_request(
                        f"messages[{i}].content[{j}] is malformed", param=f"messages[{i}].content"
                    )
    lp = data.get("logprobs")
    if lp is not None and not isinstance(lp, bool):
        raise bad_request("'logprobs' must be a boolean", param="logprobs")


def _text_list(data: dict[str, Any], name: str) -> None:
    v = data.get(name)
    if isinstance(v, str):
        return
    if isinstance(v, list) and v:
        if all(isinstance(x, str) for x in v):
            return
        if all(isinstance(x, int | list) for x in v):
            raise ApiError(
                422,
                f"token-array '{name}' cannot be scanned by the gateway's guards; send text",
                "unscannable_input",
                name,
            )
    raise bad_request(f"'{name}' must be a string or a non-empty array of strings", param=name)


def _validate_completions(data: dict[str, Any]) -> None:
    _common(data)
    _text_list(data, "prompt")
    suffix = data.get("suffix")
    if suffix is not None and not isinstance(suffix, str):  # what is not text is not scanned
        raise bad_request("'suffix' must be a string", param="suffix")
    _int_field(data, "logprobs", minimum=0)


def _validate_embeddings(data: dict[str, Any]) -> None:
    _text_list(data, "input")
    _int_field(data, "dimensions", minimum=1)


_VALIDATORS: dict[str, Callable[[dict[str, Any]], None]] = {
    "chat": _validate_chat,
    "completions": _validate_completions,
    "embeddings": _validate_embeddings,
}


# -- texts -----------------------------------------------------------------------------------


def input_refs(data: dict[str, Any], kind: str, *, system: bool = True) -> list[TextRef]:
    """Where each text the model reads lives: message contents, text and refusal parts, refusals,
    names, tool-call and legacy function-call arguments and results; prompts and completions'
    ``suffix``; embeddings' input.

    ``system`` adds what the application itself writes: system and developer messages, and the
    descriptions in tool and function definitions and in ``response_format``'s JSON schema (also
    text in the model's prompt). Without it they are left out, like system prompts
    (``guards.scan_system``).
    """
    if kind == "chat":
        messages = data["messages"]
        if not system:
            messages = [m for m in messages if m.get("role") not in ("system", "developer")]
        refs = list(_chat_input_refs(messages))
        if system:
            refs.extend(_definition_refs(data))
        return refs
    key = "prompt" if kind == "completions" else "input"
    v = data[key]
    refs = [(data, key)] if isinstance(v, str) else [(v, i) for i in range(len(v))]
    if kind == "completions" and isinstance(data.get("suffix"), str):
        refs.append((data, "suffix"))
    return refs


def _chat_input_refs(messages: list[dict[str, Any]]) -> Iterator[TextRef]:
    for m in messages:
        c = m.get("content")
        if isinstance(c, str):
            yield (m, "content")
        elif isinstance(c, list):
            for part in c:
                if isinstance(part.get("text"), str):
                    yield (part, "text")
                if isinstance(part.get("refusal"), str):
                    yield (part, "refusal")
        for key in (*MESSAGE_TEXT_FIELDS, "name"):  # earlier answers' fields; names are in the prompt
            if isinstance(m.get(key), str):
                yield (m, key)
        yield from _tool_call_refs(m)


#: keys of a JSON schema (tool parameters, response_format) whose strings the model reads as text
_SCHEMA_TEXT = frozenset({"description", "title"})


def _definition_refs(data: dict[str, Any]) -> Iterator[TextRef]:
    """The descriptions in a chat request's tool and function definitions and its response format."""
    roots: list[Any] = []
    tools = data.get("tools")
    if isinstance(tools, list):
        roots.extend(t.get("function") for t in tools if isinstance(t, dict))
    functions = data.get("functions")
    if isinstance(functions, list):
        roots.extend(functions)
    fmt = data.get("response_format")
    if isinstance(fmt, dict):
        roots.append(fmt.get("json_schema"))
    stack = [r for r in roots if isinstance(r, dict | list)]
    while stack:  # iterative: the nesting is the caller's (up to 1024 levels)
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if isinstance(value, str):
                if isinstance(node, dict) and key in _SCHEMA_TEXT:
                    yield (node, key)
            elif isinstance(value, dict | list):
                stack.append(value)


def _tool_call_refs(message: dict[str, Any]) -> Iterator[TextRef]:
    """The arguments of a message's tool calls and of its legacy ``function_call``."""
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for tc in calls:
            fn = tc.get("function") if isinstance(tc, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                yield (fn, "arguments")
    fc = message.get("function_call")
    if isinstance(fc, dict) and isinstance(fc.get("arguments"), str):
        yield (fc, "arguments")


#: text fields of an answer's message (and of a stream's delta) besides ``content``: OpenAI's refusal,
#: the reasoning of reasoning models (vLLM, DeepSeek: ``reasoning_content``; OpenRouter, Ollama:
#: ``reasoning``; Ollama: ``thinking``). The caller reads them, so output guards read them too.
MESSAGE_TEXT_FIELDS = ("refusal", "reasoning_content", "reasoning", "thinking")

#: keys of an answer whose strings are not text for the caller, or not text at all: ids, numbers,
#: OpenAI's stream padding and log-probabilities (handled as such: :func:`strip_logprobs`)
_NOT_TEXT = frozenset(
    {
        "id", "tool_call_id", "created", "system_fingerprint", "usage", "expires_at", "obfuscation",
        "logprobs", "prompt_logprobs", "token_ids", "prompt_token_ids",
    }
)  # fmt: skip
#: opaque data (base64 audio, encrypted reasoning, signatures), not text, where it is known to be
#: (under these parents); anywhere else such a key is text like any other
_OPAQUE = frozenset({"data", "signature", "encrypted_content"})
_OPAQUE_PARENTS = frozenset({"audio", "reasoning_details"})
#: labels of an answer (its object, roles, types, finish reasons): not scanned while they are one
#: word; anything longer is text (a provider could put anything there)
_LABEL_KEYS = frozenset({"object", "role", "type", "finish_reason", "native_finish_reason", "format"})
_WORD = re.compile(r"[A-Za-z0-9_.:-]*")


def is_word(value: Any, longest: int = 64) -> bool:
    """Whether ``value`` is null or one word of at most ``longest`` characters (letters, digits and
    ``_.:-``): a name, a label or an id, which cannot carry a phrase past the guards unscanned."""
    return value is None or (
        isinstance(value, str) and len(value) <= longest and _WORD.fullmatch(value) is not None
    )


def answer_readable(resp: dict[str, Any], kind: str) -> bool:
    """Whether a (non-streamed) chat or completions answer is one: ``choices`` a list of objects,
    each chat choice with a ``message`` object whose function and tool-call ``arguments`` are JSON
    text (a string), as OpenAI sends them. Anything else (a provider's native format, arguments
    parsed into an object whose keys no guard reads) is refused rather than relayed with a guess at
    where its text is."""
    if kind == "embeddings":
        return True
    choices = resp.get("choices")
    if not isinstance(choices, list):
        return False
    for ch in choices:
        if not isinstance(ch, dict):
            return False
        if kind == "chat":
            msg = ch.get("message")
            if not isinstance(msg, dict) or not _arguments_are_text(msg):
                return False
    return True


def _arguments_are_text(msg: dict[str, Any]) -> bool:
    calls = msg.get("tool_calls")
    fns = [tc.get("function") for tc in calls if isinstance(tc, dict)] if isinstance(calls, list) else []
    fns.append(msg.get("function_call"))
    return all(not isinstance(fn, dict) or is_text_or_null(fn.get("arguments")) for fn in fns)


def is_text_or_null(value: Any) -> bool:
    """Whether ``value`` is a string or null: where the guards read text, nothing else may stand."""
    return value is None or isinstance(value, str)


#: the field names of answers (OpenAI's and the usual providers'): a key among them is a name, not
#: text; any other key of an answer is scanned like its strings (a provider could put anything there)
_ANSWER_KEYS = frozenset(
    {
        "id", "object", "created", "model", "choices", "index", "message", "delta", "role", "content",
        "refusal", "reasoning", "reasoning_content", "thinking", "reasoning_details", "tool_calls",
        "function_call", "function", "name", "arguments", "custom", "input", "type", "text",
        "finish_reason", "native_finish_reason", "stop_reason", "matched_stop", "logprobs", "token",
        "bytes", "top_logprobs", "logprob", "usage", "prompt_tokens", "completion_tokens", "total_tokens",
        "prompt_tokens_details", "completion_tokens_details", "cached_tokens", "reasoning_tokens",
        "audio_tokens", "accepted_prediction_tokens", "rejected_prediction_tokens", "system_fingerprint",
        "service_tier", "annotations", "url_citation", "url", "title", "start_index", "end_index",
        "audio", "data", "transcript", "expires_at", "format", "signature", "encrypted_content",
        "summary", "provider", "x_groq", "timings", "prompt_filter_results", "content_filter_results",
        "filtered", "severity", "detected", "prompt_logprobs", "token_ids", "prompt_token_ids",
        "kv_transfer_params", "seed", "obfuscation", "tool_call_id", "image_url", "detail",
    }
)  # fmt: skip


class _Key:
    """A text ref to the key itself of a dict (:func:`output_refs`): redacting it renames the key."""

    __slots__ = ("d",)

    def __init__(self, d: dict[str, Any]) -> None:
        self.d = d


def output_refs(resp: dict[str, Any], kind: str) -> list[TextRef]:
    """Where each generated text lives in a (non-streamed) answer: every non-empty string in it,
    nested at any depth (message contents and their parts, refusals, reasoning and its details,
    tool-call names and arguments, audio transcripts, annotations…) but ids, numbers and
    log-probabilities (:data:`_NOT_TEXT`), opaque data where it is known to be (:data:`_OPAQUE`)
    and one-word labels (:data:`_LABEL_KEYS`); and every key that is not a field name of
    :data:`_ANSWER_KEYS`. Walked with a stack: an answer nested deeply cannot exhaust the
    interpreter's recursion."""
    out: list[TextRef] = []
    if kind == "embeddings":
        return out
    # (node, the key it sits under: a list's items sit under the list's key)
    stack: list[tuple[Any, Any]] = [(resp, None)]
    while stack:
        node, parent = stack.pop()
        nested: list[tuple[Any, Any]] = []
        if isinstance(node, dict):
            holder = _Key(node)
            out.extend((holder, key) for key in node if key not in _ANSWER_KEYS)
            entries: Any = ((k, k, v) for k, v in node.items())  # (where, which field, value)
        else:
            entries = ((i, parent, v) for i, v in enumerate(node))
        for where, field, value in entries:
            if field in _NOT_TEXT or (field in _OPAQUE and parent in _OPAQUE_PARENTS):
                continue
            if isinstance(value, str):
                if value and not (field in _LABEL_KEYS and is_word(value)):
                    out.append((node, where))
            elif isinstance(value, dict | list):
                nested.append((value, field))
        stack.extend(reversed(nested))  # nested texts after the node's own, each in document order
    return out


def texts(refs: list[TextRef]) -> list[str]:
    return [k if isinstance(c, _Key) else c[k] for c, k in refs]


def replace(refs: list[TextRef], new: tuple[str, ...]) -> None:
    """Write redacted texts back: values first, then keys (a renamed key moves its value along)."""
    renames = []
    for (c, k), text in zip(refs, new, strict=True):
        if isinstance(c, _Key):
            if text != k:
                renames.append((c.d, k, text))
        else:
            c[k] = text
    for d, old, text in renames:
        d[text] = d.pop(old)


# -- hardening and accounting ------------------------------------------------------------------


#: the request's token limits, which hardening caps at ``max_tokens_cap``
_TOKEN_LIMITS = ("max_tokens", "max_completion_tokens")
#: the request's completion counts, which hardening caps at ``max_n``
_COUNTS = ("n", "best_of")


@dataclass(frozen=True, slots=True)
class Hardening:
    max_n: int
    max_tokens: int


def harden(data: dict[str, Any], kind: str, h: Hardening, *, allow_logprobs: bool) -> list[str]:
    """Apply the model-theft defences in place; return what was changed (for the ledger).

    Fails closed: ``n``, ``best_of``, ``max_tokens`` and ``max_completion_tokens`` must be integers
    >= 1 when present (``null`` counts as absent), else a 400; providers that coerce ``5.0`` or ``"5"``
    would otherwise slip past the caps. ``best_of`` is capped like ``n``: the provider generates that
    many. Without either token field the cap is sent as the limit (``max_completion_tokens`` for chat,
    ``max_tokens`` for completions), so it always applies.
    """
    notes: list[str] = []
    if kind == "embeddings":
        return notes
    for name in (*_COUNTS, *_TOKEN_LIMITS):
        _int_field(data, name, minimum=1)
    if not allow_logprobs:
        # not just truthy values: completions' ``logprobs: 0`` still returns the sampled tokens' ones,
        # vLLM's ``prompt_logprobs: 0`` the prompt's
        lp, top = data.pop("logprobs", None), data.pop("top_logprobs", None)
        prompt_lp = data.pop("prompt_logprobs", None)
        ids = data.pop("return_token_ids", None)  # vLLM: the token ids of prompt and answer
        hidden = data.pop("return_hidden_states", None)  # SGLang: the model's hidden states
        if (lp is not None and lp is not False) or top is not None or prompt_lp is not None or ids or hidden:
            notes.append("logprobs_stripped")
    for name in _COUNTS:
        v = data.get(name)
        if v is not None and v > h.max_n:
            data[name] = h.max_n
            notes.append(f"{name}_capped")
    limited = False
    for name in _TOKEN_LIMITS:
        v = data.get(name)
        if v is None:
            continue
        limited = True
        if v > h.max_tokens:
            data[name] = h.max_tokens
            notes.append(f"{name}_capped")
    if not limited:
        data["max_completion_tokens" if kind == "chat" else "max_tokens"] = h.max_tokens
        notes.append("max_tokens_defaulted")
    return notes


def strip_logprobs(resp: dict[str, Any]) -> bool:
    """Remove log-probabilities from a response or chunk (vLLM's ``prompt_logprobs`` too: per
    choice on completions, top level on chat); True when there were any."""
    found = strip_prompt_logprobs(resp)
    for ch in resp.get("choices") or ():
        if isinstance(ch, dict):
            found = strip_choice_logprobs(ch) or found
    return found


def strip_prompt_logprobs(resp: dict[str, Any]) -> bool:
    """Null a chat answer's (or chunk's) top-level ``prompt_logprobs`` and ``prompt_token_ids``; True
    when there were any."""
    found = False
    for key in ("prompt_logprobs", "prompt_token_ids"):
        if resp.get(key) is not None:
            resp[key] = None
            found = True
    return found


def strip_choice_logprobs(ch: dict[str, Any]) -> bool:
    """Null one choice's ``logprobs``, ``prompt_logprobs`` and token ids (vLLM's ``token_ids`` decode
    to the text as the log-probabilities' tokens do); True when there were any."""
    found = False
    for key in ("logprobs", "prompt_logprobs", "token_ids", "prompt_token_ids"):
        if ch.get(key) is not None:
            ch[key] = None
            found = True
    return found


def queries(data: dict[str, Any], kind: str, h: Hardening) -> int:
    """What a (validated) call spends of the daily query budget: each prompt or embeddings input
    counts, times the completions asked for of each (``n`` as hardening caps it). One call with a
    batch of prompts would otherwise cost what one prompt costs."""
    if kind == "embeddings":
        inp = data["input"]
        return 1 if isinstance(inp, str) else len(inp)
    n = data.get("n")
    per_prompt = 1 if n is None else min(n, h.max_n)
    if kind == "chat":
        return per_prompt
    prompt = data["prompt"]
    return per_prompt if isinstance(prompt, str) else per_prompt * len(prompt)


def estimate_tokens(chars: int) -> int:
    return math.ceil(chars / 4)


def usage_of(resp: dict[str, Any]) -> tuple[int, int] | None:
    """(prompt_tokens, completion_tokens) from a response's ``usage``, when present and sane. A usage
    without ``prompt_tokens`` is none (the call is then charged an estimate, prompt included);
    ``completion_tokens`` may be missing (embeddings have none)."""
    u = resp.get("usage")
    if not isinstance(u, dict) or "prompt_tokens" not in u:
        return None
    p, c = u["prompt_tokens"], u.get("completion_tokens", 0)
    if _count(p) and _count(c):
        return p, c
    return None


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0
