"""Loading, validating and describing Cedar policy files.

All policy text (built-ins first, then operator files in the order given) is concatenated and
parsed once into a :class:`cedarpy.PolicySet`. Cedar numbers the policies positionally
(``policy0``, ``policy1`` …); :class:`PolicyBundle` maps those ids back to each policy's ``@id``
annotation, its ``@reason``, its effect and the file it came from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import cedarpy

from bastion.errors import ConfigError

MAX_POLICY_FILE_BYTES = 1024 * 1024
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """What Bastion knows about one policy."""

    cedar_id: str  # positional id assigned by Cedar (policy0 …)
    id: str  # the @id annotation, or "<file>#<n>" when the policy has none
    effect: Literal["permit", "forbid"]
    reason: str  # the @reason annotation, or a generic sentence
    source: str  # "builtin:roles.cedar" or the operator file path


@dataclass(frozen=True, slots=True)
class PolicyBundle:
    """A parsed, validated policy set and its schema, ready for evaluation."""

    policy_set: cedarpy.PolicySet
    schema: cedarpy.Schema
    policies: Mapping[str, PolicyInfo] = field(default_factory=dict)  # by cedar_id
    text: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "policies", MappingProxyType(dict(self.policies)))

    def by_annotation(self) -> dict[str, PolicyInfo]:
        """The policies keyed by their ``@id``."""
        return {p.id: p for p in self.policies.values()}


def builtin_sources() -> list[tuple[str, str]]:
    """``(source name, text)`` of every built-in policy file, sorted by name."""
    root = resources.files("bastion.authz") / "policies"
    out = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".cedar"):
            out.append((f"builtin:{entry.name}", entry.read_text(encoding="utf-8")))
    return out


def builtin_schema_text() -> str:
    """The Cedar schema every policy is validated against."""
    return (resources.files("bastion.authz") / "schema.cedarschema").read_text(encoding="utf-8")


def _read_operator_file(path: Path) -> tuple[str, str]:
    try:
        size = path.stat().st_size
        if size > MAX_POLICY_FILE_BYTES:
            raise ConfigError(f"policy file {str(path)!r} is larger than {MAX_POLICY_FILE_BYTES} bytes")
        return str(path), path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"policy file {str(path)!r} does not exist",
            hint="Fix auth.policy_files in bastion.yaml or create the file.",
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"policy file {str(path)!r} cannot be read: {e}") from e


def _describe(source: str, text: str) -> list[dict[str, Any]]:
    """The JSON form of each policy in ``text``, in textual order."""
    try:
        doc = json.loads(cedarpy.policies_to_json_str(text))
    except ValueError as e:
        raise ConfigError(
            f"policy file {source!r} is not valid Cedar: {e}",
            hint="Check the syntax with the Cedar documentation; `bastion policy explain` shows what loaded.",
        ) from e
    if doc.get("templates"):
        raise ConfigError(f"policy file {source!r} contains templates; only static policies are supported")
    static: dict[str, dict[str, Any]] = doc.get("staticPolicies", {})
    return [static[k] for k in sorted(static, key=lambda k: int(k.removeprefix("policy")))]


def load_policies(extra_files: Iterable[Path] = (), *, include_builtin: bool = True) -> PolicyBundle:
    """Parse and validate the built-in policies plus ``extra_files``; :class:`ConfigError` on any problem.

    Every policy must pass Cedar's validator against the built-in schema, and ``@id`` annotations
    must be unique across all files.
    """
    sources = builtin_sources() if include_builtin else []
    sources += [_read_operator_file(Path(p)) for p in extra_files]
    schema = cedarpy.Schema.from_str(builtin_schema_text())
    infos: dict[str, PolicyInfo] = {}
    seen_ids: dict[str, str] = {}
    n = 0
    for source, text in sources:
        for i, pjson in enumerate(_describe(source, text)):
            annotations: dict[str, str] = pjson.get("annotations", {}) or {}
            pid = annotations.get("id")
            if pid is None:
                pid = f"{Path(source.removeprefix('builtin:')).name}#{i}"
            elif not _ID_RE.fullmatch(pid):
                raise ConfigError(f"policy @id {pid!r} in {source!r} must match {_ID_RE.pattern}")
            if pid in seen_ids:
                raise ConfigError(f"policy @id {pid!r} appears in {seen_ids[pid]!r} and again in {source!r}")
            seen_ids[pid] = source
            effect = pjson["effect"]
            reason = annotations.get("reason") or f"policy {pid} ({effect})"
            infos[f"policy{n}"] = PolicyInfo(f"policy{n}", pid, effect, reason, source)
            n += 1
    text = "\n".join(t for _, t in sources)
    result = cedarpy.validate_policies(text, schema)
    if not result.validation_passed:
        lines = []
        for err in result.errors:
            info = infos.get(err.policy_id)
            where = f"{info.id} in {info.source}" if info else (err.policy_id or "policies")
            lines.append(f"  {where}: {err.error}")
        raise ConfigError(
            "policies do not validate against the Bastion schema:\n" + "\n".join(lines),
            hint="See docs/keys-and-roles.md for the entity types and attributes a policy may use.",
        )
    try:
        policy_set = cedarpy.PolicySet.from_str(text)
    except ValueError as e:  # pragma: no cover - validated above
        raise ConfigError(f"policies cannot be parsed: {e}") from e
    if len(policy_set) != n:  # pragma: no cover - guards the positional-id mapping
        raise ConfigError(f"policy count mismatch ({len(policy_set)} parsed, {n} described)")
    return PolicyBundle(policy_set=policy_set, schema=schema, policies=infos, text=text)
