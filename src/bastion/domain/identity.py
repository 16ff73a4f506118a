"""Who is calling: principals, roles and the facts authentication establishes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType


class PrincipalKind(StrEnum):
    USER = "user"
    SERVICE = "service"
    TEAM = "team"


class Role(StrEnum):
    """Built-in roles; policies in ``bastion/authz/policies`` give them meaning."""

    VIEWER = "viewer"
    USER = "user"
    ML_ENGINEER = "ml-engineer"
    APPROVER = "approver"
    AUDITOR = "auditor"
    SECURITY_ADMIN = "security-admin"
    ADMIN = "admin"


class AuthMethod(StrEnum):
    API_KEY = "api_key"
    OIDC = "oidc"
    MTLS = "mtls"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller (or a team)."""

    id: str
    kind: PrincipalKind
    name: str
    roles: frozenset[Role] = frozenset()
    team: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", MappingProxyType(dict(self.attributes)))


@dataclass(frozen=True, slots=True)
class KeyScope:
    """What an API key may be used for, on top of what its principal's roles allow.

    Empty tuples mean "no narrowing". A key can only narrow, never widen, its principal's rights.
    """

    models: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    operations: tuple[str, ...] = ()
    source_cidrs: tuple[str, ...] = ()
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None


@dataclass(frozen=True, slots=True)
class Authentication:
    """The outcome of a successful authentication."""

    principal: Principal
    method: AuthMethod
    key_id: str | None = None
    scope: KeyScope = KeyScope()
    expires_at: datetime | None = None
