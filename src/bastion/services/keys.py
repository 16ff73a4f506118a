"""Key management use-cases: every key use authorised by the policy engine and recorded in the ledger.

:class:`KeyService` wraps a :class:`~bastion.crypto.keys.interface.KeyProvider`. Before each
operation it asks an :class:`Authorizer` (Cedar in production: only security-admin may rotate or
destroy; the gateway service principal may only wrap/unwrap) and after it records an audit event
(``crypto:key:used``, ``…:created``, ``…:rotated``, ``…:destroyed``, ``…:overdue``). A denied
request is recorded too, then raises :class:`~bastion.errors.AuthorizationError`. Audit failures
propagate: a key use that cannot be recorded does not happen silently.

:meth:`KeyService.provider_for` gives an object with the provider's interface whose calls go through
the service, so engines (the streaming file format, the content vault) stay unaware of policy.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bastion.config import Settings
from bastion.crypto.keys.interface import (
    KeyInfo,
    KeyProvider,
    ProviderHealth,
    WrappedKey,
    key_providers,
    load_builtin_providers,
)
from bastion.domain.access import Decision, Operation, Resource
from bastion.domain.events import AuditEvent, EventTag
from bastion.domain.identity import Principal, PrincipalKind, Role
from bastion.errors import AuthorizationError, ConfigError

#: The actor recorded for scheduled checks.
SYSTEM_ACTOR = "system"


class Authorizer(Protocol):
    """The slice of the policy engine key management needs."""

    def is_authorized(self, principal: Principal, operation: Operation, resource: Resource) -> Decision: ...


class AuditSink(Protocol):
    """Where audit events go (the ledger's ``AuditLog``); ``record`` blocks until durable."""

    def record(self, event: AuditEvent) -> object: ...


class TrustedLocalOperator:
    """Authorizer for the local CLI: allows everything.

    A process that holds the provider credentials (keyring passphrase, HSM PIN, Vault token) can
    use the keys directly; checking policy inside it would be theatre. Every use is still
    recorded. Network-facing services (gateway, admin API) must use the Cedar authorizer instead.
    """

    def is_authorized(self, principal: Principal, operation: Operation, resource: Resource) -> Decision:
        return Decision(True, ("local-operator",), ("the local operator holds the provider credentials",))


def local_operator() -> Principal:
    """The principal recorded for CLI key operations (named after the OS user)."""
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or "unknown"
    return Principal(
        id=f"cli:{user}", kind=PrincipalKind.USER, name=user, roles=frozenset({Role.SECURITY_ADMIN})
    )


def digest(value: str) -> str:
    """SHA-256 hex of ``value``: how object ids and subjects appear in audit events."""
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class OverdueKey:
    """A KEK whose active version is older than its rotation period."""

    key_id: str
    version: int
    created_at: datetime
    due_at: datetime


class KeyService:
    """Authorised, audited access to one key provider."""

    def __init__(
        self,
        provider: KeyProvider,
        authorizer: Authorizer,
        audit: AuditSink,
        *,
        rotation_days: int = 90,
        rotation_overrides: Mapping[str, int] | None = None,
    ) -> None:
        self.provider = provider
        self.authorizer = authorizer
        self.audit = audit
        self.rotation_days = rotation_days
        self.rotation_overrides = dict(rotation_overrides or {})

    # -- policy and audit ----------------------------------------------------------------------

    def authorize(
        self, principal: Principal, operation: Operation, resource: Resource, tag: EventTag
    ) -> None:
        """Raise :class:`AuthorizationError` (after recording the denial) unless allowed."""
        decision = self.authorizer.is_authorized(principal, operation, resource)
        if decision.allowed:
            return
        self.audit.record(
            AuditEvent(
                tag,
                principal.id,
                f"{resource.type}:{resource.id}",
                outcome="denied",
                attributes={"operation": operation.value, "policies": list(decision.policies)},
            )
        )
        why = "; ".join(decision.reasons) or "no policy permits it"
        raise AuthorizationError(
            f"{principal.id} may not {operation.value} on {resource.type} {resource.id!r}: {why}"
        )

    def _key_resource(self, key_id: str, purpose: str = "") -> Resource:
        attrs = {"provider": self.provider.name}
        if purpose:
            attrs["purpose"] = purpose
        return Resource(type="key", id=key_id, attributes=attrs)

    def _record(self, tag: EventTag, principal: Principal, key_id: str, **attrs: str | int) -> None:
        self.audit.record(
            AuditEvent(
                tag, principal.id, f"key:{key_id}", attributes={"provider": self.provider.name, **attrs}
            )
        )

    # -- data keys -----------------------------------------------------------------------------

    def wrap(
        self,
        principal: Principal,
        key_id: str,
        data_key: bytes,
        context: bytes,
        *,
        purpose: str,
        object_id: str,
    ) -> WrappedKey:
        """Wrap ``data_key`` under ``key_id`` (operation ``kms:wrap``)."""
        self.authorize(principal, Operation.KMS_WRAP, self._key_resource(key_id, purpose), EventTag.KEY_USED)
        wrapped = self.provider.wrap(key_id, data_key, context)
        self._record(
            EventTag.KEY_USED, principal, key_id, use="wrap", version=wrapped.version,
            purpose=purpose, object_sha256=digest(object_id),
        )  # fmt: skip
        return wrapped

    def unwrap(
        self, principal: Principal, wrapped: WrappedKey, context: bytes, *, purpose: str, object_id: str
    ) -> bytes:
        """Unwrap a data key (operation ``kms:unwrap``)."""
        resource = self._key_resource(wrapped.key_id, purpose)
        self.authorize(principal, Operation.KMS_UNWRAP, resource, EventTag.KEY_USED)
        data_key = self.provider.unwrap(wrapped, context)
        self._record(
            EventTag.KEY_USED, principal, wrapped.key_id, use="unwrap", version=wrapped.version,
            purpose=purpose, object_sha256=digest(object_id),
        )  # fmt: skip
        return data_key

    def provider_for(self, principal: Principal, *, purpose: str, object_id: str) -> KeyProvider:
        """A provider-shaped view whose wrap/unwrap are authorised and audited for ``principal``."""
        return _ServiceProvider(self, principal, purpose, object_id)

    # -- KEK life cycle ------------------------------------------------------------------------

    def create(self, principal: Principal, key_id: str) -> KeyInfo:
        """Create KEK ``key_id`` (operation ``kms:rotate``: creating is rotating from nothing)."""
        self.authorize(principal, Operation.KMS_ROTATE, self._key_resource(key_id), EventTag.KEY_CREATED)
        info = self.provider.create_key(key_id)
        self._record(EventTag.KEY_CREATED, principal, key_id, version=info.active.version)
        return info

    def rotate(self, principal: Principal, key_id: str) -> KeyInfo:
        """Add a new active version of ``key_id``; older versions become decrypt-only."""
        self.authorize(principal, Operation.KMS_ROTATE, self._key_resource(key_id), EventTag.KEY_ROTATED)
        info = self.provider.rotate(key_id)
        self._record(EventTag.KEY_ROTATED, principal, key_id, version=info.active.version)
        return info

    def retire(self, principal: Principal, key_id: str, below_version: int) -> KeyInfo:
        """Destroy versions of ``key_id`` below ``below_version`` (operation ``kms:destroy``)."""
        self.authorize(principal, Operation.KMS_DESTROY, self._key_resource(key_id), EventTag.KEY_DESTROYED)
        info = self.provider.retire(key_id, below_version)
        self._record(EventTag.KEY_DESTROYED, principal, key_id, below_version=below_version)
        return info

    def check(self) -> ProviderHealth:
        """The provider's live round trip."""
        return self.provider.check()

    # -- rotation schedule ---------------------------------------------------------------------

    def overdue(self, now: datetime | None = None) -> list[OverdueKey]:
        """KEKs whose active version is older than their rotation period."""
        now = now or datetime.now(UTC)
        late = []
        for info in self.provider.list_keys():
            days = self.rotation_overrides.get(info.key_id, self.rotation_days)
            due = info.active.created_at + timedelta(days=days)
            if due <= now:
                late.append(OverdueKey(info.key_id, info.active.version, info.active.created_at, due))
        return late

    def check_rotation(self, now: datetime | None = None) -> list[OverdueKey]:
        """Record a ``crypto:key:overdue`` event for every overdue KEK; return them."""
        late = self.overdue(now)
        for k in late:
            self.audit.record(
                AuditEvent(
                    EventTag.KEY_OVERDUE,
                    SYSTEM_ACTOR,
                    f"key:{k.key_id}",
                    outcome="overdue",
                    attributes={
                        "provider": self.provider.name,
                        "version": k.version,
                        "due_at": k.due_at.isoformat(),
                    },
                )
            )
        return late


class _ServiceProvider:
    """A KeyProvider view of a KeyService bound to one principal, purpose and object."""

    def __init__(self, service: KeyService, principal: Principal, purpose: str, object_id: str) -> None:
        self._s = service
        self._p = principal
        self._purpose = purpose
        self._object_id = object_id
        self.name = service.provider.name

    def wrap(self, key_id: str, data_key: bytes, context: bytes) -> WrappedKey:
        return self._s.wrap(
            self._p, key_id, data_key, context, purpose=self._purpose, object_id=self._object_id
        )

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        return self._s.unwrap(self._p, wrapped, context, purpose=self._purpose, object_id=self._object_id)

    def create_key(self, key_id: str) -> KeyInfo:
        return self._s.create(self._p, key_id)

    def key_info(self, key_id: str) -> KeyInfo:
        return self._s.provider.key_info(key_id)

    def list_keys(self) -> list[KeyInfo]:
        return self._s.provider.list_keys()

    def rotate(self, key_id: str) -> KeyInfo:
        return self._s.rotate(self._p, key_id)

    def retire(self, key_id: str, below_version: int) -> KeyInfo:
        return self._s.retire(self._p, key_id, below_version)

    def check(self) -> ProviderHealth:
        return self._s.check()

    def close(self) -> None:
        """The service owns the provider; nothing to release here."""


def provider_from_settings(
    settings: Settings, *, env: Mapping[str, str] | None = None, passphrase: str | None = None
) -> KeyProvider:
    """Build the configured key provider (chosen by registry name); secrets come from ``env``."""
    load_builtin_providers()
    env = os.environ if env is None else env
    c = settings.crypto
    environment = settings.environment.value
    factory = key_providers.get(c.provider)
    if c.provider == "local":
        pw = passphrase if passphrase is not None else env.get(c.local.passphrase_env, "")
        return factory(c.local.path.expanduser(), pw, environment=environment, scrypt_n=c.local.scrypt_n)
    if c.provider == "pkcs11":
        return factory(
            c.pkcs11.library, c.pkcs11.token_label, env.get(c.pkcs11.pin_env, ""), environment=environment
        )
    if c.provider == "vault":
        verify: bool | str = str(c.vault.ca_file) if c.vault.ca_file else True
        return factory(
            c.vault.addr,
            env.get(c.vault.token_env, ""),
            mount_point=c.vault.mount_point,
            namespace=c.vault.namespace,
            verify=verify,
            environment=environment,
        )
    try:
        return factory(environment=environment)
    except TypeError as e:
        raise ConfigError(f"key provider {c.provider!r} cannot be built from configuration: {e}") from e
