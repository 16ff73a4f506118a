"""A hostile caller against the gateway: model-name tricks and credentials.

Model names are matched exactly (no folding): a look-alike is a 404 that never reaches a provider
and never becomes a metric label. Credentials: the ``Authorization`` header's forms, the real API-key
verification (``IdentityService`` behind ``bastion.app.IdentityAuthenticator``), constant-time
comparison, no token in any answer or event, and where the client address comes from.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bastion.app import IdentityAuthenticator
from bastion.domain.events import EventTag
from bastion.domain.identity import KeyScope, Role
from bastion.services.identity import IdentityService
from bastion.store.engine import make_engine
from bastion.store.schema import create_all
from support.identity import ListSink

from .test_gateway_hostile_caller import (
    CHAT,
    EMBEDDINGS,
    OK_CHAT,
    Answer,
    Gw,
    assert_openai_error,
    gateway,
    one_event,
    run,
    run_all,
    settings,
)

# -- model names -------------------------------------------------------------------------------------

LOOK_ALIKES = [
    "bastion-dem\u043e",  # Cyrillic o
    "bastion\u2010demo",  # Unicode hyphen
    "ｂａｓｔｉｏｎ-demo",  # full-width
    "bastion-demo ",
    " bastion-demo",
    "bastion-demo\x00",
    "bastion-demo\n",
    "bastion-demo\u200b",  # zero-width space
    "Bastion-Demo",
    "BASTION-DEMO",
    "bastion-demo/",
    "bastion-demo:latest",
]


@pytest.mark.parametrize("name", LOOK_ALIKES, ids=[repr(n) for n in LOOK_ALIKES])
def test_look_alike_model_names_are_404_and_reach_no_provider(name: str) -> None:
    gw = gateway()
    a = run(gw, CHAT, {**OK_CHAT, "model": name})
    assert_openai_error(a, 404, "invalid_request_error", "model_not_found", "model")
    ev = one_event(gw)
    assert ev.tag is EventTag.GATEWAY_REQUEST_REJECTED and "model" not in ev.attributes
    assert gw.up.bodies == []
    metrics = gw.app.gateway.metrics.render().decode()
    assert 'model="-"' in metrics and name.strip() not in metrics.replace('model="bastion-demo"', "")


def test_a_look_alike_of_a_forbidden_model_is_not_served_as_an_allowed_one() -> None:
    """alice may use bastion-demo, not red-model; ``red-model `` is neither a way in nor a 500."""
    for name in ("red-model ", "red\u2010model", "RED-MODEL"):
        gw = gateway()
        assert run(gw, CHAT, {**OK_CHAT, "model": name}).status == 404
        assert gw.up.bodies == []


@pytest.mark.parametrize(
    "model",
    [["bastion-demo"], {"id": "bastion-demo"}, 1, None, True, "", "m" * 257],
    ids=["list", "object", "int", "null", "bool", "empty", "too-long"],
)
def test_a_model_that_is_not_a_short_string_is_a_400(model: object) -> None:
    gw = gateway()
    a = run(gw, CHAT, {**OK_CHAT, "model": model})
    assert_openai_error(a, 400, "invalid_request_error", "invalid_request", "model")
    assert gw.up.bodies == []


def test_the_upstream_model_name_is_not_a_model_callers_can_name() -> None:
    """``alias`` maps to ``provider-model-x`` upstream; callers see and use only the alias."""
    gw = gateway()
    assert run(gw, CHAT, {**OK_CHAT, "model": "provider-model-x"}).status == 404
    assert gw.up.bodies == []
    gw = gateway()
    a = run(gw, CHAT, {**OK_CHAT, "model": "alias"})
    assert a.status == 200 and a.json()["model"] == "alias"
    assert gw.up.bodies[-1]["model"] == "provider-model-x"
    assert b"provider-model-x" not in a.body
    assert one_event(gw).attributes["model"] == "alias"


def test_a_route_a_model_does_not_serve_is_a_422() -> None:
    gw = gateway()
    a = run(gw, EMBEDDINGS, {"model": "chat-only", "input": "hi"})
    assert_openai_error(a, 422, "invalid_request_error", "unsupported_model_operation", "model")
    assert gw.up.bodies == []


def test_models_lookup_of_a_look_alike_is_a_404_with_one_event() -> None:
    gw = gateway()
    a = run(gw, "/v1/models/bastion-dem\u043e", method="GET")
    assert_openai_error(a, 404, "invalid_request_error", "model_not_found", "model")
    assert one_event(gw).attributes["status"] == 404


# -- the Authorization header (the fake authenticator) --------------------------------------------------


class CountingAuth:
    """Wraps an authenticator; counts the credentials it was asked about."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seen: list[str] = []

    async def authenticate(self, credential: str, client_ip: str) -> Any:
        self.seen.append(credential)
        return await self.inner.authenticate(credential, client_ip)

    async def authenticate_certificate(self, der: bytes, client_ip: str) -> Any:
        return await self.inner.authenticate_certificate(der, client_ip)


