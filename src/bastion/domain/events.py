"""The closed vocabulary of audit events (``source:subject:action``) and the event value.

The ledger refuses any tag not listed here: a new kind of security fact is added on purpose,
in one place, with review. Modelled on warehouse's ``events/tags.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

# JSON-compatible attribute values. Floats are allowed only where the ledger's canonical encoding
# says so (see bastion.ledger.encoding); keep numbers integral where possible.
JSONValue = str | int | float | bool | None | list["JSONValue"] | dict[str, "JSONValue"]


class EventTag(StrEnum):
    """Every audit event Bastion can record."""

    # identity
    AUTHN_SUCCEEDED = "identity:authentication:succeeded"
    AUTHN_FAILED = "identity:authentication:failed"
    # authorization
    AUTHZ_ALLOWED = "authz:decision:allowed"
    AUTHZ_DENIED = "authz:decision:denied"
    # administration
    PRINCIPAL_CREATED = "admin:principal:created"
    PRINCIPAL_UPDATED = "admin:principal:updated"
    PRINCIPAL_DISABLED = "admin:principal:disabled"
    APIKEY_CREATED = "admin:apikey:created"
    APIKEY_REVOKED = "admin:apikey:revoked"
    APIKEY_ROTATED = "admin:apikey:rotated"
    BOOTSTRAP_COMPLETED = "admin:bootstrap:completed"
    CONFIG_LOADED = "admin:config:loaded"
    CONFIG_REJECTED = "admin:config:rejected"
    ACCESS_REVIEW_DECIDED = "admin:access_review:decided"
    # gateway
    GATEWAY_REQUEST_COMPLETED = "gateway:request:completed"
    GATEWAY_REQUEST_BLOCKED = "gateway:request:blocked"
    GATEWAY_REQUEST_FAILED = "gateway:request:failed"
    GATEWAY_REQUEST_REJECTED = "gateway:request:rejected"
    GATEWAY_LIMIT_EXCEEDED = "gateway:limit:exceeded"
    GATEWAY_BUDGET_EXCEEDED = "gateway:budget:exceeded"
    GATEWAY_LIMITER_UNAVAILABLE = "gateway:limiter:unavailable"
    # scans
    SCAN_PROMPT_COMPLETED = "scan:prompt:completed"
    SCAN_MODEL_COMPLETED = "scan:model:completed"
    SCAN_DATASET_COMPLETED = "scan:dataset:completed"
    ARTIFACT_SIGNED = "scan:artifact:signed"
    ARTIFACT_VERIFIED = "scan:artifact:verified"
    BOM_CREATED = "scan:bom:created"
    # keys and encryption
    KEY_USED = "crypto:key:used"
    KEY_CREATED = "crypto:key:created"
    KEY_ROTATED = "crypto:key:rotated"
    KEY_DESTROYED = "crypto:key:destroyed"
    KEY_OVERDUE = "crypto:key:overdue"
    CONTENT_ERASED = "crypto:content:erased"
    # the ledger itself
    LEDGER_EXPORTED = "ledger:export:created"
    LEDGER_VERIFIED = "ledger:verify:completed"
    # system
    SERVER_STARTED = "system:server:started"
    SERVER_STOPPED = "system:server:stopped"

    @property
    def source(self) -> str:
        return self.value.split(":", 2)[0]

    @property
    def subject(self) -> str:
        return self.value.split(":", 2)[1]

    @property
    def action(self) -> str:
        return self.value.split(":", 2)[2]


def parse_tag(value: str) -> EventTag:
    """The :class:`EventTag` for ``value``; ``ValueError`` for anything outside the vocabulary."""
    try:
        return EventTag(value)
    except ValueError:
        raise ValueError(f"unknown audit event tag {value!r}") from None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One security-relevant fact, before the ledger assigns it a position and a time.

    ``actor`` is who did it (a principal id, ``system`` or ``anonymous``); ``target`` is what it was
    done to (a key id, a model name, a file digest …). ``attributes`` never carry secrets, prompts
    or personal data — hash them (SHA-256) instead.
    """

    tag: EventTag
    actor: str
    target: str = ""
    outcome: str = "success"
    attributes: Mapping[str, JSONValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.tag, EventTag):
            object.__setattr__(self, "tag", parse_tag(str(self.tag)))
        object.__setattr__(self, "attributes", MappingProxyType(dict(self.attributes)))
