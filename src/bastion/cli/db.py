"""``bastion db upgrade|status``: manage the database schema."""

from __future__ import annotations

import typer

from bastion.cli.output import FormatOpt, OutputFormat, print_record
from bastion.cli.runtime import settings_from
from bastion.store.engine import make_engine
from bastion.store.migrate import current_revision, head_revision, upgrade

db_app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade_cmd(ctx: typer.Context) -> None:
    """Apply every pending migration (safe to run on each deploy and by several replicas at once)."""
    settings = settings_from(ctx)
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        print_record({"status": "ok", "revision": current_revision(engine)}, OutputFormat.TABLE)
    finally:
        engine.dispose()


@db_app.command("status")
def status_cmd(
    ctx: typer.Context,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Show the current and the newest schema revision; exit 1 when an upgrade is pending."""
    settings = settings_from(ctx)
    engine = make_engine(settings.database_url)
    try:
        current, head = current_revision(engine), head_revision()
    finally:
        engine.dispose()
    print_record({"current": current, "head": head, "up_to_date": current == head}, fmt)
    if current != head:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
