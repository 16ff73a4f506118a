"""Test doubles for the Authorizer and AuditSink protocols."""

from __future__ import annotations

from dataclasses import dataclass, field

from bastion.domain.access import Decision, Operation, Resource
from bastion.domain.events import AuditEvent
from bastion.domain.identity import Principal, PrincipalKind, Role


@dataclass
class RecordingAudit:
    """Keeps every event; can be told to fail."""

    events: list[AuditEvent] = field(default_factory=list)
    fail: bool = False

    def record(self, event: AuditEvent) -> int:
        if self.fail:
            raise RuntimeError("ledger unavailable")
        self.events.append(event)
        return len(self.events)

    def tags(self) -> list[str]:
        return [e.tag.value for e in self.events]


class RoleAuthorizer:
    """The issue's rules: security-admin rotates/destroys/erases; the gateway service wraps/unwraps."""

    def is_authorized(self, principal: Principal, operation: Operation, resource: Resource) -> Decision:
        if operation in (Operation.KMS_WRAP, Operation.KMS_UNWRAP):
            ok = principal.attributes.get("service") == "gateway"
        elif operation in (Operation.KMS_ROTATE, Operation.KMS_DESTROY, Operation.CONTENT_ERASE):
            ok = Role.SECURITY_ADMIN in principal.roles
        else:
            ok = False
        return Decision(ok, ("fake",), () if ok else ("denied by the fake policy",))


GATEWAY = Principal("svc-gateway", PrincipalKind.SERVICE, "gateway", attributes={"service": "gateway"})
SECADMIN = Principal("alice", PrincipalKind.USER, "Alice", roles=frozenset({Role.SECURITY_ADMIN}))
VIEWER = Principal("bob", PrincipalKind.USER, "Bob", roles=frozenset({Role.VIEWER}))
