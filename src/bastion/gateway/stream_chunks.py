"""The texts of a streamed chunk (chat ``delta`` or completions ``text``): where they are, how many
characters they hold, where text an output guard held back goes when it is released, and whether a
guarded choice was left with nothing to say. Pure functions over the parsed event (``streaming`` relays).
"""

from __future__ import annotations

from typing import Any

from bastion.gateway import wire


def put_text(ch: dict[str, Any], kind: str, channel: str, text: str) -> None:
    """Add released ``text`` of ``channel`` after what choice ``ch`` already carries: the guard held
    it back from the end of the text released so far (in this chunk too), so it comes last."""
    if kind != "chat":
        ch["text"] = (ch.get("text") or "") + text
        return
    delta = ch.get("delta")
    if not isinstance(delta, dict):
        delta = ch["delta"] = {}
    field = channel.split(":", 1)[1] if ":" in channel else ""
    if field in wire.MESSAGE_TEXT_FIELDS:  # a refusal, a reasoning model's thoughts
        delta[field] = (delta.get(field) or "") + text
        return
    if channel.endswith(":fn"):  # a legacy function call's arguments
        fc = delta.get("function_call")
        if not isinstance(fc, dict):
            fc = delta["function_call"] = {}
        fc["arguments"] = (fc.get("arguments") or "") + text
        return
    if ":tool" not in channel:
        delta["content"] = (delta.get("content") or "") + text
        return
    tool_index = int(channel.rsplit(":tool", 1)[1])
    calls = delta.setdefault("tool_calls", [])
    for tc in calls:
        if isinstance(tc, dict) and tc.get("index", 0) == tool_index:
            fn = tc.setdefault("function", {})
            fn["arguments"] = (fn.get("arguments") or "") + text
            return
    calls.append({"index": tool_index, "function": {"arguments": text}})


#: the keys of a streamed choice that carries text and nothing else (chat: ``delta.content``)
_PLAIN_CHOICE = frozenset({"index", "delta", "text", "finish_reason", "logprobs"})
#: the text fields of a chat delta
_DELTA_TEXT = frozenset({"content", *wire.MESSAGE_TEXT_FIELDS})
#: what an event the gateway writes itself takes over from the provider's last one
META = ("id", "created", "system_fingerprint")


def held_whole(ch: Any, kind: str) -> bool:
    """Whether a guarded choice became empty text and nothing else (no role, tool call, finish or
    log-probabilities): an event of only such choices is not sent while its text is held back."""
    if not isinstance(ch, dict) or ch.keys() - _PLAIN_CHOICE:
        return False
    if ch.get("finish_reason") is not None or ch.get("logprobs") is not None:
        return False
    if kind == "completions":
        return ch.get("text") == "" and "delta" not in ch
    delta = ch.get("delta")
    return (
        "text" not in ch
        and isinstance(delta, dict)
        and bool(delta)
        and delta.keys() <= _DELTA_TEXT
        and all(v == "" for v in delta.values())
    )


