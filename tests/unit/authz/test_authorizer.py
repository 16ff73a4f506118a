from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bastion.authz import Authorizer, load_policies
from bastion.authz.authorizer import role_operations
from bastion.domain.access import Operation as O
from bastion.domain.access import Resource
from bastion.domain.identity import KeyScope, Principal, PrincipalKind, Role
from bastion.errors import ConfigError, InputError

AUTHZ = Authorizer()


def who(
    *roles: Role, team: str | None = "red", kind: PrincipalKind = PrincipalKind.USER, **attrs: str
) -> Principal:
    return Principal(id="p1", kind=kind, name="p", roles=frozenset(roles), team=team, attributes=attrs)


def model(
    team: str = "red", classification: str | None = "internal", environment: str = "staging"
) -> Resource:
    attrs = {"team": team, "environment": environment}
    if classification is not None:
        attrs["classification"] = classification
    return Resource("model", "m", attrs)


def test_user_invokes_own_team_and_shared_only() -> None:
    u = who(Role.USER)
    assert AUTHZ.is_authorized(u, O.MODEL_INVOKE, model("red")).policies == ("model-invoke-own-team",)
    assert AUTHZ.is_authorized(u, O.MODEL_INVOKE, model("shared")).policies == ("model-invoke-shared",)
    assert not AUTHZ.is_authorized(u, O.MODEL_INVOKE, model("blue")).allowed


def test_user_without_team_gets_shared_only() -> None:
    u = who(Role.USER, team=None)
    assert AUTHZ.is_authorized(u, O.MODEL_INVOKE, model("shared")).allowed
    assert not AUTHZ.is_authorized(u, O.MODEL_INVOKE, Resource("model", "m", {})).allowed


def test_model_without_team_is_not_shared() -> None:
    assert not AUTHZ.is_authorized(who(Role.USER), O.MODEL_INVOKE, Resource("model", "m", {})).allowed


@pytest.mark.parametrize(
    ("roles", "classification", "allowed"),
    [
        ((Role.USER,), "public", True),
        ((Role.USER,), "internal", True),
        ((Role.USER,), "confidential", False),
        ((Role.ML_ENGINEER,), "confidential", True),
        ((Role.ADMIN,), "confidential", True),
        ((Role.ML_ENGINEER,), "restricted", False),
        ((Role.ADMIN,), "restricted", False),
        ((Role.USER,), "secret", False),
        ((Role.ADMIN,), "SECRET", False),
    ],
)
def test_classification(roles: tuple[Role, ...], classification: str, allowed: bool) -> None:
    assert (
        AUTHZ.is_authorized(who(*roles), O.MODEL_INVOKE, model(classification=classification)).allowed
        is allowed
    )


def test_restricted_needs_clearance() -> None:
    d = AUTHZ.is_authorized(who(Role.USER), O.MODEL_INVOKE, model(classification="restricted"))
    assert d.policies == ("guard-restricted",)
    cleared = who(Role.USER, clearance="restricted")
    assert AUTHZ.is_authorized(cleared, O.MODEL_INVOKE, model(classification="restricted")).allowed
    # clearance does not lift the confidential guard's role requirement
    assert not AUTHZ.is_authorized(cleared, O.MODEL_INVOKE, model(classification="confidential")).allowed


def test_missing_classification_defaults_to_internal() -> None:
    assert AUTHZ.is_authorized(who(Role.USER), O.MODEL_INVOKE, model(classification=None)).allowed
    assert not AUTHZ.is_authorized(
        who(Role.USER, team="x"), O.MODEL_INVOKE, model(classification=None)
    ).allowed


def test_logprobs_never_from_production() -> None:
    ml = who(Role.ML_ENGINEER)
    assert AUTHZ.is_authorized(ml, O.MODEL_LOGPROBS, model(environment="staging")).allowed
    d = AUTHZ.is_authorized(ml, O.MODEL_LOGPROBS, model(environment="production"))
    assert not d.allowed
    assert d.policies == ("guard-logprobs-production",)


