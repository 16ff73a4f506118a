"""Benign prose from the Python standard library's docstrings (training data, v3).

Technical documentation is full of words a naive detector keys on ("ignore", "override", "instructions",
"password", "execute", "you must"), yet it is never an attack. The standard library's module, class and
function docstrings are a large, licence-clean (PSF) and offline source of such text: this module
collects their paragraphs deterministically (sorted files, fixed seed). The sample depends on the
Python version that runs the training; the model card records which.
"""

from __future__ import annotations

import ast
import random
import sysconfig
from pathlib import Path


def _docstrings(path: Path) -> list[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return []
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node)
            if doc:
                out.append(doc)
    return out


def stdlib_paragraphs(n: int = 1500, seed: int = 20261130, min_chars: int = 120) -> list[str]:
    """``n`` docstring paragraphs of at least ``min_chars`` characters (whitespace squeezed)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    paragraphs: list[str] = []
    for path in sorted(root.glob("*.py")):
        for doc in _docstrings(path):
            for para in doc.split("\n\n"):
                text = " ".join(para.split())
                if len(text) >= min_chars and ">>>" not in text:
                    paragraphs.append(text)
    unique = sorted(set(paragraphs))
    return random.Random(seed).sample(unique, min(n, len(unique)))


def prose_rows(n: int = 1500) -> list[dict[str, object]]:
    """Training-only benign rows (group ``stdlib``)."""
    return [{"text": t, "label": 0, "group": "stdlib"} for t in stdlib_paragraphs(n)]