def chunk_refs(ch: dict[str, Any], kind: str, idx: int) -> list[tuple[dict[str, Any], str, str]]:
    out: list[tuple[dict[str, Any], str, str]] = []
    if kind == "completions":
        if isinstance(ch.get("text"), str):
            out.append((ch, "text", str(idx)))
        return out
    delta = ch.get("delta")
    if not isinstance(delta, dict):
        return out
    if isinstance(delta.get("content"), str):
        out.append((delta, "content", str(idx)))
    for field in wire.MESSAGE_TEXT_FIELDS:
        if isinstance(delta.get(field), str):
            out.append((delta, field, f"{idx}:{field}"))
    calls = delta.get("tool_calls")
    if isinstance(calls, list):
        for tc in calls:
            fn = tc.get("function") if isinstance(tc, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                out.append((fn, "arguments", f"{idx}:tool{tc.get('index', 0)}"))
    fc = delta.get("function_call")
    if isinstance(fc, dict) and isinstance(fc.get("arguments"), str):
        out.append((fc, "arguments", f"{idx}:fn"))
    return out


def count_texts(choices: Any, kind: str, strip: bool) -> tuple[int, bool]:
    """The characters of text in a chunk's choices (the texts :func:`chunk_refs` names), counted
    without building its references, and with ``strip`` their log-probabilities removed (whether
    there were any): this runs for every event of every unguarded stream."""
    n = 0
    stripped = False
    for ch in choices:
        if not isinstance(ch, dict):
            continue
        if strip and wire.strip_choice_logprobs(ch):
            stripped = True
        if kind == "completions":
            text = ch.get("text")
            if isinstance(text, str):
                n += len(text)
            continue
        delta = ch.get("delta")
        if not isinstance(delta, dict):
            continue
        content = delta.get("content")
        if isinstance(content, str):
            n += len(content)
        for field in wire.MESSAGE_TEXT_FIELDS:
            text = delta.get(field)
            if text is not None and isinstance(text, str):
                n += len(text)
        calls = delta.get("tool_calls")
        if calls is not None and isinstance(calls, list):
            for tc in calls:
                fn = tc.get("function") if isinstance(tc, dict) else None
                args = fn.get("arguments") if isinstance(fn, dict) else None
                if isinstance(args, str):
                    n += len(args)
        fc = delta.get("function_call")
        if fc is not None and isinstance(fc, dict):
            args = fc.get("arguments")
            if isinstance(args, str):
                n += len(args)
    return n, stripped


#: what an event of a guarded stream may carry besides its choices (metadata, never text for the
#: caller); an event with any other key holding text is refused: no guard would read it
EVENT_KEYS = frozenset(
    {
        "id", "object", "created", "model", "system_fingerprint", "service_tier", "usage", "choices",
        "obfuscation", "provider", "x_groq", "prompt_filter_results", "timings", "prompt_logprobs",
        "prompt_token_ids",
    }
)  # fmt: skip
#: what a streamed choice may carry besides its text (``delta`` for chat, ``text`` for completions)
_CHOICE_KEYS = frozenset(
    {
        "index", "finish_reason", "logprobs", "stop_reason", "native_finish_reason", "matched_stop",
        "content_filter_results", "content_filter_offsets", "token_ids", "prompt_logprobs",
    }
)  # fmt: skip
_COMPLETION_CHOICE_KEYS = _CHOICE_KEYS | {"text"}
_CHAT_CHOICE_KEYS = _CHOICE_KEYS | {"delta"}
#: the keys of a chat delta :func:`chunk_refs` reads, or that carry no text of their own
_DELTA_KEYS = frozenset(
    {"role", "content", "tool_calls", "function_call", "reasoning_details", *wire.MESSAGE_TEXT_FIELDS}
)
#: what an item of OpenRouter's ``reasoning_details`` keeps once its text (a repeat of ``reasoning``)
#: is dropped: opaque parts the next turn sends back (encrypted reasoning, signatures)
_REASONING_DETAIL_KEYS = frozenset({"type", "id", "format", "index", "signature", "data"})
_TOOL_CALL_KEYS = frozenset({"index", "id", "type", "function"})
_FUNCTION_KEYS = frozenset({"name", "arguments"})


def has_text(value: Any) -> bool:
    """Whether ``value`` holds a non-empty string, or a key that is not a field name, at any depth
    (iteratively)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if v:
                return True
        elif isinstance(v, dict):
            if not all(wire.is_word(k) for k in v):  # a key that is not a field name is text
                return True
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False


def _only_known(obj: dict[str, Any], known: frozenset[str]) -> bool:
    """Whether every key of ``obj`` holding text is one of ``known``, and every other key a field name."""
    extra = obj.keys() - known
    return not extra or all(wire.is_word(k) and not has_text(obj[k]) for k in extra)


def event_readable(obj: dict[str, Any], kind: str) -> bool:
    """Whether every text of a guarded stream's event is where :func:`chunk_refs` reads it: the event
    holds text only in its choices; a choice is an object whose own keys besides its text are
    metadata; a chat ``delta`` keeps text in its content, refusal, reasoning and function or
    tool-call arguments (a string each), and nowhere else (an audio transcript, annotations, a
    custom tool's input). Such an event is refused, not relayed unscanned."""
    if not _only_known(obj, EVENT_KEYS):
        return False
    choices = obj.get("choices")
    if choices is None:
        return True
    if not isinstance(choices, list):
        return False
    for ch in choices:
        if not isinstance(ch, dict) or not _index(ch) or not wire.is_word(ch.get("finish_reason")):
            return False
        if kind == "completions":
            text = ch.get("text")
            if not wire.is_text_or_null(text) or not _only_known(ch, _COMPLETION_CHOICE_KEYS):
                return False
            continue
        if not _only_known(ch, _CHAT_CHOICE_KEYS):
            return False
        delta = ch.get("delta")
        if delta is not None and not _delta_readable(delta):
            return False
    return True


def _index(obj: dict[str, Any]) -> bool:
    """A choice's or tool call's ``index`` absent or an int >= 0: the guard keeps a channel per
    index, and 0.0, False or "0" (0 to a client) would open a second one beside 0."""
    i = obj.get("index", 0)
    return type(i) is int and i >= 0


def _delta_readable(delta: Any) -> bool:
    if (
        not isinstance(delta, dict)
        or not _only_known(delta, _DELTA_KEYS)
        or not wire.is_word(delta.get("role"))
    ):
        return False
    if not all(wire.is_text_or_null(delta.get(f)) for f in ("content", *wire.MESSAGE_TEXT_FIELDS)):
        return False
    calls = delta.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            return False
        for tc in calls:
            if not isinstance(tc, dict) or not _only_known(tc, _TOOL_CALL_KEYS) or not _index(tc):
                return False
            if not (wire.is_word(tc.get("id"), 128) and wire.is_word(tc.get("type"))):
                return False
            if tc.get("function") is not None and not _function_readable(tc["function"]):
                return False
    details = delta.get("reasoning_details")
    if details is not None and not (
        isinstance(details, list)
        and all(isinstance(d, dict) and d.keys() <= _REASONING_DETAIL_KEYS for d in details)
    ):
        return False
    fc = delta.get("function_call")
    return fc is None or _function_readable(fc)


def _function_readable(fn: Any) -> bool:
    """A function (call)'s ``arguments`` a string or null, and its ``name`` (not scanned: it names a
    tool the application declared) null or a function name, so that it cannot carry free text."""
    if not isinstance(fn, dict) or not _only_known(fn, _FUNCTION_KEYS):
        return False
    args, name = fn.get("arguments"), fn.get("name")
    return wire.is_text_or_null(args) and wire.is_word(name)


def drop_repeated_text(choices: Any) -> bool:
    """Drop, from a chat event's choices, the text that repeats what the guards read elsewhere (whether
    there was any): the ``text`` and ``summary`` of OpenRouter's ``reasoning_details`` items (their
    ``reasoning``), keeping their opaque parts (encrypted reasoning, signatures) for the next turn,
    and a choice's own ``text`` beside its ``delta`` (Together: its ``content``)."""
    dropped = False
    for ch in choices if isinstance(choices, list) else ():
        if not isinstance(ch, dict):
            continue
        if "delta" in ch and ch.pop("text", None) is not None:
            dropped = True
        delta = ch.get("delta")
        details = delta.get("reasoning_details") if isinstance(delta, dict) else None
        for d in details if isinstance(details, list) else ():
            if isinstance(d, dict):
                dropped = (d.pop("text", None) is not None) | (d.pop("summary", None) is not None) | dropped
    return dropped
