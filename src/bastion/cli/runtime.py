"""What CLI commands share: reading the settings the root ``--config`` option points at."""

from __future__ import annotations

import typer

from bastion.config import Settings, load_settings


def settings_from(ctx: typer.Context) -> Settings:
    """The validated settings for this invocation (``--config`` / ``BASTION_CONFIG`` / ./bastion.yaml)."""
    root = ctx.find_root()
    path = (root.obj or {}).get("config") if root.obj else None
    return load_settings(path)
