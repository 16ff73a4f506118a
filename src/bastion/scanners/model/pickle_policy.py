"""Which pickle globals are safe to import: an allow-list, plus a deny-list that explains the worst.

Every global a pickle names is classified. Only the reconstructors that torch, numpy, collections,
scikit-learn and pandas legitimately use are ``SAFE``; a name on the deny-list is ``DANGEROUS`` (with
the reason); everything else is ``UNKNOWN`` and flagged, because an unknown callable can run code
when the pickle is loaded. The lists themselves are in :mod:`pickle_known_globals`.
"""

from __future__ import annotations

import re
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from bastion.scanners.model.pickle_known_globals import (
    DANGEROUS_BUILTINS,
    DANGEROUS_MODULES,
    NESTED_LOADERS,
    NUMPY_TOP,
    SAFE_EXACT,
    SAFE_NAMESPACES,
    TORCH_DTYPES,
    UNSAFE_CLASS_NAMES,
)


class GlobalClass(StrEnum):
    SAFE = "safe"
    UNKNOWN = "unknown"
    DANGEROUS = "dangerous"


@dataclass(frozen=True, slots=True)
class GlobalVerdict:
    kind: GlobalClass
    reason: str


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_RECONSTRUCTOR = re.compile(
    r"(?:__pyx_unpickle_\w+|_?(?:rebuild|reconstruct|unpickle|new|restore|from_pickle|frombuffer)\w*)\Z"
)

# Storages by name: ``torch FloatStorage`` etc.
_TORCH_STORAGE = re.compile(r"[A-Z][A-Za-z0-9]*Storage\Z")


def normalize(module: str, name: str) -> tuple[str, str]:
    """Apply Python 2 → 3 renames as ``pickle.Unpickler`` does with ``fix_imports``."""
    if (module, name) in NAME_MAPPING:
        return NAME_MAPPING[(module, name)]
    return IMPORT_MAPPING.get(module, module), name


def _dangerous_module_reason(module: str) -> str | None:
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        reason = DANGEROUS_MODULES.get(".".join(parts[:i]))
        if reason:
            return reason
    return None


@lru_cache(maxsize=4096)
def classify(module: str, name: str) -> GlobalVerdict:
    """Classify the global ``module.name`` that a pickle would import (a pure function: cached)."""
    module, name = normalize(module, name)
    full = f"{module}.{name}"
    # A dotted name is an attribute chain (``_getattribute``): each step must be checked.
    name_parts = name.split(".")
    if not _IDENT.match(module.replace(".", "_") or "-") or not all(_IDENT.match(p) for p in name_parts):
        return GlobalVerdict(GlobalClass.DANGEROUS, f"malformed global name {full!r} (scanner evasion)")
    if (module, name) in SAFE_EXACT:
        return GlobalVerdict(GlobalClass.SAFE, f"{full}: allow-listed reconstructor")
    reason = _dangerous_module_reason(module)
    if reason:
        return GlobalVerdict(GlobalClass.DANGEROUS, f"{full}: {reason}")
    if module in ("builtins", "__builtin__") and name_parts[0] in DANGEROUS_BUILTINS:
        return GlobalVerdict(GlobalClass.DANGEROUS, f"{full}: {DANGEROUS_BUILTINS[name_parts[0]]}")
    for i in range(1, len(name_parts) + 1):
        # ``numpy.testing`` reached as ``numpy`` + ``testing.x`` is still numpy.testing.
        reason = _dangerous_module_reason(".".join([module, *name_parts[:i]]))
        if reason:
            return GlobalVerdict(GlobalClass.DANGEROUS, f"{full}: {reason}")
        if name_parts[i - 1] in DANGEROUS_MODULES or name_parts[i - 1] in DANGEROUS_BUILTINS:
            return GlobalVerdict(
                GlobalClass.DANGEROUS, f"{full}: reaches {name_parts[i - 1]!r} through an attribute chain"
            )
    nested = NESTED_LOADERS.get((module, name))
    if nested:
        return GlobalVerdict(GlobalClass.DANGEROUS, f"{full}: {nested}")
    if len(name_parts) > 1:
        return GlobalVerdict(GlobalClass.UNKNOWN, f"{full}: attribute chain outside the allow-list")
    if _is_safe(module, name):
        return GlobalVerdict(GlobalClass.SAFE, f"{full}: allow-listed reconstructor")
    return GlobalVerdict(
        GlobalClass.UNKNOWN, f"{full}: not on the allow-list; loading imports and may call it"
    )


def _is_safe(module: str, name: str) -> bool:
    if (module, name) in SAFE_EXACT:
        return True
    if name in UNSAFE_CLASS_NAMES:
        return False
    if module == "numpy":
        return name in NUMPY_TOP
    if module == "torch":
        return name in TORCH_DTYPES or bool(_TORCH_STORAGE.match(name))
    if not any(module == ns.rstrip(".") or module.startswith(ns) for ns in SAFE_NAMESPACES):
        return False
    return name[:1].isupper() or bool(_RECONSTRUCTOR.match(name))


def is_ufunc_reconstruct(module: str, name: str) -> bool:
    """``numpy.core._ufunc_reconstruct(mod, name)`` imports ``mod.name``: its arguments are checked."""
    return name == "_ufunc_reconstruct" and module in ("numpy.core", "numpy._core", "numpy.core._internal")
