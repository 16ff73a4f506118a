"""Identity use-cases: principals, API keys, authentication (API key and OIDC), bootstrap.

Every authentication success and failure, and every administrative change, is an audit event.
Admin changes are recorded right after their transaction commits (never inside it: the ledger may
share the SQLite file and needs the writer lock); if recording fails the error propagates.

Key lookups are cached per process for ``cache_ttl_s`` (default 5 s; unknown key ids too), so a
hot key costs no database read per request. Revocation, rotation and principal changes made
through this service drop the affected entries at once, so they take effect immediately in this
process; another process (a second gateway replica) sees them within ``cache_ttl_s``.
``last_used_at`` and key usage rows are written at most once per ``last_used_resolution_s`` per
key (per key/operation/model for usage), so the hot path does not write on every call.

The credential checks are in :mod:`bastion.services.authentication`, the key cache in
:mod:`bastion.services.key_cache`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from bastion.config import AuthSettings
from bastion.domain.access import Operation
from bastion.domain.events import AuditEvent, EventTag, JSONValue
from bastion.domain.identity import Authentication, KeyScope, PrincipalKind, Role
from bastion.errors import InputError, NotFoundError, StoreError
from bastion.identity.apikeys import DEFAULT_PREFIX, generate_key, is_key_id
from bastion.identity.oidc import OIDCConfig, OIDCVerifier
from bastion.identity.records import (
    ApiKeyRecord,
    KeyUsage,
    PrincipalRecord,
    parse_roles,
    validate_attributes,
    validate_scope,
    validate_text,
)

# ANONYMOUS and CredentialRejected live in authentication.py; re-exported, callers import them from here
from bastion.services.authentication import ANONYMOUS as ANONYMOUS
from bastion.services.authentication import CredentialAuthenticator
from bastion.services.authentication import CredentialRejected as CredentialRejected
from bastion.services.key_cache import CachedKey, KeyLookupCache
from bastion.store.engine import READ_ONLY
from bastion.store.identity_repo import IdentityRepository

SYSTEM_ACTOR = "system"
BOOTSTRAP_ADMIN_NAME = "admin"
_T = TypeVar("_T")


class AuditSink(Protocol):
    """Where audit events go (``bastion.services.audit.AuditLog`` fits); ``record`` blocks until durable."""

    def record(self, event: AuditEvent) -> object: ...


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key and its token. The token is shown once and exists nowhere else."""

    key: ApiKeyRecord
    token: str
    principal: PrincipalRecord

    def __repr__(self) -> str:
        return f"CreatedKey(key_id={self.key.key_id!r}, principal={self.principal.id!r}, token='***')"


_UNSET: object = object()


def _role_names(roles: Iterable[Role]) -> list[JSONValue]:
    return [r.value for r in sorted(roles)]


