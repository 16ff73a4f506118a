"""The authorisation matrix through the real gateway with the real Cedar authorizer (the built-in
policies in src/bastion/authz/policies): every built-in role × route × kind of model, and GET /v1/models.

The expected answers are written out from the policies, not computed by the code under test:

* roles.cedar gives every role ``model:list``, and ``model:invoke`` to nobody by role alone;
* models.cedar: users and ML engineers invoke ``shared`` models and their own team's, admins any model;
  only ML engineers get ``model:logprobs`` (shared or own-team models);
* guards.cedar: ``confidential`` models only for ML engineers and admins (a forbid no permit overrides).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bastion.authz import Authorizer
from bastion.domain.events import EventTag
from bastion.domain.identity import Role
from bastion.gateway import GatewayComponents, create_gateway
from support.net import serve

from .harness import FakeAuthenticator, MemoryAudit, Ready, gateway_settings, principal

TEAM = "blue"  # every probe principal's team
MODELS = {
    "shared-public": {"team": "shared", "classification": "public"},
    "own-team": {"team": TEAM, "classification": "internal"},
    "other-team": {"team": "red", "classification": "internal"},
    "shared-confidential": {"team": "shared", "classification": "confidential"},
}
_ALL = set(MODELS)
_SHARED_AND_OWN = {"shared-public", "own-team"}
#: the models each role may invoke (see the module docstring)
INVOKE: dict[Role, set[str]] = {
    Role.VIEWER: set(),
    Role.USER: _SHARED_AND_OWN,
    Role.ML_ENGINEER: _SHARED_AND_OWN | {"shared-confidential"},
    Role.APPROVER: set(),
    Role.AUDITOR: set(),
    Role.SECURITY_ADMIN: set(),
    Role.ADMIN: _ALL,
}
ROUTES: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
    "completions": ("/completions", {"prompt": "hi"}),
    "embeddings": ("/embeddings", {"input": "hi"}),
}


def key_of(role: Role) -> str:
    return f"key-{role.value}"


@dataclass
class Gw:
    url: str
    audit: MemoryAudit
    http: httpx.Client

    def post(self, role: Role, route: str, model: str, **extra: Any) -> httpx.Response:
        path, body = ROUTES[route]
        return self.http.post(
            self.url + "/v1" + path,
            json={"model": model, **body, **extra},
            headers={"authorization": f"Bearer {key_of(role)}"},
        )


@pytest.fixture(scope="module")
def gw() -> Iterator[Gw]:
    """One gateway for all roles: a key per role, the real Authorizer, the demo upstream."""
    s = gateway_settings(
        upstreams={"demo": {"type": "demo"}},
        models={m: {"upstream": "demo", "attributes": attrs} for m, attrs in MODELS.items()},
        guards={"input": [], "output": []},
        limits={"per_key": {"requests_per_minute": 100_000}},
    )
    auth, audit = FakeAuthenticator(), MemoryAudit()
    for role in Role:
        auth.add(key_of(role), principal(f"probe-{role.value}", role, team=TEAM))
    app = create_gateway(s, GatewayComponents(auth, Authorizer(), audit, readiness=Ready()))
    with serve(app) as url, httpx.Client(timeout=10) as http:
        yield Gw(url, audit, http)


def test_the_table_covers_every_built_in_role() -> None:
    assert set(INVOKE) == set(Role)


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_invoke_matrix(gw: Gw, role: Role, model: str, route: str) -> None:
    n = len(gw.audit.events)
    r = gw.post(role, route, model)
    events = gw.audit.wait_for(n + 1)
    assert len(events) == n + 1, "one ledger event per call"
    ev = events[-1]
    assert ev.actor == f"probe-{role.value}" and ev.attributes["model"] == model
    if model in INVOKE[role]:
        assert r.status_code == 200, r.text
        assert r.json()["model"] == model
        assert ev.tag is EventTag.GATEWAY_REQUEST_COMPLETED
        assert "authz" in ev.attributes["steps"]  # type: ignore[operator]
    else:
        assert r.status_code == 403, r.text
        err = r.json()["error"]
        assert err["code"] == "permission_denied" and err["type"] == "permission_error"
        assert ev.attributes["status"] == 403
        assert "authz" not in ev.attributes["steps"]  # type: ignore[operator]
        assert ev.attributes["policies"], "the deciding policies are recorded"


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_models_list_matrix(gw: Gw, role: Role) -> None:
    r = gw.http.get(gw.url + "/v1/models", headers={"authorization": f"Bearer {key_of(role)}"})
    assert r.status_code == 200, r.text  # every role may list (roles.cedar)
    assert sorted(m["id"] for m in r.json()["data"]) == sorted(INVOKE[role])


@pytest.mark.parametrize(
    ("role", "model", "policy"),
    [
        (Role.USER, "shared-confidential", "guard-confidential"),
        (Role.USER, "other-team", "deny-by-default"),
        (Role.VIEWER, "shared-public", "deny-by-default"),
        (Role.SECURITY_ADMIN, "shared-public", "deny-by-default"),
    ],
)
def test_denials_record_the_deciding_policy(gw: Gw, role: Role, model: str, policy: str) -> None:
    n = len(gw.audit.events)
    assert gw.post(role, "chat", model).status_code == 403
    ev = gw.audit.wait_for(n + 1)[-1]
    assert policy in ev.attributes["policies"]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("role", "allowed"), [(Role.USER, False), (Role.ML_ENGINEER, True), (Role.ADMIN, False)], ids=str
)
def test_logprobs_only_where_policy_permits(gw: Gw, role: Role, allowed: bool) -> None:
    n = len(gw.audit.events)
    r = gw.post(role, "chat", "shared-public", logprobs=True, top_logprobs=2, max_tokens=10)
    assert r.status_code == 200, r.text
    ev = gw.audit.wait_for(n + 1)[-1]
    stripped = "logprobs_stripped" in (ev.attributes.get("hardening") or [])  # type: ignore[operator]
    assert stripped is not allowed
