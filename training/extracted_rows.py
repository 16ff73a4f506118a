"""What the registry-package extractors share: archive files, the row they emit, and YAML text.

:mod:`training.external_extract` and :mod:`training.injection_kits` read files out of a package archive
(``Files``: path -> bytes) and emit rows (``Row``) that :mod:`training.external_sources` deduplicates.
"""

from __future__ import annotations

from collections.abc import Mapping

Files = Mapping[str, bytes]
Row = dict[str, object]


def row(text: str, label: int, category: str, path: str, lang: str, group: str) -> Row:
    """One labelled row, named by the file it came from and the held-out group it belongs to."""
    return {"text": text, "label": label, "category": category, "path": path, "lang": lang, "group": group}


def yaml_strings(node: object, skip_keys: frozenset[str] = frozenset()) -> list[str]:
    """Every string in a parsed YAML document, depth first; values under ``skip_keys`` are left out."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() if k not in skip_keys for s in yaml_strings(v, skip_keys)]
    if isinstance(node, list):
        return [s for v in node for s in yaml_strings(v, skip_keys)]
    return []
