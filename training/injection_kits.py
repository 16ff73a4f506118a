"""Rows from two injection test kits shipped on PyPI: spikee and AgentDojo (training data, v4).

Both kits compose an attack from parts: a *wrapper* ("*** NEW IMPORTANT INSTRUCTIONS *** <INSTRUCTION>",
AgentDojo's "<INFORMATION> This is an important message from me, {user}, to you, {model} ... {goal}"), an
*instruction* or *goal* (what the attacker wants), and for indirect attacks a *document* with a slot
(an e-mail, a web page, a hotel review, a bank statement). This module reads those parts as data (JSON
Lines and YAML as shipped; AgentDojo's wrappers and goals from its Python source with :mod:`ast`, never
importing it) and composes a deterministic sample: wrapped instructions (direct), documents carrying one
(indirect), and the same documents with the kit's own harmless slot values (benign).
"""

from __future__ import annotations

import ast
import hashlib
import json
import random
import re
from collections.abc import Mapping
from typing import Any

import yaml

from training.extracted_rows import Files, Row, row, yaml_strings

# --- spikee (Apache-2.0) -------------------------------------------------------------------------------

_SPIKEE = "spikee/data/workspace/datasets/"
_SPIKEE_SKIP = ("toxic-chat", "wildguardmix", "zzz_LEGACY", "mini-test")  # other licences; copies


def _jsonl(raw: bytes) -> list[dict[str, Any]]:
    """JSON objects of a JSON Lines file (spikee's files sometimes hold two objects on one line)."""
    text, at = raw.decode("utf-8"), 0
    out: list[dict[str, Any]] = []
    decoder = json.JSONDecoder()
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return out
        obj, at = decoder.raw_decode(text, at)
        out.append(obj)


def _pick(key: str, items: list[str], n: int) -> list[str]:
    """``n`` items chosen by a hash of ``key`` (stable across runs and Python versions)."""
    rng = random.Random(hashlib.sha256(key.encode()).digest())
    return rng.sample(items, min(n, len(items)))


def spikee_rows(files: Files, per_wrapper: int = 2, per_document: int = 6) -> list[Row]:
    """Wrapped instructions (direct), documents carrying one (indirect) and clean documents (benign) from
    each of spikee's seed folders; false-positive folders' standalone inputs (``*-fp``) are benign."""
    folders = sorted({p[len(_SPIKEE) :].split("/")[0] for p in files if p.startswith(_SPIKEE)})
    out: list[Row] = []
    for folder in folders:
        if any(s in folder for s in _SPIKEE_SKIP):
            continue
        base = f"{_SPIKEE}{folder}/"

        def load(name: str, base: str = base) -> list[dict[str, Any]]:
            return _jsonl(files[base + name]) if base + name in files else []

        wrappers = [str(j["text"]) for j in load("jailbreaks.jsonl") if "<INSTRUCTION>" in str(j.get("text"))]
        instructions = [str(i["instruction"]) for i in load("instructions.jsonl") if i.get("instruction")]
        payloads: list[str] = []
        for w in wrappers:
            for instr in _pick(w, instructions, per_wrapper):
                payloads.append(w.replace("<INSTRUCTION>", instr).strip())
                out.append(
                    row(payloads[-1], 1, "direct_injection", base + "jailbreaks.jsonl", "en", "pypi:spikee")
                )
        for doc in load("base_user_inputs.jsonl"):
            text, slot = str(doc.get("document", "")), str(doc.get("placeholder") or "")
            if len(text.replace(slot, "") if slot else text) < 40:
                continue  # the bare "<PLACEHOLDER>" document is the direct case above
            if not slot or slot not in text:  # spikee puts the payload at the start or the end
                slot = "<PLACEHOLDER>"
                text = f"{slot}\n{text}" if len(out) % 2 else f"{text}\n{slot}"
            path = base + "base_user_inputs.jsonl"
            out.append(row(text.replace(slot, "").strip(), 0, "benign", path, "en", "pypi:spikee"))
            for payload in _pick(text, payloads, per_document):
                out.append(
                    row(text.replace(slot, payload), 1, "indirect_injection", path, "en", "pypi:spikee")
                )
        label, category = (0, "benign") if folder.endswith("-fp") else (1, "direct_injection")
        for item in load("standalone_user_inputs.jsonl"):
            if item.get("text"):
                path = base + "standalone_user_inputs.jsonl"
                out.append(row(str(item["text"]), label, category, path, "en", "pypi:spikee"))
    return out


# --- AgentDojo (MIT) -----------------------------------------------------------------------------------

_DOJO = "agentdojo/"
_DOJO_SUITES = "agentdojo/data/suites/"
_DOJO_GOALS = "agentdojo/default_suites/"
_NAME = re.compile(r"\{(\w+)\}")
_USERS = ("Emma Johnson", "the user", "your owner")
_MODELS = ("AI assistant", "GPT-4", "Claude", "Llama", "the assistant")


