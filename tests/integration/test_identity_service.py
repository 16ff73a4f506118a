"""IdentityService against real SQLite and PostgreSQL (the ``engine`` fixture of tests/conftest.py)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text

from bastion.domain.access import Operation
from bastion.domain.events import EventTag
from bastion.domain.identity import AuthMethod, KeyScope, PrincipalKind, Role
from bastion.errors import InputError, NotFoundError
from bastion.services.identity import CredentialRejected, IdentityService
from support.identity import Clock, ListSink


def test_bootstrap_once(svc: IdentityService, sink: ListSink) -> None:
    created = svc.bootstrap_admin()
    assert created is not None
    assert created.principal.roles == {Role.ADMIN}
    assert svc.bootstrap_admin() is None
    auth = svc.authenticate(created.token, "127.0.0.1")
    assert auth.principal.roles == {Role.ADMIN}
    assert EventTag.BOOTSTRAP_COMPLETED in sink.tags()
    assert created.token not in repr(created)
    assert all(created.token.split("_", 2)[2] not in repr(e) for e in sink.events)


def test_create_list_authenticate(svc: IdentityService, sink: ListSink) -> None:
    p = svc.create_principal("alice", roles=["user"], team="red", actor="p_admin")
    assert sink.last().tag is EventTag.PRINCIPAL_CREATED
    assert sink.last().actor == "p_admin"
    ck = svc.create_key("alice", name="laptop", expires_in=timedelta(days=30), actor="p_admin")
    assert sink.last().tag is EventTag.APIKEY_CREATED
    assert [k.key_id for k in svc.list_keys("alice")] == [ck.key.key_id]
    auth = svc.authenticate_api_key(ck.token, "10.0.0.1")
    assert auth.method is AuthMethod.API_KEY
    assert auth.principal.id == p.id
    assert auth.principal.team == "red"
    assert auth.key_id == ck.key.key_id
    ev = sink.last()
    assert ev.tag is EventTag.AUTHN_SUCCEEDED
    assert ev.target == ck.key.key_id
    # stored only as a hash
    stored = svc.get_key(ck.key.key_id)
    assert stored.secret_hash.startswith("sha256v1$")
    assert ck.token.split("_", 2)[2] not in stored.secret_hash


def test_failure_reasons_are_audited(svc: IdentityService, sink: ListSink, clock: Clock) -> None:
    svc.create_principal("bob", roles=["user"])
    ck = svc.create_key(
        "bob", name="k", expires_in=timedelta(hours=1), scope=KeyScope(source_cidrs=("10.1.0.0/16",))
    )
    token = ck.token

    def reason_of(raw: str, ip: str | None = "10.1.2.3") -> str:
        with pytest.raises(CredentialRejected) as ei:
            svc.authenticate_api_key(raw, ip)
        ev = sink.last()
        assert ev.tag is EventTag.AUTHN_FAILED
        assert ev.outcome == "failure"
        assert ev.attributes["reason"] == ei.value.reason
        assert raw not in repr(ev)
        return ei.value.reason

    assert reason_of("garbage") == "malformed"
    assert reason_of("bst_0123456789abcdef_" + "A" * 43) == "unknown_key"
    assert reason_of(token[:-1] + ("A" if token[-1] != "A" else "B")) == "bad_secret"
    assert reason_of(token, "192.168.1.1") == "ip_not_allowed"
    assert reason_of(token, None) == "ip_not_allowed"
    svc.authenticate_api_key(token, "10.1.2.3")
    svc.authenticate_api_key(token, "::ffff:10.1.9.9")
    clock.advance(3601)
    assert reason_of(token) == "expired"


def test_revocation_takes_effect_at_once_here(svc: IdentityService, sink: ListSink) -> None:
    svc.create_principal("carol", roles=["user"])
    ck = svc.create_key("carol", name="k")
    svc.authenticate_api_key(ck.token)  # now cached
    svc.revoke_key(ck.key.key_id, actor="p_admin", reason="leaked")
    assert sink.last().tag is EventTag.APIKEY_REVOKED
    with pytest.raises(CredentialRejected) as ei:
        svc.authenticate_api_key(ck.token)
    assert ei.value.reason == "revoked"
    with pytest.raises(InputError, match="already revoked"):
        svc.revoke_key(ck.key.key_id)


def test_revocation_elsewhere_within_ttl(
    engine: Engine, svc: IdentityService, sink: ListSink, clock: Clock
) -> None:
    other = IdentityService(engine, sink, cache_ttl_s=5, clock=clock.wall, monotonic=clock.monotonic)
    svc.create_principal("dave", roles=["user"])
    ck = svc.create_key("dave", name="k")
    other.authenticate_api_key(ck.token)  # cached in the other "replica"
    svc.revoke_key(ck.key.key_id)
    other.authenticate_api_key(ck.token)  # still cached: allowed within the TTL (documented)
    clock.advance(5.1)
    with pytest.raises(CredentialRejected, match="revoked"):
        other.authenticate_api_key(ck.token)


def test_hot_key_is_not_a_db_read_per_call(svc: IdentityService, engine: Engine) -> None:
    svc.create_principal("erin", roles=["user"])
    ck = svc.create_key("erin", name="k")
    svc.authenticate_api_key(ck.token)
    engine.dispose()
    calls = 0

    from sqlalchemy import event

    def count(*_a: object) -> None:
        nonlocal calls
        calls += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(50):
            svc.authenticate_api_key(ck.token)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert calls == 0


def test_last_used_written_at_coarse_resolution(svc: IdentityService, clock: Clock) -> None:
    svc.create_principal("fay", roles=["user"])
    ck = svc.create_key("fay", name="k")
    assert svc.get_key(ck.key.key_id).last_used_at is None
    svc.authenticate_api_key(ck.token)
    first = svc.get_key(ck.key.key_id).last_used_at
    assert first == clock.now
    clock.advance(10)
    svc.authenticate_api_key(ck.token)
    assert svc.get_key(ck.key.key_id).last_used_at == first  # within resolution: no write
    clock.advance(60)
    svc.authenticate_api_key(ck.token)
    assert svc.get_key(ck.key.key_id).last_used_at == clock.now


def test_disabled_principal_refused_at_once(svc: IdentityService, sink: ListSink) -> None:
    svc.create_principal("gus", roles=["user"])
    ck = svc.create_key("gus", name="k")
    svc.authenticate_api_key(ck.token)
    svc.update_principal("gus", disabled=True, actor="p_admin")
    assert sink.last().tag is EventTag.PRINCIPAL_DISABLED
    with pytest.raises(CredentialRejected) as ei:
        svc.authenticate_api_key(ck.token)
    assert ei.value.reason == "principal_disabled"


def test_role_change_visible_at_once(svc: IdentityService) -> None:
    svc.create_principal("hal", roles=["viewer"])
    ck = svc.create_key("hal", name="k")
    assert svc.authenticate_api_key(ck.token).principal.roles == {Role.VIEWER}
    p = svc.update_principal(
        "hal", roles=["user", "ml-engineer"], team="blue", attributes={"clearance": "restricted"}
    )
    assert p.version == 2
    auth = svc.authenticate_api_key(ck.token)
    assert auth.principal.roles == {Role.USER, Role.ML_ENGINEER}
    assert auth.principal.team == "blue"
    assert auth.principal.attributes == {"clearance": "restricted"}


def test_rotate_without_overlap(svc: IdentityService, sink: ListSink) -> None:
    svc.create_principal("ida", roles=["user"])
    old = svc.create_key("ida", name="ci", scope=KeyScope(models=("m1",)))
    new = svc.rotate_key(old.key.key_id, actor="p_admin")
    assert sink.last().tag is EventTag.APIKEY_ROTATED
    assert sink.last().attributes["new_key_id"] == new.key.key_id
    assert new.key.scope.models == ("m1",)
    assert new.key.rotated_from == old.key.key_id
    with pytest.raises(CredentialRejected, match="revoked"):
        svc.authenticate_api_key(old.token)
    svc.authenticate_api_key(new.token)


def test_rotate_with_overlap(svc: IdentityService, clock: Clock) -> None:
    svc.create_principal("jan", roles=["user"])
    old = svc.create_key("jan", name="ci", expires_in=timedelta(days=10))
    new = svc.rotate_key(old.key.key_id, overlap=timedelta(minutes=5))
    assert new.key.expires_at == clock.now + timedelta(days=10)
    svc.authenticate_api_key(old.token)
    svc.authenticate_api_key(new.token)
    clock.advance(301)
    with pytest.raises(CredentialRejected, match="expired"):
        svc.authenticate_api_key(old.token)
    svc.authenticate_api_key(new.token)


@pytest.mark.parametrize(
    "name",
    [
        "Robert'); DROP TABLE identity_principals;--",
        "Zoë 日本語 🙂",
        "x" * 200,
        "' OR '1'='1",
    ],
)
def test_odd_names_stored_safely(svc: IdentityService, engine: Engine, name: str) -> None:
    p = svc.create_principal(name, roles=["user"], team=name[:50])
    assert svc.get_principal(name).id == p.id
    assert svc.get_principal(p.id).name == name
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM identity_principals")).scalar() == 1


@pytest.mark.parametrize(
    "name",
    ["", " padded", "a\x00b", "bell\x07", "rtl\u202eoverride", "zero\u200bwidth", "x" * 201, "line\nbreak"],
)
def test_bad_names_refused(svc: IdentityService, name: str) -> None:
    with pytest.raises(InputError):
        svc.create_principal(name)


def test_duplicate_names_refused(svc: IdentityService) -> None:
    svc.create_principal("kim")
    with pytest.raises(InputError, match="conflicts"):
        svc.create_principal("kim")


@pytest.mark.parametrize(
    "scope",
    [
        KeyScope(operations=("model:fly",)),
        KeyScope(source_cidrs=("not-an-ip",)),
        KeyScope(routes=("no-slash",)),
        KeyScope(requests_per_minute=0),
        KeyScope(models=("bad\x00model",)),
    ],
)
def test_bad_scopes_refused(svc: IdentityService, scope: KeyScope) -> None:
    svc.create_principal("lee", roles=["user"])
    with pytest.raises(InputError):
        svc.create_key("lee", name="k", scope=scope)


def test_scope_round_trips(svc: IdentityService) -> None:
    svc.create_principal("mo", roles=["user"])
    scope = KeyScope(
        models=("b", "a"),
        routes=("/v1/chat/completions",),
        operations=("model:invoke",),
        source_cidrs=("10.0.0.1/8", "2001:db8::/32"),
        requests_per_minute=60,
        tokens_per_minute=10_000,
    )
    ck = svc.create_key("mo", name="k", scope=scope)
    got = svc.get_key(ck.key.key_id).scope
    assert got.models == ("a", "b")
    assert got.source_cidrs == ("10.0.0.0/8", "2001:db8::/32")
    assert got.requests_per_minute == 60
    assert svc.authenticate_api_key(ck.token, "10.9.9.9").scope == got


def test_unknown_things(svc: IdentityService) -> None:
    with pytest.raises(NotFoundError):
        svc.get_principal("nobody")
    with pytest.raises(NotFoundError):
        svc.get_key("0123456789abcdef")
    with pytest.raises(NotFoundError):
        svc.revoke_key("'; DROP TABLE x;--")
    with pytest.raises(InputError, match="unknown role"):
        svc.create_principal("nina", roles=["root"])


def test_teams_cannot_hold_keys(svc: IdentityService) -> None:
    svc.create_principal("red-team", kind=PrincipalKind.TEAM)
    with pytest.raises(InputError, match="teams cannot"):
        svc.create_key("red-team", name="k")


def test_record_use_is_coarse(svc: IdentityService, engine: Engine, clock: Clock) -> None:
    svc.create_principal("oz", roles=["user"])
    ck = svc.create_key("oz", name="k")
    auth = svc.authenticate_api_key(ck.token)
    svc.record_use(auth, Operation.MODEL_INVOKE, "m1")
    clock.advance(1)
    svc.record_use(auth, Operation.MODEL_INVOKE, "m1")
    clock.advance(61)
    svc.record_use(auth, Operation.MODEL_INVOKE, "m1")
    svc.record_use(auth, Operation.MODEL_LIST)
    with engine.connect() as c:
        rows = c.execute(text("SELECT operation, model FROM identity_key_usage ORDER BY operation")).all()
    assert [tuple(r) for r in rows] == [("model:invoke", "m1"), ("model:list", "")]


def test_async_authenticate(svc: IdentityService) -> None:
    svc.create_principal("pat", roles=["user"])
    ck = svc.create_key("pat", name="k")
    auth = asyncio.run(svc.aauthenticate(ck.token, "127.0.0.1"))
    assert auth.key_id == ck.key.key_id


def test_bearer_refused_without_oidc(svc: IdentityService, sink: ListSink) -> None:
    with pytest.raises(CredentialRejected) as ei:
        svc.authenticate_bearer("a.b.c")
    assert ei.value.reason == "oidc_disabled"
    assert sink.last().tag is EventTag.AUTHN_FAILED