def call_with_authorization(*values: bytes, path: str = CHAT) -> tuple[Gw, Answer, CountingAuth]:
    """One chat call sending ``values`` as its Authorization header(s), the fake keys behind them."""
    counting = CountingAuth(None)
    gw = gateway(authenticator=counting)
    counting.inner = gw.auth
    a = run(gw, path, OK_CHAT, key=None, headers=[(b"authorization", v) for v in values])
    return gw, a, counting


@pytest.mark.parametrize(
    "value", [b"Bearer user-key", b"bearer user-key", b"BEARER user-key", b"Bearer  user-key "]
)
def test_the_bearer_scheme_is_case_insensitive(value: bytes) -> None:
    _, a, _ = call_with_authorization(value)
    assert a.status == 200


@pytest.mark.parametrize(
    "value",
    [
        b"Basic dXNlcjpwYXNz",
        b"Token user-key",
        b"user-key",
        b"Bearer",
        b"Bearer ",
        b"Bearer\tuser-key",
        b"Bearer user-key\x00",
        b"Bearer user\x00-key",
        b"Bearer us\xe9r-key",
        b"Bearer " + b"A" * 9000,
    ],
    ids=["basic", "token", "no-scheme", "scheme-only", "empty", "tab", "nul-end", "nul-in", "latin1", "long"],
)
def test_anything_but_a_known_bearer_key_is_a_401_with_one_event(value: bytes) -> None:
    gw, a, counting = call_with_authorization(value)
    assert_openai_error(a, 401, "authentication_error", "invalid_api_key")
    ev = one_event(gw)
    assert ev.tag is EventTag.GATEWAY_REQUEST_REJECTED and ev.actor == "anonymous"
    assert ev.attributes["status"] == 401 and ev.attributes["steps"] == []
    assert gw.up.bodies == []
    if len(value) > 8192:
        assert counting.seen == []  # refused before the authenticator (or a database) is asked


def test_a_refused_credential_is_never_echoed() -> None:
    secret = b"Bearer sk-live-DO-NOT-ECHO-1234567890"
    gw, a, _ = call_with_authorization(secret)
    assert a.status == 401
    assert b"DO-NOT-ECHO" not in a.body
    assert "DO-NOT-ECHO" not in repr(one_event(gw))


@pytest.mark.parametrize("order", ["valid-first", "valid-last"])
def test_two_authorization_headers_are_refused(order: str) -> None:
    valid, other = b"Bearer user-key", b"Bearer red-key"
    values = (valid, other) if order == "valid-first" else (other, valid)
    gw, a, _ = call_with_authorization(*values)
    assert a.status in (400, 401)
    assert gw.up.bodies == []


# -- the real API-key verification ----------------------------------------------------------------------


@dataclass
class Real:
    svc: IdentityService
    sink: ListSink
    token: str
    key_id: str
    principal_id: str


@pytest.fixture
def real(tmp_path: Path) -> Iterator[Real]:
    engine = make_engine(f"sqlite:///{tmp_path / 'bastion.db'}")
    create_all(engine)
    sink = ListSink()
    svc = IdentityService(engine, sink)
    p = svc.create_principal("alice", roles=[Role.USER], team="blue")
    created = svc.create_key(p.id, name="k")
    try:
        yield Real(svc, sink, created.token, created.key.key_id, p.id)
    finally:
        engine.dispose()


def real_gateway(r: Real, **gateway_settings: Any) -> Gw:
    return gateway(settings(**gateway_settings), authenticator=IdentityAuthenticator(r.svc))


def test_a_real_key_is_accepted(real: Real) -> None:
    gw = real_gateway(real)
    a = run(gw, CHAT, OK_CHAT, key=real.token)
    assert a.status == 200
    ev = one_event(gw)
    assert ev.actor == real.principal_id and ev.attributes["key_id"] == real.key_id


