"""Access reviews: every grant with its last use, flags for what looks stale or too broad, and the
reviewer's keep/revoke decisions recorded in the ledger (revocation takes effect at once).

Usage data comes from ``last_used_at`` on each key and the (key, operation, model) usage rows that
:meth:`IdentityService.record_use` writes at a coarse resolution. What a role could do comes from
the authorization policies (:func:`bastion.authz.authorizer.role_operations`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from bastion.authz.authorizer import Authorizer, role_operations
from bastion.domain.access import Operation
from bastion.domain.events import AuditEvent, EventTag
from bastion.domain.identity import Role
from bastion.errors import InputError
from bastion.identity.records import ApiKeyRecord, KeyUsage, PrincipalRecord, validate_text
from bastion.services.identity import AuditSink, IdentityService


class Flag(StrEnum):
    """Why a grant deserves a reviewer's attention."""

    NEVER_USED = "never_used"  # a key older than the threshold that was never used
    UNUSED = "unused"  # last used longer ago than the threshold
    EXPIRED_NOT_REVOKED = "expired_not_revoked"
    BROADER_THAN_USE = "broader_than_use"  # scope (models/operations) wider than what it was used for
    ROLE_UNEXERCISED = "role_unexercised"  # none of the role's operations appear in the usage
    DISABLED_WITH_ACTIVE_KEYS = "disabled_with_active_keys"


class ReviewDecision(StrEnum):
    KEEP = "keep"
    REVOKE = "revoke"


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """One API key under review."""

    key: ApiKeyRecord
    flags: tuple[Flag, ...]
    notes: tuple[str, ...]
    used_operations: tuple[str, ...]
    used_models: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.key.to_dict(),
            "flags": [f.value for f in self.flags],
            "notes": list(self.notes),
            "used_operations": list(self.used_operations),
            "used_models": list(self.used_models),
        }


@dataclass(frozen=True, slots=True)
class PrincipalGrant:
    """A principal's roles and keys under review."""

    principal: PrincipalRecord
    keys: tuple[KeyGrant, ...]
    flags: tuple[Flag, ...]
    notes: tuple[str, ...]
    last_used_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "principal": self.principal.to_dict(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "flags": [f.value for f in self.flags],
            "notes": list(self.notes),
            "keys": [k.to_dict() for k in self.keys],
        }


@dataclass(frozen=True, slots=True)
class AccessReview:
    """The state of every grant at ``generated_at``."""

    generated_at: datetime
    unused_days: int
    grants: tuple[PrincipalGrant, ...]

    def flagged_keys(self) -> list[KeyGrant]:
        """Every key with at least one flag."""
        return [k for g in self.grants for k in g.keys if k.flags]

    def to_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "unused_days": self.unused_days,
            "grants": [g.to_dict() for g in self.grants],
        }


