"""``bastion config check|schema``: validate the configuration, print its JSON Schema."""

from __future__ import annotations

import typer

from bastion.cli.output import FormatOpt, OutputFormat, print_json, print_record
from bastion.cli.runtime import settings_from
from bastion.config import config_path, insecure_settings, settings_schema

config_app = typer.Typer(help="Check the configuration and print its schema.", no_args_is_help=True)


@config_app.command("check")
def check(
    ctx: typer.Context,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Validate bastion.yaml and BASTION_* variables; exit 2 with the offending keys when invalid."""
    settings = settings_from(ctx)  # raises ConfigError -> exit 2 at the boundary
    root = ctx.find_root().obj or {}
    warnings = insecure_settings(settings)
    print_record(
        {
            "status": "ok",
            "file": str(config_path(root.get("config")) or "(none: defaults + environment)"),
            "environment": settings.environment.value,
            "database": "sqlite (embedded)"
            if settings.database.url is None
            else settings.database_url.split("@")[-1],
            "data_dir": str(settings.data_dir),
            "warnings": warnings,
        },
        fmt,
    )


@config_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of bastion.yaml (for editors and validation in CI)."""
    print_json(settings_schema())


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