class _IncludeLoader(yaml.SafeLoader):
    """SafeLoader that leaves AgentDojo's ``!include`` tags unresolved (each file is read on its own)."""


_IncludeLoader.add_constructor("!include", lambda _loader, _node: None)


def _template(node: ast.expr, env: Mapping[str, str]) -> str | None:
    """A string constant, or an f-string with names (or ``obj.name`` attributes) from ``env`` filled and
    other names kept as ``{name}``; None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                parts.append(str(v.value))
            elif isinstance(v, ast.FormattedValue) and isinstance(v.value, ast.Name | ast.Attribute):
                name = v.value.id if isinstance(v.value, ast.Name) else v.value.attr  # self._X -> _X
                parts.append(env.get(name, "{" + name + "}"))
            else:
                return None
        return "".join(parts)
    return None


def agentdojo_wrappers(files: Files) -> list[str]:
    """Every string in ``agentdojo/attacks/*.py`` with a ``{goal}`` slot (the attack wrappers)."""
    out: set[str] = set()
    for path in sorted(files):
        if path.startswith(_DOJO + "attacks/") and path.endswith(".py"):
            tree = ast.parse(files[path].decode("utf-8"))
            docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
            for node in ast.walk(tree):
                if isinstance(node, ast.expr) and id(node) not in docstrings:
                    text = _template(node, {})
                    if text and "{goal}" in text:
                        out.add(text.replace("{tools}\n", "").replace("{task}", "the task I gave you"))
    return sorted(out)


def agentdojo_goals(files: Files) -> list[str]:
    """The injection tasks' ``GOAL`` strings (every suite version), module-level string constants filled in."""
    goals: set[str] = set()
    for path in sorted(files):
        if not (path.startswith(_DOJO_GOALS) and path.endswith("injection_tasks.py")):
            continue
        tree = ast.parse(files[path].decode("utf-8"))
        env: dict[str, str] = {}  # string constants at module and class level
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for t in node.targets:
                    if isinstance(t, ast.Name) and isinstance(node.value.value, str):
                        env[t.id] = node.value.value
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "GOAL" for t in node.targets
            ):
                goal = _template(node.value, env)
                if goal and not _NAME.search(goal):
                    goals.add(goal)
    return sorted(goals)


def _fill(text: str, slots: list[str], defaults: Mapping[str, str], slot: str = "", attack: str = "") -> str:
    """``text`` with ``slot`` holding ``attack`` and every other slot its harmless default."""
    for name in slots:
        text = text.replace("{" + name + "}", attack if name == slot else defaults[name])
    return text.strip()


def agentdojo_rows(files: Files, per_document: int = 2) -> list[Row]:
    """AgentDojo's environment documents with one injection slot filled by a wrapped goal (indirect) and
    with the kit's default (harmless) slot values (benign); plus each wrapped goal on its own (direct)."""
    wrappers, goals = agentdojo_wrappers(files), agentdojo_goals(files)
    if not (wrappers and goals):
        return []
    out: list[Row] = []
    attacks = []
    for i, goal in enumerate(goals):
        for w in _pick(goal, wrappers, 2):
            user, model = _USERS[i % len(_USERS)], _MODELS[i % len(_MODELS)]
            attacks.append(
                w.replace("{goal}", goal).replace("{user}", user).replace("{model}", model).strip()
            )
    for a in attacks:
        out.append(row(a, 1, "direct_injection", _DOJO + "attacks", "en", "pypi:agentdojo"))
    for path in sorted(files):
        if not (path.startswith(_DOJO_SUITES) and path.endswith(".yaml")) or "injection_vectors" in path:
            continue
        suite = path[len(_DOJO_SUITES) :].split("/")[0]
        vectors_doc = yaml.safe_load(files.get(f"{_DOJO_SUITES}{suite}/injection_vectors.yaml", b"{}"))
        defaults = {str(k): str(v.get("default", "")) for k, v in (vectors_doc or {}).items()}
        for text in yaml_strings(yaml.load(files[path].decode("utf-8"), Loader=_IncludeLoader)):  # noqa: S506
            slots = [s for s in _NAME.findall(text) if s in defaults]
            if not slots:
                continue
            clean = _fill(text, slots, defaults)
            if len(clean) >= 40:
                out.append(row(clean, 0, "benign", path, "en", "pypi:agentdojo"))
            for attack in _pick(text, attacks, per_document):
                out.append(
                    row(
                        _fill(text, slots, defaults, _pick(attack + text, slots, 1)[0], attack),
                        1,
                        "indirect_injection",
                        path,
                        "en",
                        "pypi:agentdojo",
                    )
                )
    return out
