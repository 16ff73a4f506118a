"""Credential checks for :class:`~bastion.services.identity.IdentityService`: API keys (through the
key cache), OIDC bearer tokens and mTLS service principals.

Every failure is an audit event; a success is one too unless the caller records it in its own
event (``record_success=False``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from bastion.domain.events import EventTag, JSONValue
from bastion.domain.identity import Authentication, AuthMethod, PrincipalKind
from bastion.errors import AuthenticationError, NotFoundError
from bastion.identity.apikeys import MalformedKeyError, ParsedApiKey, parse_key, verify_secret
from bastion.identity.oidc import OIDCVerifier, TokenError
from bastion.identity.records import PrincipalRecord, ip_allowed
from bastion.services.key_cache import CachedKey

ANONYMOUS = "anonymous"
_GRANTED_MAX = 50_000


class CredentialRejected(AuthenticationError):
    """Authentication failed. ``reason`` is the stable word recorded in the ledger."""

    def __init__(self, reason: str, message: str, *, key_id: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.key_id = key_id


class AuditEmitter(Protocol):
    """Records one audit event (``IdentityService._emit``)."""

    def __call__(
        self, tag: EventTag, actor: str, target: str, outcome: str = "success", **attrs: JSONValue
    ) -> None: ...


class CredentialAuthenticator:
    """Checks API keys, bearer tokens and certificate-mapped principals, recording each outcome."""

    def __init__(
        self,
        *,
        key_prefix: str,
        oidc: OIDCVerifier | None,
        clock: Callable[[], datetime],
        emit: AuditEmitter,
        lookup: Callable[[str], CachedKey],
        touch: Callable[[str, datetime], None],
        get_principal: Callable[[str], PrincipalRecord],
        peek: Callable[[str], CachedKey | None] | None = None,
        touch_due: Callable[[str], bool] | None = None,
    ) -> None:
        self._prefix = key_prefix
        self._oidc = oidc
        self._now = clock
        self._emit = emit
        self._lookup = lookup
        self._touch = touch
        self._get_principal = get_principal
        self._peek = peek
        self._touch_due = touch_due
        #: per key id, the entry last verified and the Authentication built from it
        self._granted: dict[str, tuple[CachedKey, Authentication]] = {}

    def authenticate_api_key(
        self, raw: str, client_ip: str | None = None, *, record_success: bool = True
    ) -> Authentication:
        """Check an API key: shape, hash, revocation, expiry, principal, source IP. Records the outcome."""
        try:
            auth = self._check_api_key(raw, client_ip)
        except CredentialRejected as e:
            self._emit(
                EventTag.AUTHN_FAILED,
                ANONYMOUS,
                e.key_id or "",
                "failure",
                method=AuthMethod.API_KEY.value,
                reason=e.reason,
                client_ip=client_ip,
            )
            raise
        if record_success:
            self._emit(
                EventTag.AUTHN_SUCCEEDED,
                auth.principal.id,
                auth.key_id or "",
                method=AuthMethod.API_KEY.value,
                key_id=auth.key_id,
            )
        return auth

    def cached_api_key(self, raw: str, client_ip: str | None = None) -> Authentication | None:
        """The key's authentication when it needs no I/O: a fresh cached lookup, every check passed
        and no ``last_used_at`` write due. None otherwise, and then the caller runs
        :meth:`authenticate_api_key` (in a worker thread), which repeats the checks, loads what is
        missing and records a refusal. Nothing is recorded here: the caller records the success."""
        if self._peek is None or self._touch_due is None:
            return None
        try:
            parsed = parse_key(raw, self._prefix)
        except MalformedKeyError:
            return None
        entry = self._peek(parsed.key_id)
        if entry is None or self._touch_due(parsed.key_id):
            return None
        try:
            return self._verify(parsed, entry, client_ip, self._now())
        except CredentialRejected:
            return None

    def _check_api_key(self, raw: str, client_ip: str | None) -> Authentication:
        try:
            parsed = parse_key(raw, self._prefix)
        except MalformedKeyError as e:
            raise CredentialRejected("malformed", "invalid API key") from e
        entry = self._lookup(parsed.key_id)
        now = self._now()
        auth = self._verify(parsed, entry, client_ip, now)
        self._touch(parsed.key_id, now)
        return auth

    def _verify(
        self, parsed: ParsedApiKey, entry: CachedKey, client_ip: str | None, now: datetime
    ) -> Authentication:
        """Every check of a key against its looked-up record; raises :class:`CredentialRejected`.

        The checks run on every call; the :class:`Authentication` they grant depends only on the
        looked-up entry, so it is built once per entry (a reloaded or invalidated entry is a new
        object and gets a new one) and the same object is handed out while the entry lives."""
        kid = parsed.key_id
        key, owner = entry.key, entry.principal
        if key is None or owner is None:
            raise CredentialRejected("unknown_key", "invalid API key", key_id=kid)
        if not verify_secret(parsed, key.secret_hash):
            raise CredentialRejected("bad_secret", "invalid API key", key_id=kid)
        if key.revoked:
            raise CredentialRejected("revoked", "API key has been revoked", key_id=kid)
        if key.is_expired(now):
            raise CredentialRejected("expired", "API key has expired", key_id=kid)
        if owner.disabled:
            raise CredentialRejected("principal_disabled", "the key's principal is disabled", key_id=kid)
        if not ip_allowed(client_ip, key.scope.source_cidrs):
            raise CredentialRejected(
                "ip_not_allowed", "API key may not be used from this address", key_id=kid
            )
        granted = self._granted.get(kid)
        if granted is not None and granted[0] is entry:
            return granted[1]
        auth = Authentication(
            principal=owner.to_principal(),
            method=AuthMethod.API_KEY,
            key_id=kid,
            scope=key.scope,
            expires_at=key.expires_at,
        )
        if len(self._granted) >= _GRANTED_MAX:
            self._granted.clear()
        self._granted[kid] = (entry, auth)
        return auth

    def authenticate_bearer(
        self, token: str, client_ip: str | None = None, *, record_success: bool = True
    ) -> Authentication:
        """Verify an OIDC bearer token (issuer, audience, expiry, signature against the JWKS)."""
        try:
            if self._oidc is None:
                raise CredentialRejected(
                    "oidc_disabled", "bearer tokens are not accepted (auth.oidc is not set)"
                )
            try:
                principal, claims = self._oidc.verify(token)
            except TokenError as e:
                raise CredentialRejected(f"bad_token:{e.reason}", f"invalid bearer token: {e.message}") from e
        except CredentialRejected as e:
            self._emit(
                EventTag.AUTHN_FAILED, ANONYMOUS, "", "failure", method=AuthMethod.OIDC.value, reason=e.reason,
                client_ip=client_ip,
            )  # fmt: skip
            raise
        exp = claims.get("exp")
        if record_success:
            self._emit(EventTag.AUTHN_SUCCEEDED, principal.id, principal.id, method=AuthMethod.OIDC.value)
        return Authentication(
            principal=principal,
            method=AuthMethod.OIDC,
            expires_at=datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float) else None,
        )

    def authenticate_certificate_principal(
        self, principal_id: str | None, client_ip: str | None = None, *, record_success: bool = True
    ) -> Authentication:
        """mTLS: the service principal a verified client certificate was mapped to (``None``: unmapped).

        Only enabled service principals may authenticate this way; every refusal is recorded.
        """
        try:
            if principal_id is None:
                raise CredentialRejected("unknown_certificate", "the client certificate maps to no principal")
            try:
                rec = self._get_principal(principal_id)
            except NotFoundError:
                raise CredentialRejected("unknown_principal", "the mapped principal does not exist") from None
            if rec.kind is not PrincipalKind.SERVICE:
                raise CredentialRejected(
                    "not_a_service", "client certificates authenticate service principals only"
                )
            if rec.disabled:
                raise CredentialRejected("principal_disabled", "the principal is disabled")
        except CredentialRejected as e:
            self._emit(
                EventTag.AUTHN_FAILED, ANONYMOUS, principal_id or "", "failure", method=AuthMethod.MTLS.value,
                reason=e.reason, client_ip=client_ip,
            )  # fmt: skip
            raise
        if record_success:
            self._emit(EventTag.AUTHN_SUCCEEDED, rec.id, rec.id, method=AuthMethod.MTLS.value)
        return Authentication(principal=rec.to_principal(), method=AuthMethod.MTLS)
