"""docs/keys-and-roles.md: the role table matches the policies, and the example policy loads."""

from __future__ import annotations

import re
from pathlib import Path

from bastion.authz import Authorizer, load_policies
from bastion.authz.authorizer import role_operations
from bastion.domain.access import Operation, Resource
from bastion.domain.identity import Principal, PrincipalKind, Role

DOC = Path(__file__).resolve().parents[3] / "docs" / "keys-and-roles.md"


def test_role_table_matches_policies() -> None:
    text = DOC.read_text(encoding="utf-8")
    header = next(line for line in text.splitlines() if line.startswith("| operation |"))
    roles = [Role(c.strip()) for c in header.strip("|").split("|")[1:]]
    documented: dict[Role, set[Operation]] = {r: set() for r in roles}
    rows = re.findall(r"^\| `([a-z:]+)` \|(.*)\|$", text, re.M)
    assert {op for op, _ in rows} == {o.value for o in Operation}
    for op, cells in rows:
        for role, cell in zip(roles, cells.split("|"), strict=True):
            if cell.strip() == "yes":
                documented[role].add(Operation(op))
    actual = role_operations(Authorizer())
    assert {r: set(actual[r]) for r in Role} == documented


def test_example_policy_in_docs_loads(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    (block,) = re.findall(r"```cedar\n(.*?)```", text, re.S)
    f = tmp_path / "acme.cedar"
    f.write_text(block, encoding="utf-8")
    authz = Authorizer(load_policies([f]))
    viewer = Principal("v", PrincipalKind.USER, "v", frozenset({Role.VIEWER}), team="red")
    assert authz.is_authorized(viewer, Operation.LEDGER_READ, Resource("ledger", "main")).allowed
    admin = Principal("a", PrincipalKind.USER, "a", frozenset({Role.ADMIN}))
    d = authz.is_authorized(
        admin, Operation.MODEL_INVOKE, Resource("model", "x", {"model": "m-17", "team": "shared"})
    )
    assert d.policies == ("acme-quarantine",)
