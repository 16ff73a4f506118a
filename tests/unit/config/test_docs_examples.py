"""The configuration examples in docs/ are valid configuration."""

from __future__ import annotations

import re
from pathlib import Path

from bastion.config import Environment, load_settings

DOCS = Path(__file__).resolve().parents[3] / "docs"


def test_production_example_in_configuration_doc_validates(tmp_path: Path) -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    assert blocks, "docs/configuration.md lost its YAML example"
    cfg = tmp_path / "bastion.yaml"
    cfg.write_text(blocks[0], encoding="utf-8")
    settings = load_settings(cfg)
    assert settings.environment is Environment.PRODUCTION
    assert settings.database.url is not None
