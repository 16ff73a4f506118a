"""The admin API end to end: every role x every route, against the real store and ledger.

The expected table is written out by hand from the role descriptions in docs/keys-and-roles.md,
so a policy change that widens or narrows a role shows up here as a failing cell.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bastion.app import create_app
from bastion.config import load_settings
from bastion.domain.events import EventTag
from bastion.domain.identity import Role
from bastion.services.runtime import Runtime

R = Role
ALL = frozenset(Role)

# (method, path, json body, roles allowed)
ROUTES: list[tuple[str, str, dict[str, Any] | None, frozenset[Role]]] = [
    ("GET", "/admin/v1/whoami", None, ALL),
    ("GET", "/admin/v1/principals", None, frozenset({R.APPROVER, R.AUDITOR, R.SECURITY_ADMIN, R.ADMIN})),
    ("POST", "/admin/v1/principals", {"name": "new-principal", "roles": ["viewer"]}, frozenset({R.ADMIN})),
    ("PATCH", "/admin/v1/principals/nobody", {"disabled": True}, frozenset({R.ADMIN})),
    ("GET", "/admin/v1/keys", None, frozenset({R.APPROVER, R.AUDITOR, R.SECURITY_ADMIN, R.ADMIN})),
    ("POST", "/admin/v1/keys", {"principal": "nobody", "name": "k"}, frozenset({R.ADMIN})),
    ("POST", "/admin/v1/keys/0000000000000000/revoke", {}, frozenset({R.SECURITY_ADMIN, R.ADMIN})),
    ("POST", "/admin/v1/keys/0000000000000000/rotate", {}, frozenset({R.ADMIN})),
    (
        "POST",
        "/admin/v1/policy/explain",
        {"principal": "nobody", "operation": "model:invoke", "resource_type": "model", "resource_id": "m"},
        frozenset({R.ML_ENGINEER, R.APPROVER, R.AUDITOR, R.SECURITY_ADMIN, R.ADMIN}),
    ),
    ("GET", "/admin/v1/ledger/tree-head", None, frozenset({R.AUDITOR, R.SECURITY_ADMIN, R.ADMIN})),
    ("GET", "/admin/v1/ledger/entries?n=5", None, frozenset({R.AUDITOR, R.SECURITY_ADMIN, R.ADMIN})),
    ("GET", "/admin/v1/ledger/proofs/inclusion/0", None, frozenset({R.AUDITOR, R.SECURITY_ADMIN, R.ADMIN})),
    (
        "GET",
        "/admin/v1/ledger/proofs/consistency?old_size=1",
        None,
        frozenset({R.AUDITOR, R.SECURITY_ADMIN, R.ADMIN}),
    ),
    ("POST", "/admin/v1/ledger/verify", None, frozenset({R.AUDITOR, R.SECURITY_ADMIN, R.ADMIN})),
    (
        "GET",
        "/admin/v1/access/review",
        None,
        frozenset({R.APPROVER, R.AUDITOR, R.SECURITY_ADMIN, R.ADMIN}),
    ),
    (
        "POST",
        "/admin/v1/access/decisions",
        {"key_id": "0000000000000000", "decision": "keep"},
        frozenset({R.APPROVER, R.SECURITY_ADMIN}),
    ),
]


@pytest.fixture
def runtime(tmp_path: Path, db_url: str) -> Iterator[Runtime]:
    cfg = tmp_path / "bastion.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\ndatabase:\n  url: '{db_url}'\n", encoding="utf-8")
    rt = Runtime.open(load_settings(cfg))
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime.settings, runtime)) as c:
        yield c


@pytest.fixture
def tokens(runtime: Runtime) -> dict[Role, str]:
    out: dict[Role, str] = {}
    for role in Role:
        p = runtime.identity.create_principal(f"p-{role.value}", roles=[role])
        out[role] = runtime.identity.create_key(p.id, name="k").token
    return out


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES]
)
def test_authorization_matrix(
    client: TestClient,
    tokens: dict[Role, str],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    allowed: frozenset[Role],
) -> None:
    anonymous = client.request(method, path, json=body)
    assert anonymous.status_code == 401
    forged = client.request(
        method, path, json=body, headers={"Authorization": "Bearer bst_0000000000000000_" + "A" * 43}
    )
    assert forged.status_code == 401
    for role, token in tokens.items():
        resp = client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
        if role in allowed:
            assert resp.status_code not in (401, 403), f"{role} should pass {method} {path}: {resp.text}"
        else:
            assert resp.status_code == 403, f"{role} should be denied {method} {path}: {resp.status_code}"
            assert resp.json()["error"]["code"] == "permission_denied"


def test_key_lifecycle_over_the_api_is_audited(
    client: TestClient, runtime: Runtime, tokens: dict[Role, str]
) -> None:
    admin = {"Authorization": f"Bearer {tokens[Role.ADMIN]}"}
    created = client.post(
        "/admin/v1/keys", json={"principal": "p-user", "name": "svc", "expires_days": 30}, headers=admin
    )
    assert created.status_code == 201, created.text
    secret = created.json()["key"]
    key_id = created.json()["key_id"]
    assert (
        client.get("/admin/v1/whoami", headers={"Authorization": f"Bearer {secret}"}).json()["name"]
        == "p-user"
    )
    listed = client.get("/admin/v1/keys", headers=admin).json()
    assert key_id in {k["key_id"] for k in listed}
    assert all("key" not in k and "secret_hash" not in k for k in listed)  # secrets never listed
    assert client.post(f"/admin/v1/keys/{key_id}/revoke", json={}, headers=admin).status_code == 200
    assert client.get("/admin/v1/whoami", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    tags = [e.event.tag for e in runtime.audit.tail(200)]
    assert EventTag.APIKEY_CREATED in tags
    assert EventTag.APIKEY_REVOKED in tags
    assert EventTag.AUTHN_FAILED in tags
    assert runtime.audit.verify().ok


def test_denied_decision_is_recorded(client: TestClient, runtime: Runtime, tokens: dict[Role, str]) -> None:
    resp = client.get("/admin/v1/keys", headers={"Authorization": f"Bearer {tokens[Role.VIEWER]}"})
    assert resp.status_code == 403
    denied = [e for e in runtime.audit.tail(50) if e.event.tag is EventTag.AUTHZ_DENIED]
    assert denied
    assert denied[-1].event.attributes["operation"] == "apikey:list"


@pytest.mark.parametrize(
    "header",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer ",
        "Bearer " + "x" * 10000,
        "Bearer bst_'; DROP TABLE identity_api_keys; --",
    ],
)
def test_bad_credentials_are_401_not_500(client: TestClient, header: str) -> None:
    resp = client.get("/admin/v1/whoami", headers={"Authorization": header})
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "authentication_failed"


def test_malformed_body_is_422_with_the_field(client: TestClient, tokens: dict[Role, str]) -> None:
    admin = {"Authorization": f"Bearer {tokens[Role.ADMIN]}"}
    resp = client.post(
        "/admin/v1/keys", json={"principal": "p-user", "name": "k", "unknown": 1}, headers=admin
    )
    assert resp.status_code == 422
    assert "unknown" in resp.json()["error"]["message"]
    resp = client.post(
        "/admin/v1/keys", content=b"{not json", headers={**admin, "Content-Type": "application/json"}
    )
    assert resp.status_code == 422


def test_openapi_lists_admin_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for _, path, _, _ in ROUTES:
        assert (
            path.split("?")[0]
            .replace("0000000000000000", "{key_id}")
            .replace("/nobody", "/{ref}")
            .replace("/inclusion/0", "/inclusion/{seq}")
            in spec["paths"]
        )


def test_oversized_body_is_413_before_authentication(client: TestClient, runtime: Runtime) -> None:
    big = b"x" * (runtime.settings.server.max_body_bytes + 1)
    resp = client.post("/admin/v1/keys", content=big, headers={"Content-Type": "application/json"})
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "request_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(5):
            yield b"y" * (runtime.settings.server.max_body_bytes // 4)

    resp = client.post("/admin/v1/keys", content=chunks(), headers={"Content-Type": "application/json"})
    assert resp.status_code == 413
