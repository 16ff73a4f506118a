"""``IdentityService.aauthenticate``'s cache-hit path: a cached key that passes every check and needs
no write is accepted on the event loop (no worker thread); everything else (a miss, a refusal, a due
``last_used_at`` write, a success to record) still takes the full, audited check in a thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from bastion.domain.events import EventTag
from bastion.domain.identity import AuthMethod, KeyScope
from bastion.services.identity import CredentialRejected, IdentityService
from support.identity import Clock, ListSink


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions ``aauthenticate`` sent to a worker thread."""
    seen: list[str] = []
    real = asyncio.to_thread

    async def spy(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(fn, "__name__", repr(fn)))
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", spy)
    return seen


def _auth(svc: IdentityService, token: str, ip: str | None = "127.0.0.1", *, record: bool = False) -> Any:
    return asyncio.run(svc.aauthenticate(token, ip, record_success=record))


def test_cached_key_is_accepted_without_a_thread(
    svc: IdentityService, sink: ListSink, hops: list[str]
) -> None:
    svc.create_principal("ann", roles=["user"], team="red")
    ck = svc.create_key("ann", name="k")
    first = _auth(svc, ck.token)  # loads the key and writes last_used_at: in a thread
    assert hops == ["authenticate"]
    before = len(sink.events)
    again = _auth(svc, ck.token)
    assert hops == ["authenticate"]  # the cache hit stayed on the loop
    assert again == first
    assert again.method is AuthMethod.API_KEY and again.key_id == ck.key.key_id
    assert again.principal.team == "red"
    assert len(sink.events) == before  # the gateway records the success in its own event


def test_wrong_secret_for_a_cached_key_is_refused_and_audited(
    svc: IdentityService, sink: ListSink, hops: list[str]
) -> None:
    svc.create_principal("bob", roles=["user"])
    ck = svc.create_key("bob", name="k")
    _auth(svc, ck.token)
    forged = ck.token[:-1] + ("A" if ck.token[-1] != "A" else "B")
    with pytest.raises(CredentialRejected) as ei:
        _auth(svc, forged)
    assert ei.value.reason == "bad_secret"
    assert sink.events[-1].tag is EventTag.AUTHN_FAILED
    assert sink.events[-1].attributes["reason"] == "bad_secret"
    assert hops == ["authenticate", "authenticate"]


def test_source_address_and_expiry_still_apply_on_a_cache_hit(
    svc: IdentityService, sink: ListSink, clock: Clock
) -> None:
    svc.create_principal("cy", roles=["user"])
    ck = svc.create_key(
        "cy", name="k", expires_in=timedelta(seconds=3), scope=KeyScope(source_cidrs=("10.1.0.0/16",))
    )
    _auth(svc, ck.token, "10.1.2.3")
    with pytest.raises(CredentialRejected) as ei:
        _auth(svc, ck.token, "192.168.1.1")
    assert ei.value.reason == "ip_not_allowed"
    assert sink.events[-1].tag is EventTag.AUTHN_FAILED
    clock.advance(2)  # cached (TTL 5 s), not yet expired
    _auth(svc, ck.token, "10.1.2.3")
    clock.advance(2)  # still cached, but the key expired: the cache hit must not outlive it
    with pytest.raises(CredentialRejected) as ei:
        _auth(svc, ck.token, "10.1.2.3")
    assert ei.value.reason == "expired"


def test_revocation_through_the_service_is_seen_at_once(svc: IdentityService, sink: ListSink) -> None:
    svc.create_principal("dee", roles=["user"])
    ck = svc.create_key("dee", name="k")
    _auth(svc, ck.token)
    svc.revoke_key(ck.key.key_id)
    with pytest.raises(CredentialRejected) as ei:
        _auth(svc, ck.token)
    assert ei.value.reason == "revoked"
    assert sink.events[-1].tag is EventTag.AUTHN_FAILED


def test_due_last_used_write_and_recorded_success_take_the_full_path(
    svc: IdentityService, sink: ListSink, clock: Clock, hops: list[str]
) -> None:
    svc.create_principal("eve", roles=["user"])
    ck = svc.create_key("eve", name="k")
    _auth(svc, ck.token)
    first = svc.get_key(ck.key.key_id).last_used_at
    assert first == clock.now
    clock.advance(4.9)
    _auth(svc, ck.token)
    assert len(hops) == 1
    clock.advance(60)  # the cache expired and a last_used_at write is due
    _auth(svc, ck.token)
    assert len(hops) == 2
    assert svc.get_key(ck.key.key_id).last_used_at == clock.now
    _auth(svc, ck.token, record=True)  # a success that must be recorded blocks on the ledger: thread
    assert len(hops) == 3
    assert sink.events[-1].tag is EventTag.AUTHN_SUCCEEDED


def test_unknown_and_malformed_keys_are_refused_and_audited(svc: IdentityService, sink: ListSink) -> None:
    for raw, reason in (("bst_0123456789abcdef_" + "A" * 43, "unknown_key"), ("bst_nonsense", "malformed")):
        for _ in range(2):  # the second unknown lookup is a cached negative entry
            with pytest.raises(CredentialRejected) as ei:
                _auth(svc, raw)
            assert ei.value.reason == reason
            assert sink.events[-1].tag is EventTag.AUTHN_FAILED


def test_a_cached_key_hands_out_one_authentication_until_its_entry_changes(svc: IdentityService) -> None:
    svc.create_principal("fay", roles=["user"], team="red")
    ck = svc.create_key("fay", name="k")
    first = _auth(svc, ck.token)
    assert _auth(svc, ck.token) is first  # per-call caches downstream (limits, authz) hit on it
    svc.update_principal("fay", team="blue")  # drops the cached entry: a new one, a new Authentication
    changed = _auth(svc, ck.token)
    assert changed is not first and changed.principal.team == "blue"
    assert _auth(svc, ck.token) is changed
