"""Access reviews and OIDC sign-in through the services, on real SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine

from bastion.domain.access import Operation
from bastion.domain.events import EventTag
from bastion.domain.identity import AuthMethod, KeyScope, Role
from bastion.errors import InputError
from bastion.identity.oidc import OIDCConfig, OIDCVerifier
from bastion.services.access_review import AccessReviewService, Flag, ReviewDecision
from bastion.services.identity import CredentialRejected, IdentityService
from support.identity import Clock, ListSink


@pytest.fixture
def world(
    engine: Engine, sink: ListSink, clock: Clock
) -> tuple[IdentityService, AccessReviewService, ListSink, Clock]:
    ids = IdentityService(engine, sink, clock=clock.wall, monotonic=clock.monotonic)
    return ids, AccessReviewService(ids, sink, clock=clock.wall), sink, clock


def test_review_flags(world: tuple[IdentityService, AccessReviewService, ListSink, Clock]) -> None:
    ids, reviews, _, clock = world
    ids.create_principal("ana", roles=["user", "auditor"], team="red")
    used = ids.create_key("ana", name="used-on-one-model")
    ids.create_key("ana", name="never-used")
    ids.create_key("ana", name="short", expires_in=timedelta(days=1))
    narrow = ids.create_key(
        "ana", name="narrow", scope=KeyScope(models=("m1", "m2"), operations=("model:invoke",))
    )
    clock.advance(days=100)
    for ck in (used, narrow):
        auth = ids.authenticate_api_key(ck.token)
        ids.record_use(auth, Operation.MODEL_INVOKE, "m1")
    review = reviews.review(unused_days=90)
    (grant,) = review.grants
    by_name = {k.key.name: k for k in grant.keys}
    assert Flag.BROADER_THAN_USE in by_name["used-on-one-model"].flags
    assert any("all models, used only on m1" in n for n in by_name["used-on-one-model"].notes)
    assert by_name["never-used"].flags == (Flag.NEVER_USED,)
    assert Flag.EXPIRED_NOT_REVOKED in by_name["short"].flags
    assert any("never used: m2" in n for n in by_name["narrow"].notes)
    assert Flag.ROLE_UNEXERCISED in grant.flags  # auditor granted, never exercised
    assert any("auditor" in n for n in grant.notes)
    assert grant.last_used_at == clock.now
    clock.advance(days=91)
    later = {k.key.name: k for k in reviews.review(unused_days=90).grants[0].keys}
    assert Flag.UNUSED in later["used-on-one-model"].flags
    json.dumps(review.to_dict())  # JSON-ready


def test_revoke_decision_takes_effect_and_is_recorded(
    world: tuple[IdentityService, AccessReviewService, ListSink, Clock],
) -> None:
    ids, reviews, sink, _ = world
    ids.create_principal("ben", roles=["user"])
    ck = ids.create_key("ben", name="k")
    ids.authenticate_api_key(ck.token)  # cached
    reviews.decide_key(ck.key.key_id, "revoke", reviewer="p_rev", note="left the team")
    decided = [e for e in sink.events if e.tag is EventTag.ACCESS_REVIEW_DECIDED]
    assert decided[-1].actor == "p_rev"
    assert decided[-1].attributes["decision"] == "revoke"
    assert decided[-1].attributes["note"] == "left the team"
    with pytest.raises(CredentialRejected, match="revoked"):
        ids.authenticate_api_key(ck.token)
    keep = ids.create_key("ben", name="k2")
    reviews.decide_key(keep.key.key_id, ReviewDecision.KEEP, reviewer="p_rev")
    assert sink.events[-1].attributes["decision"] == "keep"
    ids.authenticate_api_key(keep.token)
    with pytest.raises(InputError):
        reviews.decide_key(keep.key.key_id, "maybe", reviewer="p_rev")


def test_role_decision(world: tuple[IdentityService, AccessReviewService, ListSink, Clock]) -> None:
    ids, reviews, sink, _ = world
    ids.create_principal("cy", roles=["user", "admin"])
    ck = ids.create_key("cy", name="k")
    assert Role.ADMIN in ids.authenticate_api_key(ck.token).principal.roles
    p = reviews.decide_role("cy", "admin", "revoke", reviewer="p_rev")
    assert p.roles == {Role.USER}
    assert sink.events[-1].tag is EventTag.ACCESS_REVIEW_DECIDED
    assert sink.events[-1].attributes["role"] == "admin"
    assert ids.authenticate_api_key(ck.token).principal.roles == {Role.USER}
    with pytest.raises(InputError, match="does not hold"):
        reviews.decide_role("cy", "admin", "keep", reviewer="p_rev")


def test_disabled_with_active_keys(
    world: tuple[IdentityService, AccessReviewService, ListSink, Clock],
) -> None:
    ids, reviews, _, _ = world
    ids.create_principal("dee", roles=["user"])
    ids.create_key("dee", name="k")
    ids.update_principal("dee", disabled=True)
    assert Flag.DISABLED_WITH_ACTIVE_KEYS in reviews.review().grants[0].flags


def test_oidc_bearer_through_service(engine: Engine, sink: ListSink, tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk["kid"] = "k1"
    f = tmp_path / "jwks.json"
    f.write_text(json.dumps({"keys": [jwk]}))
    ids = IdentityService(
        engine,
        sink,
        oidc=OIDCVerifier(OIDCConfig(issuer="https://idp.test", audience="bastion", jwks_file=f)),
    )
    now = int(time.time())
    claims = {"iss": "https://idp.test", "aud": "bastion", "sub": "u1", "exp": now + 60, "roles": ["auditor"]}
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
    auth = ids.authenticate(token, "127.0.0.1")
    assert auth.method is AuthMethod.OIDC
    assert auth.principal.roles == {Role.AUDITOR}
    assert sink.last().tag is EventTag.AUTHN_SUCCEEDED
    expired = jwt.encode({**claims, "exp": now - 3600}, key, algorithm="RS256", headers={"kid": "k1"})
    with pytest.raises(CredentialRejected) as ei:
        ids.authenticate(expired, "127.0.0.1")
    assert ei.value.reason == "bad_token:expired"
    assert sink.last().tag is EventTag.AUTHN_FAILED
    assert sink.last().attributes["reason"] == "bad_token:expired"