def test_only_security_admin_rotates_kms_even_with_all_other_roles() -> None:
    others = [r for r in Role if r is not Role.SECURITY_ADMIN]
    kms = Resource("kms_key", "k1")
    d = AUTHZ.is_authorized(who(*others), O.KMS_DESTROY, kms)
    assert not d.allowed
    assert "guard-kms-lifecycle" in d.policies
    assert AUTHZ.is_authorized(who(Role.SECURITY_ADMIN), O.KMS_DESTROY, kms).allowed


def test_gateway_service_only_wraps() -> None:
    gw = who(Role.ADMIN, kind=PrincipalKind.SERVICE, team=None, service="gateway")
    kms = Resource("kms_key", "k1")
    assert AUTHZ.is_authorized(gw, O.KMS_WRAP, kms).allowed
    assert AUTHZ.is_authorized(gw, O.KMS_UNWRAP, kms).allowed
    d = AUTHZ.is_authorized(gw, O.KEY_CREATE, Resource("apikey", "x"))
    assert not d.allowed
    assert d.policies == ("guard-gateway-service",)
    # a user claiming the same attribute does not gain wrap
    assert not AUTHZ.is_authorized(who(Role.USER, service="gateway"), O.KMS_WRAP, kms).allowed


def test_team_principals_cannot_act() -> None:
    team = who(Role.ADMIN, kind=PrincipalKind.TEAM)
    assert not AUTHZ.is_authorized(team, O.MODEL_LIST, model()).allowed


def test_key_scope_narrows_operations_and_models() -> None:
    u = who(Role.USER)
    scope = KeyScope(models=("m",), operations=("model:invoke",))
    assert AUTHZ.is_authorized(u, O.MODEL_INVOKE, model(), scope=scope).allowed
    d = AUTHZ.is_authorized(u, O.MODEL_LIST, model(), scope=scope)
    assert not d.allowed
    assert d.policies == ("key-scope",)
    other = Resource("model", "m2", {"team": "red"})
    assert not AUTHZ.is_authorized(u, O.MODEL_INVOKE, other, scope=scope).allowed
    # a scope never widens
    assert not AUTHZ.is_authorized(who(Role.VIEWER), O.MODEL_INVOKE, model(), scope=scope).allowed


def test_principal_change_is_not_served_from_cache() -> None:
    a = Authorizer()
    r = model()
    assert a.is_authorized(who(Role.USER), O.MODEL_INVOKE, r).allowed
    assert not a.is_authorized(who(), O.MODEL_INVOKE, r).allowed
    assert not a.is_authorized(who(Role.USER, team="blue"), O.MODEL_INVOKE, r).allowed


def test_repeated_objects_are_decided_once_and_changes_are_not_missed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = Authorizer()
    evaluated: list[Principal] = []
    real = a._evaluate

    def counting(p: Principal, op: O, r: Resource, s: KeyScope | None) -> Any:
        evaluated.append(p)
        return real(p, op, r, s)

    monkeypatch.setattr(a, "_evaluate", counting)
    u, r, scope = who(Role.USER), model(), KeyScope()
    for _ in range(3):  # the same objects, call after call (the gateway's case)
        assert a.is_authorized(u, O.MODEL_INVOKE, r, scope=scope).allowed
    assert len(evaluated) == 1
    assert a.is_authorized(who(Role.USER), O.MODEL_INVOKE, model(), scope=KeyScope()).allowed  # equal copies
    assert len(evaluated) == 1
    assert not a.is_authorized(who(Role.USER, team="blue"), O.MODEL_INVOKE, r, scope=scope).allowed
    assert not a.is_authorized(u, O.MODEL_INVOKE, r, scope=KeyScope(models=("other",))).allowed
    assert not a.is_authorized(u, O.MODEL_INVOKE, model("blue"), scope=scope).allowed
    assert (
        a.is_authorized(u, O.MODEL_LIST, r, scope=scope).allowed
        == a.explain(u, O.MODEL_LIST, r).decision.allowed
    )
    a.clear_cache()
    before = len(evaluated)
    assert a.is_authorized(u, O.MODEL_INVOKE, r, scope=scope).allowed
    assert len(evaluated) == before + 1


