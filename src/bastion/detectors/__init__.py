"""Runtime detectors on text (prompt injection, PII, secrets, hidden text, canaries …).

Importing this package registers every built-in detector *lazily* in
:data:`bastion.detectors.interface.detectors`: the implementation module (and numpy, the shipped
model …) is imported only when a detector is first built. Registry names (stable; used by gateway
guards, the CLI and config):

==================  =========  ==================================================================
name                direction  finds
==================  =========  ==================================================================
prompt_injection    in, out    prompt injection and jailbreaks (classifier + heuristics, encoded)
pii                 in, out    e-mail, phone, card, IBAN, national IDs, IP, street address, name
secrets             in, out    provider API keys, private keys, JWTs, connection strings, tokens
hidden_text         in, out    invisible Unicode, bidi controls, homoglyphs, ANSI escapes
unsafe_output       out        exfiltration URLs, active HTML, hosts outside an allowlist
canary              out        canary token echo and system-prompt leakage
==================  =========  ==================================================================

(``denylist`` is registered by :mod:`bastion.detectors.denylist` when it is imported.)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from bastion.detectors.interface import Detector, detectors

#: name -> (module, class) of the built-in detectors.
BUILTINS: dict[str, tuple[str, str]] = {
    "prompt_injection": ("bastion.detectors.prompt_injection", "PromptInjectionDetector"),
    "pii": ("bastion.detectors.pii", "PiiDetector"),
    "secrets": ("bastion.detectors.secrets", "SecretsDetector"),
    "hidden_text": ("bastion.detectors.hidden_text", "HiddenTextDetector"),
    "unsafe_output": ("bastion.detectors.unsafe_output", "UnsafeOutputDetector"),
    "canary": ("bastion.detectors.canary", "CanaryDetector"),
}


def _lazy(module: str, attr: str) -> Callable[..., Detector]:
    def factory(**options: object) -> Detector:
        cls: Callable[..., Detector] = getattr(importlib.import_module(module), attr)
        return cls(**options)

    factory.__qualname__ = factory.__name__ = f"{attr}_factory"
    factory.__doc__ = f"Build {module}.{attr} (imported on first use)."
    return factory


_FACTORIES = {name: _lazy(module, attr) for name, (module, attr) in BUILTINS.items()}
for _name, _factory in _FACTORIES.items():
    detectors.register(_name)(_factory)


def load_builtins() -> list[str]:
    """Make sure every built-in (and the deny-list, if present) is registered; the registered names."""
    try:
        importlib.import_module("bastion.detectors.denylist")
    except ModuleNotFoundError as e:  # pragma: no cover - built by another team; optional here
        if e.name != "bastion.detectors.denylist":
            raise
    return detectors.names()


__all__ = ["BUILTINS", "load_builtins"]
