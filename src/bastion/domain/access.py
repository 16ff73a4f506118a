"""Authorization requests and decisions (engine-independent values)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class Operation(StrEnum):
    """Every operation authorization knows. Admin routes and the gateway map onto these."""

    MODEL_INVOKE = "model:invoke"
    MODEL_LIST = "model:list"
    MODEL_LOGPROBS = "model:logprobs"
    KEY_CREATE = "apikey:create"
    KEY_LIST = "apikey:list"
    KEY_REVOKE = "apikey:revoke"
    KEY_ROTATE = "apikey:rotate"
    PRINCIPAL_CREATE = "principal:create"
    PRINCIPAL_LIST = "principal:list"
    PRINCIPAL_UPDATE = "principal:update"
    POLICY_EXPLAIN = "policy:explain"
    LEDGER_READ = "ledger:read"
    LEDGER_VERIFY = "ledger:verify"
    LEDGER_EXPORT = "ledger:export"
    ACCESS_REVIEW = "access:review"
    ACCESS_REVIEW_DECIDE = "access:decide"
    SCAN_RUN = "scan:run"
    KMS_WRAP = "kms:wrap"
    KMS_UNWRAP = "kms:unwrap"
    KMS_ROTATE = "kms:rotate"
    KMS_DESTROY = "kms:destroy"
    CONTENT_ERASE = "content:erase"
    CONFIG_READ = "config:read"


@dataclass(frozen=True, slots=True)
class Resource:
    """What an operation acts on. ``attributes`` carry team, model, environment, classification …"""

    type: str
    id: str
    attributes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", MappingProxyType(dict(self.attributes)))


@dataclass(frozen=True, slots=True)
class Decision:
    """An authorization decision with the reasons that explain it."""

    allowed: bool
    policies: tuple[str, ...] = ()  # ids of the policies that decided
    reasons: tuple[str, ...] = ()  # human-readable explanation / evaluation errors