def forgeries(token: str) -> dict[str, str]:
    prefix, key_id, secret = token.split("_", 2)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    return {
        "wrong-secret": f"{prefix}_{key_id}_{flipped}",
        "short-secret": token[:-1],
        "long-secret": token + "A",
        "upper-prefix": token.replace(prefix, prefix.upper(), 1),
        "look-alike": token[:-1] + "\u0410",  # Cyrillic A
        "nul": token[:-1] + "\x00",
        "unknown-id": f"{prefix}_{'0' * 16}_{secret}",
        "other-prefix": f"sk_{key_id}_{secret}",
        "huge": token + "A" * 4000,
        "empty": "",
    }


FORGERY_NAMES = list(forgeries("bst_0123456789abcdef_" + "x" * 43))


@pytest.mark.parametrize("kind", FORGERY_NAMES)
def test_forged_real_keys_are_a_401_that_echoes_nothing(real: Real, kind: str) -> None:
    token = forgeries(real.token)[kind]
    secret = real.token.split("_", 2)[2]
    gw = real_gateway(real)
    a = run(gw, CHAT, OK_CHAT, headers=[(b"authorization", b"Bearer " + token.encode("utf-8"))], key=None)
    assert_openai_error(a, 401, "authentication_error", "invalid_api_key")
    assert secret[:20].encode() not in a.body
    assert len(token) < 20 or token[-20:].encode("utf-8") not in a.body
    ev = one_event(gw)  # the gateway's one event; the identity service records the failure itself
    assert ev.attributes["status"] == 401 and secret[:20] not in repr(ev)
    assert all(secret[:20] not in repr(e) for e in real.sink.events)
    assert real.sink.events and real.sink.events[-1].tag is EventTag.AUTHN_FAILED
    assert gw.up.bodies == []


def test_secrets_are_compared_in_constant_time(real: Real, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong secret for a real key id is judged by hmac.compare_digest (first lookup and cached)."""
    calls: list[tuple[bytes, bytes]] = []
    real_compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # apikeys calls hmac.compare_digest
    forged = forgeries(real.token)["wrong-secret"]
    gw = real_gateway(real)
    answers = run_all(gw, [(CHAT, OK_CHAT, {"key": real.token}), (CHAT, OK_CHAT, {"key": forged})])
    assert [a.status for a in answers] == [200, 401]
    assert len(calls) >= 2 and not real_compare(*calls[-1])


# -- the client address ----------------------------------------------------------------------------------

ALLOWED_NET = "198.51.100.0/24"


def cidr_key(r: Real) -> str:
    return r.svc.create_key(r.principal_id, name="cidr", scope=KeyScope(source_cidrs=(ALLOWED_NET,))).token


def test_forwarded_for_is_ignored_unless_trusted(real: Real) -> None:
    token = cidr_key(real)
    gw = real_gateway(real)
    a = run(gw, CHAT, OK_CHAT, key=token, headers=[(b"x-forwarded-for", b"198.51.100.7")])
    assert a.status == 401
    assert one_event(gw).attributes["client_ip"] == "127.0.0.1"


def test_a_trusted_forwarded_for_from_the_allowed_network_is_accepted(real: Real) -> None:
    token = cidr_key(real)
    gw = real_gateway(real, trust_forwarded_for=True)
    a = run(gw, CHAT, OK_CHAT, key=token, headers=[(b"x-forwarded-for", b"198.51.100.7")])
    assert a.status == 200


def test_a_spoofed_forwarded_for_entry_does_not_pass_a_source_cidr_rule(real: Real) -> None:
    """The caller (really at 203.0.113.9) sends ``X-Forwarded-For: 198.51.100.7``; the trusted proxy
    in front (the peer, 127.0.0.1) appends what it saw. Safe: the key, limited to 198.51.100.0/24,
    is refused, and the ledger names 203.0.113.9."""
    token = cidr_key(real)
    gw = real_gateway(real, trust_forwarded_for=True)
    a = run(gw, CHAT, OK_CHAT, key=token, headers=[(b"x-forwarded-for", b"198.51.100.7, 203.0.113.9")])
    assert a.status == 401
    assert one_event(gw).attributes["client_ip"] == "203.0.113.9"
