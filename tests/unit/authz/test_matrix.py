"""The authorization matrix: every built-in role x every operation, against an explicit table.

Resource: a shared, internal, staging model (the neutral case; attribute rules are tested apart).
A change to the built-in policies that changes this table must change the table on purpose.
"""

from __future__ import annotations

import pytest

from bastion.authz import Authorizer
from bastion.domain.access import Operation as O
from bastion.domain.access import Resource
from bastion.domain.identity import Principal, PrincipalKind, Role

V, U, M, AP, AU, S, AD = (
    Role.VIEWER,
    Role.USER,
    Role.ML_ENGINEER,
    Role.APPROVER,
    Role.AUDITOR,
    Role.SECURITY_ADMIN,
    Role.ADMIN,
)

EXPECTED: dict[O, set[Role]] = {
    O.MODEL_INVOKE: {U, M, AD},
    O.MODEL_LIST: {V, U, M, AP, AU, S, AD},
    O.MODEL_LOGPROBS: {M},
    O.KEY_CREATE: {AD},
    O.KEY_LIST: {AP, AU, S, AD},
    O.KEY_REVOKE: {S, AD},
    O.KEY_ROTATE: {AD},
    O.PRINCIPAL_CREATE: {AD},
    O.PRINCIPAL_LIST: {AP, AU, S, AD},
    O.PRINCIPAL_UPDATE: {AD},
    O.POLICY_EXPLAIN: {M, AP, AU, S, AD},
    O.LEDGER_READ: {AU, S, AD},
    O.LEDGER_VERIFY: {AU, S, AD},
    O.LEDGER_EXPORT: {AU, S},
    O.ACCESS_REVIEW: {AP, AU, S, AD},
    O.ACCESS_REVIEW_DECIDE: {AP, S},
    O.SCAN_RUN: {M, S},
    O.KMS_WRAP: set(),
    O.KMS_UNWRAP: set(),
    O.KMS_ROTATE: {S},
    O.KMS_DESTROY: {S},
    O.CONTENT_ERASE: {S},
    O.CONFIG_READ: {AU, S, AD},
}

RESOURCE = Resource("model", "m1", {"team": "shared", "classification": "internal", "environment": "staging"})
AUTHZ = Authorizer()


def test_table_covers_every_operation() -> None:
    assert set(EXPECTED) == set(O)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("op", list(O))
def test_matrix(role: Role, op: O) -> None:
    p = Principal(id=f"u-{role.value}", kind=PrincipalKind.USER, name="x", roles=frozenset({role}), team="t1")
    decision = AUTHZ.is_authorized(p, op, RESOURCE)
    assert decision.allowed == (role in EXPECTED[op]), decision
    assert decision.policies, "every decision names what decided it"
    assert decision.reasons


@pytest.mark.parametrize("op", list(O))
def test_no_roles_denies_everything(op: O) -> None:
    p = Principal(id="nobody", kind=PrincipalKind.USER, name="n")
    d = AUTHZ.is_authorized(p, op, RESOURCE)
    assert not d.allowed
    if op in (O.KMS_ROTATE, O.KMS_DESTROY):
        assert d.policies == ("guard-kms-lifecycle",)
    else:
        assert d.policies == ("deny-by-default",)
        assert "deny by default" in d.reasons[0]


def test_auditor_changes_nothing() -> None:
    mutating = {
        O.KEY_CREATE, O.KEY_REVOKE, O.KEY_ROTATE, O.PRINCIPAL_CREATE, O.PRINCIPAL_UPDATE,
        O.ACCESS_REVIEW_DECIDE, O.KMS_ROTATE, O.KMS_DESTROY, O.CONTENT_ERASE, O.KMS_WRAP, O.KMS_UNWRAP,
    }  # fmt: skip
    p = Principal(id="a", kind=PrincipalKind.USER, name="a", roles=frozenset({Role.AUDITOR}))
    assert not any(AUTHZ.is_authorized(p, op, RESOURCE).allowed for op in mutating)
