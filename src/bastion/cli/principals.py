"""``bastion principals create|list|show|update``: users, service accounts and teams."""

from __future__ import annotations

from typing import Annotated

import typer

from bastion.cli.output import FormatOpt, OutputFormat, print_record, print_rows
from bastion.cli.runtime import cli_actor, runtime_from
from bastion.domain.identity import PrincipalKind, Role
from bastion.errors import InputError

principals_app = typer.Typer(
    help="Manage principals: users, service accounts and teams.", no_args_is_help=True
)
_COLUMNS = ("id", "kind", "name", "roles", "team", "disabled", "created_at")


def _attrs(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--attr expects KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


@principals_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Unique name.")],
    kind: Annotated[
        PrincipalKind, typer.Option("--kind", help="user, service or team.")
    ] = PrincipalKind.USER,
    role: Annotated[
        list[Role] | None, typer.Option("--role", help="Role (repeatable).", case_sensitive=False)
    ] = None,
    team: Annotated[str | None, typer.Option("--team", help="Team name.")] = None,
    attr: Annotated[
        list[str] | None, typer.Option("--attr", help="Attribute KEY=VALUE (repeatable).")
    ] = None,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Create a principal."""
    with runtime_from(ctx) as rt:
        rec = rt.identity.create_principal(
            name, kind=kind, roles=role or (), team=team, attributes=_attrs(attr), actor=cli_actor()
        )
    print_record(rec.to_dict(), fmt)


@principals_app.command("list")
def list_cmd(ctx: typer.Context, fmt: FormatOpt = OutputFormat.TABLE) -> None:
    """List every principal."""
    with runtime_from(ctx) as rt:
        rows = [p.to_dict() for p in rt.identity.list_principals()]
    print_rows(rows, _COLUMNS, fmt, title="Principals")


@principals_app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Id or name.")],
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Show one principal."""
    with runtime_from(ctx) as rt:
        rec = rt.identity.get_principal(ref)
    print_record(rec.to_dict(), fmt)


@principals_app.command("update")
def update(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Id or name.")],
    role: Annotated[
        list[Role] | None,
        typer.Option("--role", help="Replace the roles (repeatable).", case_sensitive=False),
    ] = None,
    attr: Annotated[list[str] | None, typer.Option("--attr", help="Replace attributes KEY=VALUE.")] = None,
    disable: Annotated[bool | None, typer.Option("--disable/--enable", help="Disable or re-enable.")] = None,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Change a principal's roles, attributes or disabled flag (takes effect at once)."""
    with runtime_from(ctx) as rt:
        rec = rt.identity.update_principal(
            ref, roles=role, attributes=_attrs(attr), disabled=disable, actor=cli_actor()
        )
    print_record(rec.to_dict(), fmt)


def register(app: typer.Typer) -> None:
    app.add_typer(principals_app, name="principals")
