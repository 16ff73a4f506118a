"""AI-BOM: a CycloneDX 1.6 ML-BOM for a model directory, validated against the official schema.

The model is one ``machine-learning-model`` component with a ``modelCard`` (task, architecture,
data sets) read from the Hugging Face model card (``README.md`` front matter) and ``config.json``;
every file is a ``file`` sub-component with its SHA-256; data sets are ``data`` components; licences
come from the card; signature files are listed with their digests. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bastion.errors import InputError, ScanError

_SIGNATURE_NAMES = ("model.sig",)
_MAX_CARD_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class ModelCardFields:
    """What the model card and config say about the model."""

    name: str
    version: str | None = None
    licenses: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    task: str | None = None
    architecture_family: str | None = None
    architecture: str | None = None
    base_model: tuple[str, ...] = ()
    description: str | None = None
    languages: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


def _as_tuple(v: object) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, list | tuple):
        return tuple(str(x) for x in v if x is not None)
    return (str(v),)


def read_model_card(model_dir: Path) -> ModelCardFields:
    """Fields from ``README.md`` YAML front matter and ``config.json`` (missing files are fine)."""
    front: dict[str, Any] = {}
    readme = model_dir / "README.md"
    if readme.is_file() and readme.stat().st_size <= _MAX_CARD_BYTES:
        text = readme.read_text(encoding="utf-8", errors="replace")
        if text.startswith("---"):
            end = text.find("\n---", 3)
            if end > 0:
                try:
                    loaded = yaml.safe_load(text[3:end])
                except yaml.YAMLError:
                    loaded = None
                if isinstance(loaded, dict):
                    front = loaded
    config: dict[str, Any] = {}
    cfg = model_dir / "config.json"
    if cfg.is_file() and cfg.stat().st_size <= _MAX_CARD_BYTES:
        try:
            loaded_cfg = json.loads(cfg.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            loaded_cfg = None
        if isinstance(loaded_cfg, dict):
            config = loaded_cfg
    archs = _as_tuple(config.get("architectures"))
    return ModelCardFields(
        name=str(front.get("model_name") or model_dir.resolve().name),
        version=str(front["version"]) if "version" in front else None,
        licenses=_as_tuple(front.get("license")),
        datasets=_as_tuple(front.get("datasets")),
        task=str(front["pipeline_tag"]) if front.get("pipeline_tag") else None,
        architecture_family=str(config["model_type"]) if config.get("model_type") else None,
        architecture=archs[0] if archs else None,
        base_model=_as_tuple(front.get("base_model")),
        languages=_as_tuple(front.get("language")),
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


def _files(model_dir: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(model_dir, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        out.extend(Path(dirpath) / f for f in sorted(filenames))
    return out


def build_ml_bom(model_dir: Path, *, scan_summary: dict[str, str] | None = None) -> dict[str, Any]:
    """The CycloneDX 1.6 ML-BOM of ``model_dir`` as a JSON-ready dict (schema-validated)."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
    from cyclonedx.output.json import JsonV1Dot6

    if not model_dir.is_dir():
        raise InputError(
            f"{str(model_dir)!r} is not a directory", hint="Point `bastion bom` at a model directory."
        )
    card = read_model_card(model_dir)
    bom = Bom()
    model = Component(
        name=card.name,
        version=card.version,
        type=ComponentType.MACHINE_LEARNING_MODEL,
        bom_ref=f"model:{card.name}",
        description=card.description,
    )
    for lic in card.licenses:
        spdx_id = _spdx(lic)
        if " " in lic:
            model.licenses.add(LicenseExpression(lic))
        elif spdx_id:
            model.licenses.add(DisjunctiveLicense(id=spdx_id))
        else:
            model.licenses.add(DisjunctiveLicense(name=lic))
    for key, value in (scan_summary or {}).items():
        model.properties.add(Property(name=f"bastion:scan:{key}", value=value))
    for base in card.base_model:
        model.properties.add(Property(name="bastion:base_model", value=base))
    for path in _files(model_dir):
        if path.is_symlink():
            continue
        rel = path.relative_to(model_dir).as_posix()
        comp = Component(
            name=rel,
            type=ComponentType.FILE,
            bom_ref=f"file:{rel}",
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=_sha256(path))],
        )
        if path.name in _SIGNATURE_NAMES or path.suffix == ".sig":
            comp.properties.add(Property(name="bastion:role", value="signature"))
            model.properties.add(Property(name="bastion:signature", value=rel))
        model.components.add(comp)
    datasets = [Component(name=ds, type=ComponentType.DATA, bom_ref=f"dataset:{ds}") for ds in card.datasets]
    for comp in datasets:
        bom.components.add(comp)
    bom.metadata.component = model
    bom.register_dependency(model, datasets)
    doc: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    doc["metadata"]["component"]["modelCard"] = _model_card(card)
    validate_bom(doc)
    return doc


def _spdx(lic: str) -> str | None:
    from cyclonedx.spdx import fixup_id

    fixed = fixup_id(lic)
    return str(fixed) if fixed else None


def _model_card(card: ModelCardFields) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if card.task:
        params["task"] = card.task
    if card.architecture_family:
        params["architectureFamily"] = card.architecture_family
    if card.architecture:
        params["modelArchitecture"] = card.architecture
    if card.datasets:
        params["datasets"] = [{"ref": f"dataset:{d}"} for d in card.datasets]
    out: dict[str, Any] = {"modelParameters": params}
    if card.languages:
        out["properties"] = [{"name": "language", "value": lang} for lang in card.languages]
    return out


def validate_bom(doc: dict[str, Any]) -> None:
    """Validate against the official CycloneDX 1.6 JSON schema; :class:`ScanError` on any violation."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc))
    if error is not None:
        raise ScanError(f"generated BOM does not validate against CycloneDX 1.6: {error}")
