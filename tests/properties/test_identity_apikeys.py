"""Properties of the API key parser and verifier."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.identity.apikeys import MalformedKeyError, generate_key, parse_key, verify_secret

KEY = generate_key()


@settings(max_examples=300)
@given(st.text(max_size=400))
def test_parsing_never_crashes(raw: str) -> None:
    try:
        parsed = parse_key(raw)
    except MalformedKeyError:
        return
    assert len(parsed.key_id) == 16
    assert not verify_secret(parsed, KEY.secret_hash) or raw.rstrip("\r\n") == KEY.token


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=len(KEY.token) - 1), st.characters(codec="utf-8"))
def test_any_substitution_fails_verification(pos: int, ch: str) -> None:
    if KEY.token[pos] == ch:
        return
    mutated = KEY.token[:pos] + ch + KEY.token[pos + 1 :]
    try:
        parsed = parse_key(mutated)
    except MalformedKeyError:
        return
    assert not verify_secret(parsed, KEY.secret_hash)


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=len(KEY.token)), st.text(min_size=1, max_size=3))
def test_any_insertion_or_deletion_fails_verification(pos: int, extra: str) -> None:
    for mutated in (
        KEY.token[:pos] + extra + KEY.token[pos:],
        KEY.token[:pos] + KEY.token[pos + len(extra) :],
    ):
        if mutated.rstrip("\r\n") == KEY.token:
            continue
        try:
            parsed = parse_key(mutated)
        except MalformedKeyError:
            continue
        assert not verify_secret(parsed, KEY.secret_hash)
