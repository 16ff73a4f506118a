"""The streamed relay's one pass over an unguarded chunk: its character count (used for token
estimates when a provider sends no usage) is the length of exactly the texts the output guards would
see, whatever shape the chunk has, and it strips log-probabilities exactly as ``wire.strip_logprobs``."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.gateway import wire
from bastion.gateway.stream_chunks import chunk_refs, count_texts

junk = st.one_of(st.none(), st.integers(), st.lists(st.text(max_size=3), max_size=2))
# mostly well-formed (texts are strings), sometimes junk in any place
text = st.one_of(st.text(min_size=1, max_size=8), st.text(max_size=8), junk)
function = st.one_of(st.fixed_dictionaries({"arguments": text, "name": st.text(max_size=4)}), junk)
tool_call = st.one_of(st.fixed_dictionaries({"index": st.integers(0, 3), "function": function}), junk)
delta = st.one_of(
    st.fixed_dictionaries({"content": text, "tool_calls": st.lists(tool_call, max_size=3)}),
    st.fixed_dictionaries({}, optional={"content": text, "tool_calls": junk}),
    junk,
)
logprobs = st.one_of(st.none(), st.just({"content": [{"token": "a", "logprob": -0.1}]}), st.integers())
choice = st.one_of(
    st.fixed_dictionaries({"index": st.integers(0, 3), "delta": delta}, optional={"logprobs": logprobs}),
    st.fixed_dictionaries(
        {"index": st.integers(0, 3), "text": text}, optional={"delta": delta, "logprobs": logprobs}
    ),
    junk,
)


def _by_refs(choices: list[Any], kind: str) -> int:
    return sum(
        len(holder[key])
        for ch in choices
        if isinstance(ch, dict)
        for holder, key, _ in chunk_refs(ch, kind, 0)
    )


@settings(max_examples=400, deadline=None)
@given(st.lists(choice, max_size=4), st.sampled_from(["chat", "completions"]))
def test_chunk_chars_counts_exactly_the_guarded_texts(choices: list[Any], kind: str) -> None:
    assert count_texts(choices, kind, False)[0] == _by_refs(choices, kind)


@settings(max_examples=600, deadline=None)
@given(st.lists(choice, max_size=4), st.sampled_from(["chat", "completions"]), st.booleans())
def test_one_pass_counts_and_strips_as_the_helpers(choices: list[Any], kind: str, strip: bool) -> None:
    expected = copy.deepcopy(choices)
    chars = _by_refs(expected, kind)
    stripped = wire.strip_logprobs({"choices": expected}) if strip else False
    assert count_texts(choices, kind, strip) == (chars, stripped)
    assert choices == expected
