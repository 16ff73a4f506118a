"""Chat templates (Jinja) shipped with models: server-side template injection checks.

llama.cpp bindings and tokenizers render the template embedded in GGUF metadata or
``tokenizer_config.json``; a template that reaches Python internals runs code (CVE-2024-34359).
"""

from __future__ import annotations

import re

from bastion.domain.findings import Finding, Severity
from bastion.scanners.controls import MODEL_CODE_EXECUTION
from bastion.scanners.model.interface import make_finding

_SSTI = re.compile(
    r"__(?:class|mro|subclasses|globals|builtins|import|init|base|bases|getattribute|dict|code|func|self)__"
    r"|\|\s*attr\s*\(|\bcycler\b|\bjoiner\b|\blipsum\b|\bnamespace\s*\.\s*__|\brequest\s*\.\s*application"
    r"|\bos\s*\.\s*(?:popen|system)|\bpopen\b|\beval\s*\(|\bexec\s*\(|\\x5f\\x5f|\\u005f|_TemplateReference__context"
    r"|\bconfig\s*\.\s*items|\bself\s*\._",
    re.IGNORECASE,
)


def scan_chat_template(template: str, location: str) -> list[Finding]:
    """Findings for a Jinja chat template that reaches Python internals (sandbox escape)."""
    hits = sorted({m.group(0) for m in _SSTI.finditer(template[:1_000_000])})
    if not hits:
        return []
    return [
        make_finding(
            "template.injection",
            Severity.CRITICAL,
            f"chat template reaches Python internals ({', '.join(hits[:5])}): rendering it can run code",
            location=location,
            hint="Replace the chat template with a reviewed one; render templates only in a sandboxed "
            "Jinja environment (jinja2.sandbox.ImmutableSandboxedEnvironment).",
            controls=MODEL_CODE_EXECUTION,
            metadata={"patterns": ", ".join(hits[:10])},
        )
    ]
