from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bastion.domain.identity import Role
from bastion.errors import AuthenticationError, InputError
from bastion.identity.oidc import JWKSCache, OIDCConfig, OIDCVerifier, TokenError

ISS = "https://idp.example.test"
AUD = "bastion"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_KEY2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def jwk_of(key: Any, kid: str, **extra: str) -> dict[str, Any]:
    pub = key.public_key()
    algo = jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
    d: dict[str, Any] = json.loads(algo.to_jwk(pub))
    d.update(kid=kid, **extra)
    return d


def jwks(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"keys": list(entries)}


def mint(key: Any = RSA_KEY, kid: str | None = "k1", alg: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {"iss": ISS, "aud": AUD, "sub": "alice", "iat": now, "exp": now + 300}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(body, key, algorithm=alg, headers=headers)


@pytest.fixture
def jwks_file(tmp_path: Path) -> Path:
    f = tmp_path / "jwks.json"
    f.write_text(json.dumps(jwks(jwk_of(RSA_KEY, "k1", use="sig"), jwk_of(EC_KEY, "e1"))))
    return f


@pytest.fixture
def verifier(jwks_file: Path) -> OIDCVerifier:
    return OIDCVerifier(
        OIDCConfig(issuer=ISS, audience=AUD, jwks_file=jwks_file, algorithms=("RS256", "ES256"))
    )


def test_valid_token_maps_claims(verifier: OIDCVerifier) -> None:
    token = mint(roles=["user", "ml-engineer", "wizard"], team="red", preferred_username="Alice Ω")
    p, claims = verifier.verify(token)
    assert p.id == "oidc:alice"
    assert p.name == "Alice Ω"
    assert p.roles == {Role.USER, Role.ML_ENGINEER}  # unknown roles are ignored
    assert p.team == "red"
    assert claims["sub"] == "alice"


def test_space_separated_roles_and_ec_key(verifier: OIDCVerifier) -> None:
    p, _ = verifier.verify(mint(EC_KEY, "e1", "ES256", roles="viewer auditor"))
    assert p.roles == {Role.VIEWER, Role.AUDITOR}


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"nbf": int(time.time()) + 3600}, "not_yet_valid"),
        ({"iss": "https://evil.example"}, "bad_issuer"),
        ({"aud": "someone-else"}, "bad_audience"),
        ({"exp": None}, "missing_claim"),
        ({"sub": None}, "missing_claim"),
        ({"sub": ""}, "invalid"),
        ({"sub": "a\x00b"}, "invalid"),
        ({"team": "t" * 1000}, "invalid"),
        ({"roles": {"admin": True}}, "invalid"),
    ],
)
def test_bad_claims_refused(verifier: OIDCVerifier, claims: dict[str, Any], reason: str) -> None:
    with pytest.raises(TokenError) as ei:
        verifier.verify(mint(**claims))
    assert ei.value.reason == reason
    assert isinstance(ei.value, AuthenticationError)


def test_leeway_accepts_small_skew(jwks_file: Path) -> None:
    v = OIDCVerifier(OIDCConfig(issuer=ISS, audience=AUD, jwks_file=jwks_file, leeway_seconds=60))
    v.verify(mint(exp=int(time.time()) - 30))
    with pytest.raises(TokenError, match="expired"):
        v.verify(mint(exp=int(time.time()) - 120))


def test_forged_signature_refused(verifier: OIDCVerifier) -> None:
    with pytest.raises(TokenError) as ei:
        verifier.verify(mint(RSA_KEY2, "k1"))
    assert ei.value.reason == "bad_signature"
    token = mint()
    head, body, sig = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=="))
    payload["roles"] = ["admin"]
    forged_body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenError, match="signature"):
        verifier.verify(f"{head}.{forged_body}.{sig}")


def b64(d: dict[str, Any] | bytes) -> str:
    raw = d if isinstance(d, bytes) else json.dumps(d).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_alg_none_refused(verifier: OIDCVerifier) -> None:
    now = int(time.time())
    token = (
        f"{b64({'alg': 'none', 'kid': 'k1'})}.{b64({'iss': ISS, 'aud': AUD, 'sub': 'x', 'exp': now + 60})}."
    )
    with pytest.raises(TokenError) as ei:
        verifier.verify(token)
    assert ei.value.reason == "alg_not_allowed"


def test_hs_rs_confusion_refused(verifier: OIDCVerifier) -> None:
    pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    signing_input = f"{b64({'alg': 'HS256', 'kid': 'k1', 'typ': 'JWT'})}.{b64({'iss': ISS, 'aud': AUD, 'sub': 'x', 'exp': now + 60, 'roles': ['admin']})}"
    sig = b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())
    with pytest.raises(TokenError) as ei:
        verifier.verify(f"{signing_input}.{sig}")
    assert ei.value.reason == "alg_not_allowed"


def test_alg_not_matching_key_type_refused(verifier: OIDCVerifier) -> None:
    # ES256 token whose header names the RSA key id
    with pytest.raises(TokenError) as ei:
        verifier.verify(mint(EC_KEY, "k1", "ES256"))
    assert ei.value.reason == "key_mismatch"