class IdentityService:
    """Principals, API keys and authentication over one database engine."""

    def __init__(
        self,
        engine: Engine,
        audit: AuditSink,
        *,
        key_prefix: str = DEFAULT_PREFIX,
        oidc: OIDCVerifier | None = None,
        cache_ttl_s: float = 5.0,
        last_used_resolution_s: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # Reads begin deferred on SQLite, so a key lookup never waits on the ledger writer's lock.
        self._read_sessions = sessionmaker(
            engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )
        self._audit = audit
        self._prefix = key_prefix
        self._oidc = oidc
        self._now = clock
        self._keys = KeyLookupCache(
            ttl_s=cache_ttl_s, resolution_s=last_used_resolution_s, monotonic=monotonic
        )
        self._credentials = CredentialAuthenticator(
            key_prefix=key_prefix,
            oidc=oidc,
            clock=clock,
            emit=self._emit,
            lookup=self._lookup,
            touch=self._touch,
            get_principal=self.get_principal,
            peek=self._keys.peek,
            touch_due=lambda kid: self._keys.is_due(("last_used", kid)),
        )

    @classmethod
    def from_settings(cls, engine: Engine, audit: AuditSink, auth: AuthSettings) -> IdentityService:
        """Build from the ``auth`` section of bastion.yaml."""
        oidc = None
        if auth.oidc is not None:
            o = auth.oidc
            oidc = OIDCVerifier(
                OIDCConfig(
                    issuer=o.issuer,
                    audience=o.audience,
                    jwks_url=o.jwks_url,
                    jwks_file=o.jwks_file,
                    algorithms=tuple(o.algorithms),
                    leeway_seconds=o.leeway_seconds,
                    role_claim=o.role_claim,
                    team_claim=o.team_claim,
                )
            )
        return cls(
            engine,
            audit,
            key_prefix=auth.api_key_prefix,
            oidc=oidc,
            cache_ttl_s=auth.key_cache_ttl_s,
            last_used_resolution_s=auth.last_used_resolution_s,
        )

    # -- transactions and audit ------------------------------------------------------------------

    def _run(self, fn: Callable[[IdentityRepository], _T]) -> _T:
        try:
            with self._sessions.begin() as s:
                return fn(IdentityRepository(s))
        except IntegrityError as e:
            raise InputError("the change conflicts with existing data (a duplicate name or id)") from e
        except SQLAlchemyError as e:
            raise StoreError(f"identity store failed: {type(e).__name__}") from e

    def _read(self, fn: Callable[[IdentityRepository], _T]) -> _T:
        try:
            with self._read_sessions() as s:
                return fn(IdentityRepository(s))
        except SQLAlchemyError as e:
            raise StoreError(f"identity store failed: {type(e).__name__}") from e

    def _emit(
        self, tag: EventTag, actor: str, target: str, outcome: str = "success", **attrs: JSONValue
    ) -> None:
        self._audit.record(AuditEvent(tag=tag, actor=actor, target=target, outcome=outcome, attributes=attrs))

    # -- principals ------------------------------------------------------------------------------

    def create_principal(
        self,
        name: str,
        *,
        kind: PrincipalKind = PrincipalKind.USER,
        roles: Iterable[str | Role] = (),
        team: str | None = None,
        attributes: Mapping[str, str] | None = None,
        actor: str = SYSTEM_ACTOR,
    ) -> PrincipalRecord:
        """Create a user, service account or team. Names are unique."""
        now = self._now()
        rec = PrincipalRecord(
            id=f"p_{uuid.uuid4().hex[:20]}",
            kind=PrincipalKind(kind),
            name=validate_text(name, "principal name"),
            roles=parse_roles(roles),
            team=validate_text(team, "team") if team is not None else None,
            attributes=validate_attributes(attributes),
            disabled=False,
            created_at=now,
            updated_at=now,
        )
        self._run(lambda r: r.add_principal(rec))
        self._emit(
            EventTag.PRINCIPAL_CREATED, actor, rec.id, kind=rec.kind.value, roles=_role_names(rec.roles)
        )
        return rec

    def get_principal(self, ref: str) -> PrincipalRecord:
        """A principal by id or by name; :class:`NotFoundError` if neither matches."""
        rec = self._read(lambda r: r.get_principal(ref) or r.get_principal_by_name(ref))
        if rec is None:
            raise NotFoundError(f"no principal with id or name {ref!r}")
        return rec

    def list_principals(self, *, include_disabled: bool = True) -> list[PrincipalRecord]:
        out: list[PrincipalRecord] = self._read(lambda r: r.list_principals())
        return [p for p in out if include_disabled or not p.disabled]

    def update_principal(
        self,
        ref: str,
        *,
        roles: Iterable[str | Role] | None = None,
        team: str | object | None = _UNSET,
        attributes: Mapping[str, str] | None = None,
        disabled: bool | None = None,
        actor: str = SYSTEM_ACTOR,
    ) -> PrincipalRecord:
        """Change roles, team, attributes or the disabled flag; takes effect at once in this process."""
        current = self.get_principal(ref)
        new = replace(
            current,
            roles=parse_roles(roles) if roles is not None else current.roles,
            team=current.team
            if team is _UNSET
            else (validate_text(team, "team") if team is not None else None),
            attributes=validate_attributes(attributes) if attributes is not None else current.attributes,
            disabled=current.disabled if disabled is None else bool(disabled),
            updated_at=self._now(),
            version=current.version + 1,
        )
        self._run(lambda r: r.save_principal(new))
        self._keys.drop_principal(new.id)
        changed: list[JSONValue] = [
            f for f in ("roles", "team", "attributes", "disabled") if getattr(new, f) != getattr(current, f)
        ]
        tag = (
            EventTag.PRINCIPAL_DISABLED
            if new.disabled and not current.disabled
            else EventTag.PRINCIPAL_UPDATED
        )
        self._emit(tag, actor, new.id, changed=changed, roles=_role_names(new.roles))
        return new

    # -- keys ------------------------------------------------------------------------------------

    def create_key(
        self,
        principal: str,
        *,
        name: str,
        expires_in: timedelta | None = None,
        scope: KeyScope = KeyScope(),
        actor: str = SYSTEM_ACTOR,
        _rotated_from: str | None = None,
    ) -> CreatedKey:
        """A new API key for ``principal`` (id or name). The returned token is the only copy of the secret."""
        owner = self.get_principal(principal)
        if owner.kind is PrincipalKind.TEAM:
            raise InputError("teams cannot hold API keys; create a service account in the team instead")
        if expires_in is not None and expires_in <= timedelta(0):
            raise InputError("key expiry must be in the future")
        now = self._now()
        new = generate_key(self._prefix)
        rec = ApiKeyRecord(
            key_id=new.key_id,
            principal_id=owner.id,
            name=validate_text(name, "key name"),
            secret_hash=new.secret_hash,
            created_at=now,
            expires_at=now + expires_in if expires_in is not None else None,
            scope=validate_scope(scope),
            rotated_from=_rotated_from,
        )
        self._run(lambda r: r.add_key(rec))
        self._keys.drop(rec.key_id)
        if _rotated_from is None:
            self._emit(EventTag.APIKEY_CREATED, actor, rec.key_id, principal=owner.id, name=rec.name)
        return CreatedKey(key=rec, token=new.token, principal=owner)

    def get_key(self, key_id: str) -> ApiKeyRecord:
        rec = self._read(lambda r: r.get_key(key_id)) if is_key_id(key_id) else None
        if rec is None:
            raise NotFoundError(f"no API key with id {key_id!r}")
        return rec

    def list_keys(self, principal: str | None = None, *, include_revoked: bool = False) -> list[ApiKeyRecord]:
        """Keys (all, or one principal's by id or name); never their secrets."""
        pid = self.get_principal(principal).id if principal is not None else None
        out: list[ApiKeyRecord] = self._read(lambda r: r.list_keys(pid, include_revoked=include_revoked))
        return out

    def revoke_key(self, key_id: str, *, actor: str = SYSTEM_ACTOR, reason: str = "revoked") -> ApiKeyRecord:
        """Revoke at once (this process immediately, others within the cache TTL)."""
        reason = validate_text(reason, "revocation reason", max_chars=64)
        self.get_key(key_id)
        now = self._now()
        changed = self._run(lambda r: r.revoke_key(key_id, now, reason))
        self._keys.drop(key_id)
        if not changed:
            raise InputError(f"API key {key_id} is already revoked")
        self._emit(EventTag.APIKEY_REVOKED, actor, key_id, reason=reason)
        return self.get_key(key_id)

    def rotate_key(
        self, key_id: str, *, overlap: timedelta = timedelta(0), actor: str = SYSTEM_ACTOR
    ) -> CreatedKey:
        """A new secret for the same principal, name and scope. The old key is revoked now, or, with an
        ``overlap``, keeps working until then (its expiry is moved forward to now + overlap, never later)."""
        old = self.get_key(key_id)
        now = self._now()
        if old.revoked or old.is_expired(now):
            raise InputError(f"API key {key_id} is revoked or expired; create a new key instead")
        if overlap < timedelta(0):
            raise InputError("rotation overlap must not be negative")
        lifetime = old.expires_at - old.created_at if old.expires_at is not None else None
        created = self.create_key(
            old.principal_id,
            name=old.name,
            expires_in=lifetime,
            scope=old.scope,
            actor=actor,
            _rotated_from=key_id,
        )
        if overlap == timedelta(0):
            self._run(lambda r: r.revoke_key(key_id, now, "rotated"))
        else:
            end = now + overlap
            if old.expires_at is None or end < old.expires_at:
                self._run(lambda r: r.set_key_expiry(key_id, end))
        self._keys.drop(key_id)
        self._emit(
            EventTag.APIKEY_ROTATED,
            actor,
            key_id,
            new_key_id=created.key.key_id,
            overlap_seconds=int(overlap.total_seconds()),
        )
        return created

    def bootstrap_admin(self, *, name: str = BOOTSTRAP_ADMIN_NAME) -> CreatedKey | None:
        """On first start: create the admin principal and one key, and return it (the token is shown once).
        None when any principal already exists (two processes racing: the unique name lets one win)."""
        if self._read(lambda r: r.count_principals()):
            return None
        try:
            admin = self.create_principal(name, roles=[Role.ADMIN], actor=SYSTEM_ACTOR)
        except InputError:
            return None
        created = self.create_key(admin.id, name="bootstrap", actor=SYSTEM_ACTOR)
        self._emit(EventTag.BOOTSTRAP_COMPLETED, SYSTEM_ACTOR, admin.id, key_id=created.key.key_id)
        return created

    # -- authentication --------------------------------------------------------------------------

    def authenticate(
        self, credential: str, client_ip: str | None = None, *, record_success: bool = True
    ) -> Authentication:
        """An API key (``<prefix>_…``) or, when OIDC is configured, a JWT bearer token.

        Failures are always recorded. ``record_success=False`` is for callers that record the
        success in their own event (the gateway's one event per call names the key and method).
        """
        if isinstance(credential, str) and credential.startswith(self._prefix + "_"):
            return self.authenticate_api_key(credential, client_ip, record_success=record_success)
        if self._oidc is not None and isinstance(credential, str) and credential.count(".") == 2:
            return self.authenticate_bearer(credential, client_ip, record_success=record_success)
        return self.authenticate_api_key(credential, client_ip, record_success=record_success)

    async def aauthenticate(
        self, credential: str, client_ip: str | None = None, *, record_success: bool = True
    ) -> Authentication:
        """:meth:`authenticate` off the event loop (database lookups and ledger writes block).

        A key whose lookup is cached, that passes every check and needs no write is accepted on the
        loop (a dict lookup and a SHA-256: no thread hop); with ``record_success`` or anything else
        (a miss, a refusal, a due ``last_used_at`` write) the full check runs in a worker thread.
        """
        if not record_success and credential.startswith(self._prefix + "_"):
            auth = self._credentials.cached_api_key(credential, client_ip)
            if auth is not None:
                return auth
        return await asyncio.to_thread(
            self.authenticate, credential, client_ip, record_success=record_success
        )

    def authenticate_api_key(
        self, raw: str, client_ip: str | None = None, *, record_success: bool = True
    ) -> Authentication:
        """Check an API key: shape, hash, revocation, expiry, principal, source IP. Records the outcome."""
        return self._credentials.authenticate_api_key(raw, client_ip, record_success=record_success)

    def authenticate_bearer(
        self, token: str, client_ip: str | None = None, *, record_success: bool = True
    ) -> Authentication:
        """Verify an OIDC bearer token (issuer, audience, expiry, signature against the JWKS)."""
        return self._credentials.authenticate_bearer(token, client_ip, record_success=record_success)

    def authenticate_certificate_principal(
        self, principal_id: str | None, client_ip: str | None = None, *, record_success: bool = True
    ) -> Authentication:
        """mTLS: the service principal a verified client certificate was mapped to (``None``: unmapped).

        Only enabled service principals may authenticate this way; every refusal is recorded.
        """
        return self._credentials.authenticate_certificate_principal(
            principal_id, client_ip, record_success=record_success
        )

    def record_use(self, auth: Authentication, operation: Operation, model: str | None = None) -> None:
        """Note that an API key was used for ``operation`` (on ``model``), for access reviews.
        Written at most once per resolution per (key, operation, model)."""
        if auth.key_id is None:
            return
        slot = (auth.key_id, operation.value, model or "")
        if not self._keys.due(slot):
            return
        now = self._now()
        self._run(lambda r: r.record_usage(auth.key_id or "", operation.value, (model or "")[:200], now))

    def key_usage(self, key_ids: Iterable[str] | None = None) -> list[KeyUsage]:
        """Recorded (key, operation, model) usage, for access reviews."""
        ids = list(key_ids) if key_ids is not None else None
        return self._read(lambda r: r.usage(ids))

    # -- cache -----------------------------------------------------------------------------------

    def _lookup(self, key_id: str) -> CachedKey:
        def load(r: IdentityRepository) -> tuple[ApiKeyRecord | None, PrincipalRecord | None]:
            k = r.get_key(key_id)
            return k, (r.get_principal(k.principal_id) if k else None)

        return self._keys.lookup(key_id, lambda: self._read(load))

    def invalidate_cache(self) -> None:
        """Forget every cached key (e.g. on a signal from another replica)."""
        self._keys.clear()

    def _touch(self, key_id: str, at: datetime) -> None:
        if self._keys.due(("last_used", key_id)):
            self._run(lambda r: r.touch_keys([(key_id, at)]))
