"""The seams of the gateway: small protocols for what it needs from the rest of Bastion.

The lead wires the real implementations in ``bastion.app.create_app``; tests use in-memory fakes.

* :class:`Authenticator` — turns the caller's credential (the ``Authorization: Bearer`` value: an
  API key or an OIDC token) into an :class:`~bastion.domain.identity.Authentication`, or raises
  :class:`~bastion.errors.AuthenticationError` (401) / :class:`~bastion.errors.StoreError` (503).
  It is async: a database lookup must not block the event loop.
* :class:`Authorizer` — ``bastion.authz.Authorizer`` fits as it is.
* :class:`AuditSink` — ``bastion.services.audit.AuditLog`` fits: ``arecord`` returns once durable.
* :class:`ReadinessProbe` — ``/readyz``: is the database reachable?
* :class:`UsageRecorder` — notes that a key invoked a model (access reviews); must not block.
* :class:`ContentRecorder` — stores a call's prompt and response encrypted (``crypto.record_content``)
  and returns the attributes (ciphertext digests) that go into the call's ledger event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bastion.domain.access import Decision, Operation, Resource
from bastion.domain.events import AuditEvent, JSONValue
from bastion.domain.identity import Authentication, KeyScope, Principal

if TYPE_CHECKING:
    from bastion.gateway.upstream import Upstream
    from bastion.services.guard import GuardService
    from bastion.services.limits import LimitService


class Authenticator(Protocol):
    async def authenticate(self, credential: str, client_ip: str) -> Authentication:
        """Who presents ``credential``; raise AuthenticationError when nobody valid."""
        ...

    async def authenticate_certificate(self, der: bytes, client_ip: str) -> Authentication:
        """Which service principal a verified TLS client certificate maps to (mTLS); raise
        AuthenticationError when it maps to none."""
        ...


class Authorizer(Protocol):
    def is_authorized(
        self, principal: Principal, operation: Operation, resource: Resource, *, scope: KeyScope | None = None
    ) -> Decision:
        """Allow or deny (deny by default)."""
        ...


class AuditSink(Protocol):
    async def arecord(self, event: AuditEvent) -> object:
        """Append ``event``; return only once it is durable."""
        ...


class ReadinessProbe(Protocol):
    async def ready(self) -> bool:
        """True when the database (and whatever else the gateway needs) answers."""
        ...


class UsageRecorder(Protocol):
    def record_use(self, auth: Authentication, model: str) -> None:
        """Note a successful, authorised model call. Called on the event loop: must not block."""
        ...


class ContentRecorder(Protocol):
    async def record(
        self, auth: Authentication, call_id: str, prompt: str, response: str | None
    ) -> Mapping[str, JSONValue]:
        """Seal and store the call's content; return ledger attributes (digests, never content)."""
        ...


@dataclass(frozen=True)
class GatewayComponents:
    """Everything the gateway is built from besides its settings.

    ``upstreams``, ``guards`` and ``limits`` default to what ``gateway`` settings describe; tests and
    the benchmark may inject their own.
    """

    authenticator: Authenticator
    authorizer: Authorizer
    audit: AuditSink
    readiness: ReadinessProbe | None = None
    upstreams: Mapping[str, Upstream] | None = None
    guards: GuardService | None = None
    limits: LimitService | None = None
    usage: UsageRecorder | None = None
    content: ContentRecorder | None = None