def test_symmetric_keys_in_jwks_are_ignored(tmp_path: Path) -> None:
    f = tmp_path / "jwks.json"
    f.write_text(json.dumps(jwks({"kty": "oct", "kid": "k1", "k": b64(b"secret")})))
    v = OIDCVerifier(OIDCConfig(issuer=ISS, audience=AUD, jwks_file=f))
    with pytest.raises(TokenError) as ei:
        v.verify(mint())
    assert ei.value.reason == "jwks_unavailable"


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "x" * 20000, "\u00e9.\u00e9.\u00e9", "eyJ.eyJ."])
def test_malformed_tokens(verifier: OIDCVerifier, token: str) -> None:
    with pytest.raises(TokenError):
        verifier.verify(token)


def test_config_refuses_symmetric_algorithms(jwks_file: Path) -> None:
    with pytest.raises(InputError):
        OIDCConfig(issuer=ISS, audience=AUD, jwks_file=jwks_file, algorithms=("HS256",))
    with pytest.raises(InputError):
        OIDCConfig(issuer=ISS, audience=AUD, jwks_file=jwks_file, algorithms=("none",))
    with pytest.raises(InputError):
        OIDCConfig(issuer=ISS, audience=AUD)


def test_token_without_kid_uses_single_key(tmp_path: Path) -> None:
    f = tmp_path / "jwks.json"
    f.write_text(json.dumps(jwks(jwk_of(RSA_KEY, "k1"))))
    v = OIDCVerifier(OIDCConfig(issuer=ISS, audience=AUD, jwks_file=f))
    assert v.verify(mint(kid=None))[0].id == "oidc:alice"


# -- JWKS over HTTP, key rotation, rate limit ----------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_rotation_refetches_unknown_kid_with_rate_limit() -> None:
    published = {"doc": jwks(jwk_of(RSA_KEY, "k1"))}
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(200, json=published["doc"])

    cfg = OIDCConfig(
        issuer=ISS, audience=AUD, jwks_url="https://idp.example.test/jwks", refetch_min_interval_s=30
    )
    clock = FakeClock()
    v = OIDCVerifier(cfg, jwks=JWKSCache(cfg, transport=httpx.MockTransport(handler), clock=clock))
    v.verify(mint())
    v.verify(mint())
    assert len(calls) == 1  # cached
    # the IdP rotates to k2; a token with k2 triggers one refetch
    published["doc"] = jwks(jwk_of(RSA_KEY, "k1"), jwk_of(RSA_KEY2, "k2"))
    clock.t += 31
    v.verify(mint(RSA_KEY2, "k2"))
    assert len(calls) == 2
    # garbage kids do not make us hammer the IdP
    for i in range(20):
        with pytest.raises(TokenError, match="does not publish"):
            v.verify(mint(RSA_KEY2, f"nope{i}"))
    assert len(calls) == 2
    clock.t += 31
    with pytest.raises(TokenError):
        v.verify(mint(RSA_KEY2, "nope"))
    assert len(calls) == 3


def test_jwks_outage_keeps_last_good_keys_and_fails_closed_without() -> None:
    state = {"up": True}

    def handler(request: httpx.Request) -> httpx.Response:
        if not state["up"]:
            return httpx.Response(503)
        return httpx.Response(200, json=jwks(jwk_of(RSA_KEY, "k1")))

    cfg = OIDCConfig(issuer=ISS, audience=AUD, jwks_url="https://idp.example.test/jwks", max_age_s=60)
    clock = FakeClock()
    transport = httpx.MockTransport(handler)
    v = OIDCVerifier(cfg, jwks=JWKSCache(cfg, transport=transport, clock=clock))
    v.verify(mint())
    state["up"] = False
    clock.t += 120  # stale: refresh fails, old keys stay
    v.verify(mint())
    fresh = OIDCVerifier(cfg, jwks=JWKSCache(cfg, transport=transport, clock=clock))
    with pytest.raises(TokenError) as ei:
        fresh.verify(mint())
    assert ei.value.reason == "jwks_unavailable"


def test_oversized_jwks_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"{" + b" " * (2 * 1024 * 1024) + b"}")

    cfg = OIDCConfig(issuer=ISS, audience=AUD, jwks_url="https://idp.example.test/jwks")
    v = OIDCVerifier(cfg, jwks=JWKSCache(cfg, transport=httpx.MockTransport(handler)))
    with pytest.raises(TokenError, match="could not be loaded"):
        v.verify(mint())


@pytest.fixture
def jwks_server() -> Iterator[str]:
    body = json.dumps(jwks(jwk_of(RSA_KEY, "k1"))).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_jwks_from_real_http_server(jwks_server: str) -> None:
    v = OIDCVerifier(OIDCConfig(issuer=ISS, audience=AUD, jwks_url=jwks_server))
    p, _ = v.verify(mint(roles=["admin"]))
    assert p.roles == {Role.ADMIN}