def test_decision_cache_is_bounded() -> None:
    a = Authorizer(decision_cache_size=10, entity_cache_size=3)
    for i in range(50):
        a.is_authorized(who(Role.USER), O.MODEL_INVOKE, Resource("model", f"m{i}", {"team": "red"}))
    assert len(a._decisions) == 10


def test_odd_ids_are_safe() -> None:
    p = Principal(id='x"); permit(principal, action, resource); //\n', kind=PrincipalKind.USER, name="x")
    assert not AUTHZ.is_authorized(p, O.KMS_DESTROY, Resource("kms_key", "\u202e\x00'; DROP TABLE")).allowed


def test_bad_ids_and_attributes_refused() -> None:
    with pytest.raises(InputError):
        AUTHZ.is_authorized(who(Role.USER), O.MODEL_LIST, Resource("model", ""))
    with pytest.raises(InputError):
        AUTHZ.is_authorized(who(Role.USER), O.MODEL_LIST, Resource("model", "m", {"team": 3}))  # type: ignore[dict-item]


def test_explain_names_policies_and_sources() -> None:
    e = AUTHZ.explain(who(Role.USER), O.MODEL_INVOKE, model(classification="confidential"))
    d = e.to_dict()
    assert d["decision"] == "deny"
    assert d["policies"] == [
        {
            "id": "guard-confidential",
            "effect": "forbid",
            "reason": "confidential models are only for ML engineers and admins",
            "source": "builtin:guards.cedar",
        }
    ]
    assert d["resource"]["attributes"]["classification"] == "confidential"


def test_role_operations_lists_admin_rights() -> None:
    ops = role_operations(AUTHZ)
    assert O.KEY_CREATE in ops[Role.ADMIN]
    assert ops[Role.VIEWER] == frozenset({O.MODEL_LIST})


# -- operator policies -------------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_operator_permit_is_added(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "extra.cedar",
        '@id("viewers-read-ledger") @reason("our viewers read the ledger")\n'
        'permit (principal in Bastion::Role::"viewer", action == Bastion::Action::"ledger:read", resource);\n',
    )
    a = Authorizer.from_files([f])
    d = a.is_authorized(who(Role.VIEWER), O.LEDGER_READ, Resource("ledger", "main"))
    assert d.allowed
    assert d.policies == ("viewers-read-ledger",)
    assert d.reasons == ("our viewers read the ledger",)
    assert a.explain(who(Role.VIEWER), O.LEDGER_READ, Resource("ledger", "main")).determining[
        0
    ].source == str(f)


def test_operator_permit_cannot_override_guard(tmp_path: Path) -> None:
    f = write(tmp_path, "evil.cedar", "permit (principal, action, resource);\n")
    a = Authorizer.from_files([f])
    d = a.is_authorized(who(Role.USER), O.KMS_DESTROY, Resource("kms_key", "k"))
    assert not d.allowed
    assert d.policies == ("guard-kms-lifecycle",)
    assert a.is_authorized(who(Role.USER), O.MODEL_LIST, model()).policies == ("user-list", "evil.cedar#0")


def test_erroring_forbid_fails_closed(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "overflow.cedar",
        '@id("broken-guard")\nforbid (principal, action, resource) when { 9223372036854775807 + 1 > 0 };\n',
    )
    a = Authorizer.from_files([f])
    d = a.is_authorized(who(Role.ADMIN), O.MODEL_LIST, model())
    assert not d.allowed
    assert d.policies == ("broken-guard",)
    assert "fail closed" in d.reasons[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("permit (principal, action, resource", "not valid Cedar"),
        ("permit (principal, action, resource) when { principal.nope == 1 };", "validate"),
        ('permit (principal, action == Bastion::Action::"model:fly", resource);', "validate"),
        ('@id("user-list") permit (principal, action, resource);', "appears in"),
        ("permit (principal == ?principal, action, resource);", "templates"),
        ('@id("bad id!") permit (principal, action, resource);', "must match"),
    ],
)
def test_bad_operator_policies_refused(tmp_path: Path, text: str, message: str) -> None:
    f = write(tmp_path, "bad.cedar", text)
    with pytest.raises(ConfigError, match=message):
        load_policies([f])


def test_missing_policy_file_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_policies([tmp_path / "nope.cedar"])
