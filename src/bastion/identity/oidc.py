"""OIDC bearer tokens: JWT verification against a JWKS (file or URL), claims to a Principal.

Security properties:

* algorithms are pinned by configuration and must be asymmetric: ``alg: none`` and every ``HS*``
  algorithm are refused before any key is looked up, so the RS/HS confusion attack (an HS256
  token "signed" with the RSA public key as the HMAC secret) cannot work;
* the key must fit the algorithm (RSA for RS/PS, EC on the right curve for ES, OKP for EdDSA)
  and, where the JWK names an ``alg`` or a ``use``, agree with it;
* issuer, audience, ``exp`` (required), ``nbf`` and ``iat`` are checked with a configurable
  clock-skew leeway;
* key rotation: the JWKS is cached; a token naming an unknown ``kid`` triggers a refetch, at most
  once per ``refetch_min_interval_s`` (so garbage tokens cannot make Bastion hammer the IdP),
  and the cache is refreshed after ``max_age_s``. If a refresh fails the last good keys stay in
  use; if no keys were ever fetched, verification fails closed.
"""

from __future__ import annotations

import json
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt

from bastion.domain.identity import Principal, PrincipalKind, Role
from bastion.errors import AuthenticationError, InputError

MAX_TOKEN_CHARS = 16 * 1024
MAX_JWKS_BYTES = 1024 * 1024
MAX_CLAIM_CHARS = 256
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


