"""The ``bastion scan`` group. Its commands live in their own modules and attach themselves here:
``scan_text`` (text, file, prompts) and ``scan_artifacts`` (model, dataset)."""

from __future__ import annotations

import importlib

import typer

scan_app = typer.Typer(help="Scan prompts, text, files, model artifacts and data sets.", no_args_is_help=True)

_SCAN_MODULES = ("bastion.cli.scan_text", "bastion.cli.scan_artifacts")


def register(app: typer.Typer) -> None:
    for name in _SCAN_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
    app.add_typer(scan_app, name="scan")
