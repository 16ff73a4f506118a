"""The :class:`Authorizer`: Cedar evaluation with caches, fail-closed error handling and explanations.

Hot path: a decision is cached per (principal fingerprint, operation, resource fingerprint, key
scope) in a bounded LRU, so a repeated request is a dictionary lookup. A miss evaluates the
pre-parsed policy set against a per-principal entity handle (cached, bounded) plus the resource
entity. A principal's fingerprint covers its id, kind, roles, team and attributes: changing any of
them (a new version of the principal) misses the cache, so there is nothing to invalidate by hand.

Fail closed: Cedar skips a policy whose evaluation errors. For a ``permit`` that only withholds an
allow, but a ``forbid`` that errors would silently stop guarding, so any evaluation error in a
forbid policy turns the decision into a deny.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cedarpy

from bastion.authz.policies import PolicyBundle, PolicyInfo, load_policies
from bastion.domain.access import Decision, Operation, Resource
from bastion.domain.identity import KeyScope, Principal, PrincipalKind, Role
from bastion.errors import InputError

DEFAULT_CLASSIFICATION = "internal"
CLASSIFICATIONS = ("public", "internal", "confidential", "restricted")
_NAMED_RESOURCE_ATTRS = ("team", "model", "environment", "classification")
_ERR_POLICY_RE = re.compile(r"policy `(policy\d+)`")
_MAX_ID_CHARS = 512
KEY_SCOPE_POLICY_ID = "key-scope"
DENY_BY_DEFAULT_ID = "deny-by-default"
_MEMO_MAX = 4096


@dataclass(frozen=True, slots=True)
class Explanation:
    """A decision with everything needed to understand it (``bastion policy explain``)."""

    decision: Decision
    principal: Principal
    operation: Operation
    resource: Resource
    classification: str
    determining: tuple[PolicyInfo, ...]
    errors: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {
            "allowed": self.decision.allowed,
            "decision": "allow" if self.decision.allowed else "deny",
            "principal": {
                "id": self.principal.id,
                "kind": self.principal.kind.value,
                "roles": sorted(r.value for r in self.principal.roles),
                "team": self.principal.team,
                "attributes": dict(self.principal.attributes),
            },
            "operation": self.operation.value,
            "resource": {
                "type": self.resource.type,
                "id": self.resource.id,
                "attributes": {**dict(self.resource.attributes), "classification": self.classification},
            },
            "policies": [
                {"id": p.id, "effect": p.effect, "reason": p.reason, "source": p.source}
                for p in self.determining
            ],
            "reasons": list(self.decision.reasons),
            "errors": list(self.errors),
        }


def principal_fingerprint(p: Principal) -> Hashable:
    """A hashable value that changes whenever anything authorization reads from ``p`` changes."""
    return (p.id, p.kind, p.roles, p.team, tuple(sorted(p.attributes.items())) if p.attributes else ())


def _resource_fingerprint(r: Resource) -> Hashable:
    return (r.type, r.id, tuple(sorted(r.attributes.items())) if r.attributes else ())


def _scope_fingerprint(s: KeyScope | None) -> Hashable:
    return None if s is None else (s.models, s.operations)


class _LRU:
    """A small thread-safe bounded LRU mapping."""

    def __init__(self, maxsize: int) -> None:
        self._max = maxsize
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class Authorizer:
    """Deny-by-default authorization over a :class:`PolicyBundle` (built-in Cedar policies by default)."""

    def __init__(
        self,
        bundle: PolicyBundle | None = None,
        *,
        decision_cache_size: int = 20_000,
        entity_cache_size: int = 4096,
    ) -> None:
        self._bundle = bundle if bundle is not None else load_policies()
        self._decisions = _LRU(decision_cache_size)
        self._entities = _LRU(entity_cache_size)
        #: decisions by the identity of the (immutable) principal, resource and scope objects: the
        #: gateway passes the same objects call after call, so a repeat skips the fingerprints and
        #: the LRU's lock; a new object (a reloaded principal) goes through the fingerprint cache
        self._memo: dict[
            tuple[int, Operation, int, int], tuple[Principal, Resource, KeyScope | None, Decision]
        ] = {}

    @classmethod
    def from_files(cls, extra_policy_files: Iterable[Path] = ()) -> Authorizer:
        """An authorizer with the built-in policies plus operator policy files (validated)."""
        return cls(load_policies(extra_policy_files))

    @property
    def bundle(self) -> PolicyBundle:
        """The loaded policies."""
        return self._bundle

    def clear_cache(self) -> None:
        """Drop cached decisions and entities (never needed for correctness; for tests and benchmarks)."""
        self._decisions.clear()
        self._entities.clear()
        self._memo.clear()

    def is_authorized(
        self, principal: Principal, operation: Operation, resource: Resource, *, scope: KeyScope | None = None
    ) -> Decision:
        """Allow or deny ``operation`` on ``resource`` for ``principal`` (narrowed by an API key's ``scope``)."""
        memo_key = (id(principal), operation, id(resource), id(scope))
        memo = self._memo.get(memo_key)
        if memo is not None and memo[0] is principal and memo[1] is resource and memo[2] is scope:
            return memo[3]
        key = (
            principal_fingerprint(principal),
            operation,
            _resource_fingerprint(resource),
            _scope_fingerprint(scope),
        )
        decision: Decision | None = self._decisions.get(key)
        if decision is None:
            decision = self._evaluate(principal, operation, resource, scope)[0]
            self._decisions.put(key, decision)
        if len(self._memo) >= _MEMO_MAX:
            self._memo.clear()
        # the objects are held, so their ids cannot be reused while the entry lives
        self._memo[memo_key] = (principal, resource, scope, decision)
        return decision

    def explain(
        self, principal: Principal, operation: Operation, resource: Resource, *, scope: KeyScope | None = None
    ) -> Explanation:
        """The decision plus the determining policies (with their files) and any evaluation errors."""
        decision, infos, errors = self._evaluate(principal, operation, resource, scope)
        return Explanation(
            decision=decision,
            principal=principal,
            operation=operation,
            resource=resource,
            classification=resource.attributes.get("classification", DEFAULT_CLASSIFICATION),
            determining=infos,
            errors=errors,
        )

    def allowed_operations(self, principal: Principal, resource: Resource) -> frozenset[Operation]:
        """Every operation ``principal`` may perform on ``resource``."""
        return frozenset(op for op in Operation if self.is_authorized(principal, op, resource).allowed)

    # -- evaluation ------------------------------------------------------------------------------

    def _evaluate(
        self, principal: Principal, operation: Operation, resource: Resource, scope: KeyScope | None
    ) -> tuple[Decision, tuple[PolicyInfo, ...], tuple[str, ...]]:
        scoped = _scope_denial(operation, resource, scope)
        if scoped is not None:
            return scoped, (), ()
        entities = self._principal_entities(principal).with_added_json_str(_resource_json(resource))
        request = {
            "principal": {"type": "Bastion::Principal", "id": principal.id},
            "action": {"type": "Bastion::Action", "id": operation.value},
            "resource": {"type": "Bastion::Resource", "id": resource.id},
        }
        result = cedarpy.is_authorized(request, self._bundle.policy_set, entities)
        infos = self._bundle.policies
        errors = tuple(result.diagnostics.errors)
        broken_forbids = [
            infos[m.group(1)]
            for e in errors
            if (m := _ERR_POLICY_RE.search(e))
            and m.group(1) in infos
            and infos[m.group(1)].effect == "forbid"
        ]
        cedar_ids = [c for c in result.diagnostics.reasons if c in infos]
        determining = tuple(infos[c] for c in sorted(cedar_ids, key=_policy_number))
        if broken_forbids:
            reasons = tuple(
                f"guard {p.id} could not be evaluated; denied (fail closed)" for p in broken_forbids
            )
            return (
                Decision(False, tuple(p.id for p in broken_forbids), reasons + errors),
                tuple(broken_forbids),
                errors,
            )
        if result.allowed:
            return (
                Decision(True, tuple(p.id for p in determining), tuple(p.reason for p in determining)),
                determining,
                errors,
            )
        if determining:
            return (
                Decision(False, tuple(p.id for p in determining), tuple(p.reason for p in determining)),
                determining,
                errors,
            )
        roles = ", ".join(sorted(r.value for r in principal.roles)) or "no roles"
        reason = (
            f"deny by default: no policy permits {operation.value} on {resource.type} "
            f"{resource.id!r} for a principal with {roles}"
        )
        return Decision(False, (DENY_BY_DEFAULT_ID,), (reason, *errors)), (), errors

    def _principal_entities(self, principal: Principal) -> cedarpy.Entities:
        key = principal_fingerprint(principal)
        handle: cedarpy.Entities | None = self._entities.get(key)
        if handle is None:
            handle = cedarpy.Entities.from_json_str(_principal_json(principal))
            self._entities.put(key, handle)
        return handle


def _policy_number(cedar_id: str) -> int:
    return int(cedar_id.removeprefix("policy"))


def _check_id(kind: str, value: str) -> None:
    if not value or len(value) > _MAX_ID_CHARS:
        raise InputError(f"{kind} id must be 1 to {_MAX_ID_CHARS} characters")


def _principal_json(p: Principal) -> str:
    _check_id("principal", p.id)
    attrs: dict[str, str] = {"kind": p.kind.value}
    if p.team:
        attrs["team"] = p.team
    entity = {
        "uid": {"type": "Bastion::Principal", "id": p.id},
        "attrs": attrs,
        "parents": [{"type": "Bastion::Role", "id": Role(r).value} for r in sorted(p.roles)],
        "tags": {str(k): str(v) for k, v in p.attributes.items()},
    }
    return json.dumps([entity])


def _resource_json(r: Resource) -> str:
    _check_id("resource", r.id)
    attrs: dict[str, str] = {"type": r.type, "classification": DEFAULT_CLASSIFICATION}
    tags: dict[str, str] = {}
    for k, v in r.attributes.items():
        if not isinstance(v, str):
            raise InputError(f"resource attribute {k!r} must be a string")
        (attrs if k in _NAMED_RESOURCE_ATTRS else tags)[k] = v
    entity = {"uid": {"type": "Bastion::Resource", "id": r.id}, "attrs": attrs, "parents": [], "tags": tags}
    return json.dumps([entity])


def _scope_denial(operation: Operation, resource: Resource, scope: KeyScope | None) -> Decision | None:
    """A deny when an API key's scope excludes the request (keys only narrow their principal's rights)."""
    if scope is None:
        return None
    if scope.operations and operation.value not in scope.operations:
        return Decision(
            False,
            (KEY_SCOPE_POLICY_ID,),
            (
                f"the API key is limited to operations {', '.join(scope.operations)}; {operation.value} is not one",
            ),
        )
    if scope.models and resource.type == "model":
        model = resource.attributes.get("model") or resource.id
        if model not in scope.models:
            return Decision(
                False,
                (KEY_SCOPE_POLICY_ID,),
                (f"the API key is limited to models {', '.join(scope.models)}; {model!r} is not one",),
            )
    return None


def role_probe(role: Role, *, team: str = "probe-team") -> Principal:
    """A principal with exactly one role (used to list what a role allows)."""
    return Principal(
        id=f"probe:{role.value}", kind=PrincipalKind.USER, name=role.value, roles=frozenset({role}), team=team
    )


def role_operations(
    authorizer: Authorizer, resource_attributes: Mapping[str, str] | None = None
) -> dict[Role, frozenset[Operation]]:
    """For each built-in role, the operations a principal holding only that role may perform on a
    representative resource (a shared, internal, staging model unless ``resource_attributes`` say otherwise)."""
    attrs = dict(
        resource_attributes or {"team": "shared", "classification": "internal", "environment": "staging"}
    )
    resource = Resource(type="model", id="probe-model", attributes=attrs)
    return {role: authorizer.allowed_operations(role_probe(role), resource) for role in Role}