class TokenError(AuthenticationError):
    """A bearer token was refused. ``reason`` is a stable, secret-free word for the audit ledger."""

    code = "invalid_token"
    hint = "Obtain a fresh token from your identity provider; check issuer and audience in auth.oidc."

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class OIDCConfig:
    """How tokens are verified (built by services from ``auth.oidc`` in bastion.yaml)."""

    issuer: str
    audience: str
    jwks_url: str | None = None
    jwks_file: Path | None = None
    algorithms: tuple[str, ...] = ("RS256",)
    leeway_seconds: int = 30
    role_claim: str = "roles"
    team_claim: str = "team"
    refetch_min_interval_s: float = 30.0
    max_age_s: float = 3600.0
    http_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise InputError("OIDC needs exactly one of jwks_url or jwks_file")
        bad = [a for a in self.algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if bad or not self.algorithms:
            raise InputError(
                f"OIDC algorithms must be asymmetric ({sorted(ASYMMETRIC_ALGORITHMS)}); refused: {bad}"
            )
        if self.jwks_url is not None and not self.jwks_url.startswith(("https://", "http://")):
            raise InputError("OIDC jwks_url must be an http(s) URL")


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One public key from the JWKS, with its JWK members (kty, crv, alg, use)."""

    jwk: jwt.PyJWK
    members: Mapping[str, Any]


class JWKSCache:
    """The signing keys of an identity provider, cached and refreshed with a rate limit."""

    def __init__(
        self,
        config: OIDCConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cfg = config
        self._transport = transport
        self._clock = clock
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = threading.Lock()
        self.fetch_count = 0

    def key_for(self, kid: str | None) -> SigningKey:
        """The key named ``kid`` (or the only key, when the token names none); :class:`TokenError` if absent."""
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at > self._cfg.max_age_s
        if stale or self._lookup(kid) is None:
            self._refresh(now)
        key = self._lookup(kid)
        if key is None:
            if not self._keys:
                raise TokenError("jwks_unavailable", "the identity provider's keys could not be loaded")
            raise TokenError(
                "unknown_kid", "the token is signed with a key the identity provider does not publish"
            )
        return key

    def _lookup(self, kid: str | None) -> SigningKey | None:
        keys = self._keys
        if kid is None:
            return next(iter(keys.values())) if len(keys) == 1 else None
        return keys.get(kid)

    def _refresh(self, now: float) -> None:
        with self._lock:
            last = self._attempted_at
            if last is not None and now - last < self._cfg.refetch_min_interval_s:
                return  # rate limit: at most one fetch per interval, successful or not
            self._attempted_at = now
            try:
                keys = _parse_jwks(self._load())
            except TokenError:
                return  # keep the last good keys; an empty set fails closed in key_for
            self._keys = keys
            self._fetched_at = now
            self.fetch_count += 1

    def _load(self) -> Any:
        cfg = self._cfg
        if cfg.jwks_file is not None:
            try:
                raw = Path(cfg.jwks_file).read_bytes()[: MAX_JWKS_BYTES + 1]
            except OSError as e:
                raise TokenError("jwks_unavailable", f"JWKS file cannot be read: {e}") from e
        else:
            assert cfg.jwks_url is not None
            try:
                with (
                    httpx.Client(
                        timeout=cfg.http_timeout_s, transport=self._transport, follow_redirects=False
                    ) as c,
                    c.stream("GET", cfg.jwks_url, headers={"accept": "application/json"}) as r,
                ):
                    if r.status_code != 200:
                        raise TokenError("jwks_unavailable", f"JWKS URL answered HTTP {r.status_code}")
                    chunks: list[bytes] = []
                    size = 0
                    for chunk in r.iter_bytes():
                        size += len(chunk)
                        if size > MAX_JWKS_BYTES:
                            raise TokenError("jwks_unavailable", "JWKS document is too large")
                        chunks.append(chunk)
                    raw = b"".join(chunks)
            except httpx.HTTPError as e:
                raise TokenError("jwks_unavailable", f"JWKS URL cannot be fetched: {type(e).__name__}") from e
        if len(raw) > MAX_JWKS_BYTES:
            raise TokenError("jwks_unavailable", "JWKS document is too large")
        try:
            return json.loads(raw)
        except ValueError as e:
            raise TokenError("jwks_unavailable", "JWKS document is not JSON") from e


def _parse_jwks(doc: Any) -> dict[str, SigningKey]:
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise TokenError("jwks_unavailable", "JWKS document has no keys list")
    keys: dict[str, SigningKey] = {}
    for i, entry in enumerate(doc["keys"]):
        if not isinstance(entry, dict) or entry.get("kty") == "oct":
            continue  # never accept symmetric keys from a JWKS
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
            continue  # skip keys we cannot use
        kid = entry.get("kid")
        keys[kid if isinstance(kid, str) else f"#{i}"] = SigningKey(key, dict(entry))
    return keys


class OIDCVerifier:
    """Verifies bearer tokens and maps their claims to a :class:`Principal`."""

    def __init__(self, config: OIDCConfig, *, jwks: JWKSCache | None = None) -> None:
        self._cfg = config
        self._jwks = jwks if jwks is not None else JWKSCache(config)

    @property
    def config(self) -> OIDCConfig:
        return self._cfg

    def verify(self, token: str) -> tuple[Principal, Mapping[str, Any]]:
        """The principal and verified claims of ``token``; :class:`TokenError` (with ``reason``) if refused."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            raise TokenError("malformed", "bearer token is empty or too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise TokenError("malformed", "bearer token is not a JWT") from e
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._cfg.algorithms:
            raise TokenError("alg_not_allowed", f"token algorithm {str(alg)[:20]!r} is not allowed")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenError("malformed", "token kid must be a string")
        key = self._jwks.key_for(kid)
        _check_key_fits(key.members, alg)
        claims = self._decode(token, key, alg)
        return self._principal(claims), claims

    def _decode(self, token: str, key: SigningKey, alg: str) -> dict[str, Any]:
        cfg = self._cfg
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.jwk.key,
                algorithms=[alg],
                audience=cfg.audience,
                issuer=cfg.issuer,
                leeway=cfg.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"], "strict_aud": False},
            )
        except jwt.ExpiredSignatureError as e:
            raise TokenError("expired", "token has expired") from e
        except jwt.ImmatureSignatureError as e:
            raise TokenError("not_yet_valid", "token is not valid yet (nbf/iat in the future)") from e
        except jwt.InvalidAudienceError as e:
            raise TokenError("bad_audience", "token audience does not match") from e
        except jwt.InvalidIssuerError as e:
            raise TokenError("bad_issuer", "token issuer does not match") from e
        except jwt.InvalidSignatureError as e:
            raise TokenError("bad_signature", "token signature does not verify") from e
        except jwt.MissingRequiredClaimError as e:
            raise TokenError("missing_claim", f"token lacks the required claim {e.claim!r}") from e
        except (jwt.PyJWTError, ValueError, TypeError) as e:
            raise TokenError("invalid", f"token is invalid: {type(e).__name__}") from e
        return claims

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        sub = _clean_claim(claims.get("sub"), "sub")
        if sub is None:
            raise TokenError("missing_claim", "token sub must be a non-empty string")
        raw_roles = claims.get(self._cfg.role_claim, [])
        if isinstance(raw_roles, str):
            raw_roles = raw_roles.split()
        if not isinstance(raw_roles, list):
            raise TokenError("invalid", f"claim {self._cfg.role_claim!r} must be a list of role names")
        known = {r.value for r in Role}
        roles = frozenset(Role(r) for r in raw_roles if isinstance(r, str) and r in known)
        team = _clean_claim(claims.get(self._cfg.team_claim), self._cfg.team_claim)
        name = _clean_claim(claims.get("preferred_username"), "preferred_username") or sub
        return Principal(
            id=f"oidc:{sub}",
            kind=PrincipalKind.USER,
            name=name,
            roles=roles,
            team=team,
            attributes={"issuer": self._cfg.issuer},
        )


def _clean_claim(value: Any, name: str) -> str | None:
    """A claim as a bounded string without control characters (None when absent)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_CLAIM_CHARS:
        raise TokenError("invalid", f"claim {name!r} must be a string of 1 to {MAX_CLAIM_CHARS} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        raise TokenError("invalid", f"claim {name!r} contains control characters")
    return value


def _check_key_fits(data: Mapping[str, Any], alg: str) -> None:
    kty = data.get("kty")
    if data.get("use") not in (None, "sig"):
        raise TokenError("key_mismatch", "the JWK is not a signing key")
    if data.get("alg") not in (None, alg):
        raise TokenError("key_mismatch", "the token algorithm does not match the key's algorithm")
    if alg.startswith(("RS", "PS")):
        ok = kty == "RSA"
    elif alg.startswith("ES"):
        ok = kty == "EC" and data.get("crv") == _EC_CURVES[alg]
    else:
        ok = kty == "OKP"
    if not ok:
        raise TokenError("key_mismatch", "the token algorithm does not fit the key type")
