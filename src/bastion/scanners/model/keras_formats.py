"""Keras model configurations (``.keras`` zip ``config.json`` and legacy HDF5 ``model_config``).

HDF5 is not parsed with h5py: Keras stores ``model_config`` as a JSON string attribute, which is
found in the file's bytes and decoded; a file that mentions a Lambda layer but whose configuration
cannot be decoded is an error (fail closed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from bastion.domain.findings import Finding, Severity
from bastion.scanners.controls import MODEL_CODE_EXECUTION
from bastion.scanners.model.interface import MalformedArtifact, make_finding

_SAFE_MODULE_PREFIXES = (
    "keras",
    "tf_keras",
    "keras_nlp",
    "keras_hub",
    "keras_cv",
    "tensorflow.keras",
    "builtins",
)


def _walk(node: object, depth: int = 0) -> Iterator[dict[str, object]]:
    if depth > 200:
        raise MalformedArtifact("Keras configuration nested too deeply")
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v, depth + 1)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v, depth + 1)


def scan_keras_config(config: object, location: str) -> list[Finding]:
    """Lambda layers (serialised Python code) and custom objects that import modules on load."""
    found: list[Finding] = []
    seen: set[str] = set()
    for node in _walk(config):
        cls = node.get("class_name")
        module = node.get("module")
        if cls == "Lambda" and "lambda" not in seen:
            seen.add("lambda")
            found.append(
                make_finding(
                    "keras.lambda_layer",
                    Severity.CRITICAL,
                    "Lambda layer: its serialised Python bytecode runs when the model is loaded (CVE-2024-3660)",
                    location=location,
                    hint="Replace Lambda layers with registered custom layers; load with safe_mode=True.",
                    controls=MODEL_CODE_EXECUTION,
                )
            )
        if (
            isinstance(module, str)
            and module
            and not module.startswith(_SAFE_MODULE_PREFIXES)
            and module not in seen
        ):
            seen.add(module)
            found.append(
                make_finding(
                    "keras.custom_module",
                    Severity.HIGH,
                    f"layer {str(cls)[:60]!r} makes Keras import module {module[:100]!r} on load (CVE-2025-1550)",
                    location=location,
                    hint="Only load models whose custom objects come from modules you trust.",
                    controls=MODEL_CODE_EXECUTION,
                    metadata={"module": module[:100]},
                )
            )
        reg = node.get("registered_name")
        if isinstance(reg, str) and reg and ">" in reg and reg not in seen:
            seen.add(reg)
            found.append(
                make_finding(
                    "keras.custom_object",
                    Severity.LOW,
                    f"custom object {reg[:100]!r} must be registered by the loading code",
                    location=location,
                    hint="Review the custom object's implementation.",
                    controls=MODEL_CODE_EXECUTION,
                )
            )
    return found


def scan_h5(data: bytes, location: str) -> list[Finding]:
    """Find the JSON ``model_config`` attribute(s) in a Keras HDF5 file and check them."""
    decoder = json.JSONDecoder()
    findings: list[Finding] = []
    decoded = 0
    pos = 0
    while True:
        pos = data.find(b'{"class_name"', pos)
        if pos < 0:
            break
        end = data.find(b"\x00", pos, pos + (64 << 20))
        chunk = bytes(data[pos : end if end > 0 else pos + (64 << 20)]).decode("utf-8", "replace")
        try:
            obj, used = decoder.raw_decode(chunk)
        except (ValueError, RecursionError):
            pos += 1
            continue
        decoded += 1
        findings.extend(scan_keras_config(obj, location))
        pos += max(used, 1)
    if not decoded and (data.find(b"Lambda") >= 0 or data.find(b"model_config") >= 0):
        raise MalformedArtifact("HDF5 file has a model configuration that could not be decoded")
    return findings
