from __future__ import annotations

import re

import pytest

from bastion.errors import InputError
from bastion.identity.apikeys import (
    MalformedKeyError,
    generate_key,
    hash_secret,
    is_key_id,
    parse_key,
    verify_secret,
)


def test_generated_key_has_documented_shape() -> None:
    k = generate_key()
    assert re.fullmatch(r"bst_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", k.token)
    assert k.token.split("_", 2)[1] == k.key_id
    assert is_key_id(k.key_id)


def test_secret_has_at_least_256_bits() -> None:
    k = generate_key()
    secret = parse_key(k.token).secret
    # 43 base64url characters carry 258 bits, of which 256 are random.
    assert len(secret) * 6 >= 256


def test_keys_are_unique() -> None:
    tokens = {generate_key().token for _ in range(200)}
    ids = {t.split("_")[1] for t in tokens}
    assert len(tokens) == 200
    assert len(ids) == 200


def test_round_trip_verifies() -> None:
    k = generate_key("abc")
    parsed = parse_key(k.token, "abc")
    assert parsed.key_id == k.key_id
    assert verify_secret(parsed, k.secret_hash)


def test_hash_is_bound_to_key_id() -> None:
    a, b = generate_key(), generate_key()
    pa = parse_key(a.token)
    assert not verify_secret(pa, b.secret_hash)
    # same secret under another key id does not verify against the original hash
    moved = type(pa)(prefix=pa.prefix, key_id=parse_key(b.token).key_id, secret=pa.secret)
    assert not verify_secret(moved, a.secret_hash)


def test_hash_never_contains_secret() -> None:
    k = generate_key()
    secret = parse_key(k.token).secret
    assert secret not in k.secret_hash
    assert k.secret_hash.startswith("sha256v1$")
    assert hash_secret(k.key_id, secret) == k.secret_hash


def test_unknown_hash_scheme_fails() -> None:
    k = generate_key()
    assert not verify_secret(parse_key(k.token), "md5$" + k.secret_hash.split("$")[1])


def test_trailing_newline_tolerated() -> None:
    k = generate_key()
    assert parse_key(k.token + "\n").key_id == k.key_id


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "bst",
        "bst__",
        "Bearer bst_0123456789abcdef_" + "a" * 43,
        "bst_0123456789ABCDEF_" + "a" * 43,
        "bst_0123456789abcde_" + "a" * 43,
        "bst_0123456789abcdef_" + "a" * 42,
        "bst_0123456789abcdef_" + "a" * 44,
        "bst_0123456789abcdef_" + "a" * 42 + "=",
        " bst_0123456789abcdef_" + "a" * 43,
        "bst_0123456789abcdef_" + "a" * 42 + "\u00e9",
        "bst_0123456789abcdef_" + "a" * 43 + "\x00",
        "x" * 10_000,
        "' OR 1=1 --",
    ],
)
def test_malformed_keys_are_refused(raw: str) -> None:
    with pytest.raises(MalformedKeyError) as ei:
        parse_key(raw)
    assert raw not in str(ei.value) or raw == ""
    assert isinstance(ei.value, InputError)


def test_wrong_prefix_refused() -> None:
    k = generate_key("abc")
    with pytest.raises(MalformedKeyError, match="wrong prefix"):
        parse_key(k.token, "bst")


def test_bad_prefix_config_refused() -> None:
    with pytest.raises(InputError):
        generate_key("BST")


def test_repr_hides_secret() -> None:
    k = generate_key()
    assert parse_key(k.token).secret not in repr(k)
    assert parse_key(k.token).secret not in repr(parse_key(k.token))
