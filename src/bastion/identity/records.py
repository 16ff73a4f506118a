"""Stored identity values (principals, API keys, key usage) and the validation of names in them.

These are pure values: the store maps rows to them, services hand them to the CLI and admin API.
Names are free text for people, so they may hold any printable Unicode (and SQL-looking
strings, which the store binds as parameters); what is refused is what makes a name dangerous
to show or compare: control and format characters (including bidi overrides), surrounding
whitespace, and excessive length.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from bastion.domain.access import Operation
from bastion.domain.identity import KeyScope, Principal, PrincipalKind, Role
from bastion.errors import InputError

MAX_NAME_CHARS = 200
MAX_ATTRIBUTE_VALUE_CHARS = 256
MAX_ATTRIBUTES = 32
MAX_SCOPE_ITEMS = 256
_BANNED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_ATTR_KEY_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_ROUTE_RE = re.compile(r"/[A-Za-z0-9/_.*{}-]{0,199}")


def validate_text(value: object, what: str, *, max_chars: int = MAX_NAME_CHARS) -> str:
    """``value`` if it is a printable, trimmed string of 1 to ``max_chars`` characters; InputError otherwise."""
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string")
    if not value:
        raise InputError(f"{what} must not be empty")
    if len(value) > max_chars:
        raise InputError(f"{what} is too long ({len(value)} characters, at most {max_chars})")
    if value != value.strip():
        raise InputError(f"{what} must not start or end with whitespace")
    for ch in value:
        if unicodedata.category(ch) in _BANNED_CATEGORIES:
            raise InputError(f"{what} contains a control or invisible formatting character (U+{ord(ch):04X})")
    return value


def validate_attributes(attributes: Mapping[str, str] | None) -> dict[str, str]:
    """Principal attributes: lowercase identifier keys, printable string values."""
    attrs = dict(attributes or {})
    if len(attrs) > MAX_ATTRIBUTES:
        raise InputError(f"at most {MAX_ATTRIBUTES} attributes")
    for k, v in attrs.items():
        if not isinstance(k, str) or not _ATTR_KEY_RE.fullmatch(k):
            raise InputError(f"attribute name {k!r} must match {_ATTR_KEY_RE.pattern}")
        validate_text(v, f"attribute {k}", max_chars=MAX_ATTRIBUTE_VALUE_CHARS)
    return attrs


def parse_roles(roles: Iterable[str | Role]) -> frozenset[Role]:
    """Role names to :class:`Role` members; InputError naming the valid roles for an unknown one."""
    out = set()
    for r in roles:
        try:
            out.add(Role(r))
        except ValueError:
            raise InputError(f"unknown role {r!r}; roles are {', '.join(x.value for x in Role)}") from None
    return frozenset(out)


def validate_scope(scope: KeyScope) -> KeyScope:
    """A normalised copy of ``scope``; InputError for unknown operations, bad CIDRs, models, routes or limits."""
    for name, items in (
        ("models", scope.models),
        ("routes", scope.routes),
        ("operations", scope.operations),
        ("source_cidrs", scope.source_cidrs),
    ):
        if len(items) > MAX_SCOPE_ITEMS:
            raise InputError(f"key scope {name}: at most {MAX_SCOPE_ITEMS} entries")
    models = tuple(sorted({validate_text(m, "key scope model") for m in scope.models}))
    known_ops = {o.value for o in Operation}
    for op in scope.operations:
        if op not in known_ops:
            raise InputError(
                f"key scope operation {op!r} is unknown; operations are {', '.join(sorted(known_ops))}"
            )
    for route in scope.routes:
        if not isinstance(route, str) or not _ROUTE_RE.fullmatch(route):
            raise InputError(f"key scope route {route!r} must be a path starting with '/'")
    cidrs = []
    for c in scope.source_cidrs:
        try:
            cidrs.append(str(ipaddress.ip_network(c, strict=False)))
        except (ValueError, TypeError):
            raise InputError(f"key scope source CIDR {c!r} is not an IP network (e.g. 10.0.0.0/8)") from None
    for lname, limit in (
        ("requests_per_minute", scope.requests_per_minute),
        ("tokens_per_minute", scope.tokens_per_minute),
    ):
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise InputError(f"key scope {lname} must be a positive integer")
    return KeyScope(
        models=models,
        routes=tuple(sorted(set(scope.routes))),
        operations=tuple(sorted(set(scope.operations))),
        source_cidrs=tuple(cidrs),
        requests_per_minute=scope.requests_per_minute,
        tokens_per_minute=scope.tokens_per_minute,
    )


def ip_allowed(client_ip: str | None, cidrs: Iterable[str]) -> bool:
    """True when no allowlist is set, or ``client_ip`` parses and lies in one of ``cidrs``."""
    networks = list(cidrs)
    if not networks:
        return True
    if not client_ip:
        return False
    try:
        ip = ipaddress.ip_address(client_ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in ipaddress.ip_network(n, strict=False) for n in networks)


@dataclass(frozen=True, slots=True)
class PrincipalRecord:
    """A stored principal."""

    id: str
    kind: PrincipalKind
    name: str
    roles: frozenset[Role]
    team: str | None
    attributes: Mapping[str, str]
    disabled: bool
    created_at: datetime
    updated_at: datetime
    version: int = 1
    #: the authorization view, built once (a record never changes; a change is a new record)
    _principal: Principal | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", MappingProxyType(dict(self.attributes)))

    def to_principal(self) -> Principal:
        """The authorization view of this principal (the same object on every call: the gateway's
        per-call caches of decisions and subjects hit on it)."""
        principal = self._principal
        if principal is None:
            principal = Principal(
                id=self.id,
                kind=self.kind,
                name=self.name,
                roles=self.roles,
                team=self.team,
                attributes=self.attributes,
            )
            object.__setattr__(self, "_principal", principal)
        return principal

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready description."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "name": self.name,
            "roles": sorted(r.value for r in self.roles),
            "team": self.team,
            "attributes": dict(self.attributes),
            "disabled": self.disabled,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "version": self.version,
        }


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A stored API key (its hash only; the secret was shown once and is gone)."""

    key_id: str
    principal_id: str
    name: str
    secret_hash: str = field(repr=False)
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_reason: str | None = None
    last_used_at: datetime | None = None
    scope: KeyScope = field(default_factory=KeyScope)
    rotated_from: str | None = None

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready description (never the hash)."""
        s = self.scope
        return {
            "key_id": self.key_id,
            "principal_id": self.principal_id,
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revoked_reason": self.revoked_reason,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "rotated_from": self.rotated_from,
            "scope": {
                "models": list(s.models),
                "routes": list(s.routes),
                "operations": list(s.operations),
                "source_cidrs": list(s.source_cidrs),
                "requests_per_minute": s.requests_per_minute,
                "tokens_per_minute": s.tokens_per_minute,
            },
        }


@dataclass(frozen=True, slots=True)
class KeyUsage:
    """That a key was used for an operation (on a model), first and last seen (coarse resolution)."""

    key_id: str
    operation: str
    model: str
    first_used_at: datetime
    last_used_at: datetime
