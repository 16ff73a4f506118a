"""Properties of the authorizer: never crashes on odd input, guards always hold, scopes only narrow."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.authz import Authorizer
from bastion.domain.access import Operation, Resource
from bastion.domain.identity import KeyScope, Principal, PrincipalKind, Role
from bastion.errors import InputError

AUTHZ = Authorizer(decision_cache_size=256, entity_cache_size=64)
text = st.text(min_size=1, max_size=40)
attrs = st.dictionaries(
    st.sampled_from(["team", "model", "environment", "classification", "clearance", "service", "x"]),
    st.one_of(
        st.sampled_from(["shared", "red", "production", "restricted", "confidential", "gateway"]), text
    ),
    max_size=5,
)
principals = st.builds(
    Principal,
    id=text,
    kind=st.sampled_from(PrincipalKind),
    name=text,
    roles=st.frozensets(st.sampled_from(Role)),
    team=st.one_of(st.none(), st.sampled_from(["red", "shared"]), text),
    attributes=attrs,
)
resources = st.builds(
    Resource, type=st.sampled_from(["model", "kms_key", "ledger", "x"]), id=text, attributes=attrs
)
scopes = st.builds(
    KeyScope,
    models=st.lists(st.sampled_from(["m", "n"]) | text, max_size=3).map(tuple),
    operations=st.lists(st.sampled_from([o.value for o in Operation]), max_size=3).map(tuple),
)


@settings(max_examples=300, deadline=None)
@given(principals, st.sampled_from(Operation), resources, scopes)
def test_decisions_are_total_and_guarded(p: Principal, op: Operation, r: Resource, scope: KeyScope) -> None:
    try:
        d = AUTHZ.is_authorized(p, op, r)
        ds = AUTHZ.is_authorized(p, op, r, scope=scope)
    except InputError:
        return
    assert d.policies
    if ds.allowed:
        assert d.allowed, "a key scope never widens"
    if d.allowed and op in (Operation.KMS_ROTATE, Operation.KMS_DESTROY):
        assert Role.SECURITY_ADMIN in p.roles
    if d.allowed:
        assert p.kind is not PrincipalKind.TEAM
        assert r.attributes.get("classification", "internal") in (
            "public",
            "internal",
            "confidential",
            "restricted",
        )
        if r.attributes.get("classification") == "restricted" and op is Operation.MODEL_INVOKE:
            assert p.attributes.get("clearance") == "restricted"