class AccessReviewService:
    """Builds reviews and records decisions."""

    def __init__(
        self,
        identity: IdentityService,
        audit: AuditSink,
        *,
        authorizer: Authorizer | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._identity = identity
        self._audit = audit
        self._role_ops: Mapping[Role, frozenset[Operation]] = role_operations(authorizer or Authorizer())
        self._now = clock

    def review(self, *, unused_days: int = 90, include_revoked: bool = False) -> AccessReview:
        """Every principal with its roles and keys, flagged."""
        if unused_days < 1:
            raise InputError("unused_days must be at least 1")
        now = self._now()
        threshold = now - timedelta(days=unused_days)
        keys = self._identity.list_keys(include_revoked=include_revoked)
        usage: dict[str, list[KeyUsage]] = {}
        for u in self._identity.key_usage([k.key_id for k in keys]):
            usage.setdefault(u.key_id, []).append(u)
        by_principal: dict[str, list[ApiKeyRecord]] = {}
        for k in keys:
            by_principal.setdefault(k.principal_id, []).append(k)
        grants = []
        for p in self._identity.list_principals():
            kgrants = tuple(
                self._key_grant(p, k, usage.get(k.key_id, []), now, threshold)
                for k in by_principal.get(p.id, [])
            )
            grants.append(self._principal_grant(p, kgrants, now))
        return AccessReview(generated_at=now, unused_days=unused_days, grants=tuple(grants))

    def _key_grant(
        self, p: PrincipalRecord, k: ApiKeyRecord, usage: list[KeyUsage], now: datetime, threshold: datetime
    ) -> KeyGrant:
        flags: list[Flag] = []
        notes: list[str] = []
        if k.is_expired(now) and not k.revoked:
            flags.append(Flag.EXPIRED_NOT_REVOKED)
            notes.append("expired but not revoked; revoke it to remove it from use and from lists")
        last = max(
            [d for d in [k.last_used_at, *(u.last_used_at for u in usage)] if d is not None], default=None
        )
        if last is None and k.created_at < threshold:
            flags.append(Flag.NEVER_USED)
            notes.append(f"never used since it was created on {k.created_at.date().isoformat()}")
        elif last is not None and last < threshold:
            flags.append(Flag.UNUSED)
            notes.append(f"last used on {last.date().isoformat()}")
        used_ops = sorted({u.operation for u in usage})
        used_models = sorted({u.model for u in usage if u.model})
        broader = self._broader(p, k, used_ops, used_models)
        if broader:
            flags.append(Flag.BROADER_THAN_USE)
            notes.extend(broader)
        return KeyGrant(k, tuple(flags), tuple(notes), tuple(used_ops), tuple(used_models))

    def _broader(
        self, p: PrincipalRecord, k: ApiKeyRecord, used_ops: list[str], used_models: list[str]
    ) -> list[str]:
        if not used_ops:
            return []
        notes = []
        if used_models:
            if not k.scope.models:
                notes.append(f"allowed on all models, used only on {', '.join(used_models)}")
            elif unused := sorted(set(k.scope.models) - set(used_models)):
                notes.append(f"allowed on models never used: {', '.join(unused)}")
        allowed_ops = set(k.scope.operations) or {
            o.value for r in p.roles for o in self._role_ops.get(r, frozenset())
        }
        if unused_ops := sorted(allowed_ops - set(used_ops)):
            shown = ", ".join(unused_ops[:6]) + (" …" if len(unused_ops) > 6 else "")
            notes.append(f"allows {len(unused_ops)} operation(s) never used: {shown}")
        return notes

    def _principal_grant(
        self, p: PrincipalRecord, keys: tuple[KeyGrant, ...], now: datetime
    ) -> PrincipalGrant:
        flags: list[Flag] = []
        notes: list[str] = []
        used_ops = {op for k in keys for op in k.used_operations}
        if used_ops:
            for role in sorted(p.roles):
                ops = {o.value for o in self._role_ops.get(role, frozenset())}
                if ops and not ops & used_ops:
                    flags.append(Flag.ROLE_UNEXERCISED)
                    notes.append(f"role {role.value} granted but none of its operations was used")
        active = [k for k in keys if not k.key.revoked and not k.key.is_expired(now)]
        if p.disabled and active:
            flags.append(Flag.DISABLED_WITH_ACTIVE_KEYS)
            notes.append(f"disabled, but {len(active)} key(s) are not revoked")
        last = max([k.key.last_used_at for k in keys if k.key.last_used_at is not None], default=None)
        return PrincipalGrant(p, keys, tuple(flags), tuple(notes), last)

    def decide_key(
        self, key_id: str, decision: ReviewDecision | str, *, reviewer: str, note: str | None = None
    ) -> ApiKeyRecord:
        """Record a reviewer's keep/revoke decision on a key; revoke takes effect at once."""
        decision = _decision(decision)
        note = validate_text(note, "review note", max_chars=500) if note else None
        key = self._identity.get_key(key_id)
        if decision is ReviewDecision.REVOKE:
            key = self._identity.revoke_key(key_id, actor=reviewer, reason="access_review")
        self._record(reviewer, key_id, "apikey", decision, note, principal=key.principal_id)
        return key

    def decide_role(
        self,
        principal: str,
        role: Role | str,
        decision: ReviewDecision | str,
        *,
        reviewer: str,
        note: str | None = None,
    ) -> PrincipalRecord:
        """Record a keep/revoke decision on one role of a principal; revoke removes the role at once."""
        decision = _decision(decision)
        note = validate_text(note, "review note", max_chars=500) if note else None
        try:
            role = Role(role)
        except ValueError:
            raise InputError(f"unknown role {role!r}") from None
        p = self._identity.get_principal(principal)
        if role not in p.roles:
            raise InputError(f"principal {p.name!r} does not hold the role {role.value}")
        if decision is ReviewDecision.REVOKE:
            p = self._identity.update_principal(p.id, roles=p.roles - {role}, actor=reviewer)
        self._record(reviewer, p.id, "role", decision, note, role=role.value)
        return p

    def _record(
        self,
        reviewer: str,
        target: str,
        subject: str,
        decision: ReviewDecision,
        note: str | None,
        **extra: str,
    ) -> None:
        attrs: dict[str, Any] = {"subject": subject, "decision": decision.value, **extra}
        if note:
            attrs["note"] = note
        self._audit.record(
            AuditEvent(tag=EventTag.ACCESS_REVIEW_DECIDED, actor=reviewer, target=target, attributes=attrs)
        )


def _decision(value: ReviewDecision | str) -> ReviewDecision:
    try:
        return ReviewDecision(value)
    except ValueError:
        raise InputError(f"review decision must be keep or revoke, got {value!r}") from None
