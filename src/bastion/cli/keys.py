"""``bastion keys create|list|revoke|rotate``: API keys (the secret is shown once, stored only as a hash).

Other modules attach more key commands to :data:`keys_app` (``provider-check``, ``rotate-kek``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from bastion.cli.output import FormatOpt, OutputFormat, err, print_json, print_record, print_rows
from bastion.cli.runtime import cli_actor, runtime_from
from bastion.domain.identity import KeyScope, PrincipalKind, Role
from bastion.errors import InputError

keys_app = typer.Typer(
    help="Create, list, revoke and rotate API keys; manage encryption keys.", no_args_is_help=True
)

_KEY_COLUMNS = ("key_id", "principal", "name", "created_at", "expires_at", "last_used_at", "revoked_at")


@keys_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Option("--name", help="Key name; also the new principal's name unless --principal.")
    ],
    role: Annotated[
        list[Role] | None,
        typer.Option("--role", help="Role of the new principal (repeatable).", case_sensitive=False),
    ] = None,
    principal: Annotated[
        str | None, typer.Option("--principal", help="Add the key to this existing principal (id or name).")
    ] = None,
    team: Annotated[str | None, typer.Option("--team", help="Team of the new principal.")] = None,
    kind: Annotated[
        PrincipalKind, typer.Option("--kind", help="Kind of the new principal.")
    ] = PrincipalKind.SERVICE,
    expires: Annotated[
        int | None, typer.Option("--expires", min=1, help="Expire after this many days.")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Only these models (repeatable).")
    ] = None,
    allow_ip: Annotated[
        list[str] | None, typer.Option("--allow-ip", help="Only from these IPs/CIDRs (repeatable).")
    ] = None,
    rpm: Annotated[int | None, typer.Option("--rpm", min=1, help="Requests per minute for this key.")] = None,
    tpm: Annotated[int | None, typer.Option("--tpm", min=1, help="Tokens per minute for this key.")] = None,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Create an API key and print its secret ONCE (it is stored only as a hash).

    Without --principal, a new principal named NAME is created with the given --role(s) and --team.
    """
    actor = cli_actor()
    scope = KeyScope(
        models=tuple(model or ()),
        source_cidrs=tuple(allow_ip or ()),
        requests_per_minute=rpm,
        tokens_per_minute=tpm,
    )
    with runtime_from(ctx) as rt:
        if principal is None:
            if not role:
                raise InputError(
                    "a new principal needs at least one --role", hint="e.g. --role user; or --principal"
                )
            owner = rt.identity.create_principal(name, kind=kind, roles=role, team=team, actor=actor)
        else:
            if role or team:
                raise InputError(
                    "--role/--team describe a new principal; change an existing one with `principals update`"
                )
            owner = rt.identity.get_principal(principal)
        created = rt.identity.create_key(
            owner.id,
            name=name,
            expires_in=timedelta(days=expires) if expires else None,
            scope=scope,
            actor=actor,
        )
    record = {**created.key.to_dict(), "principal": owner.name, "roles": sorted(r.value for r in owner.roles)}
    record["key"] = created.token
    if fmt is OutputFormat.JSON:
        print_json(record)
    else:
        print_record(record, fmt)
        err.print("[yellow]Store the key now: it is shown only once.[/]")


@keys_app.command("list")
def list_keys(
    ctx: typer.Context,
    principal: Annotated[str | None, typer.Option("--principal", help="Only this principal's keys.")] = None,
    include_revoked: Annotated[
        bool, typer.Option("--include-revoked", help="Also list revoked keys.")
    ] = False,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """List API keys (never their secrets)."""
    with runtime_from(ctx) as rt:
        names = {p.id: p.name for p in rt.identity.list_principals()}
        rows = [
            {**k.to_dict(), "principal": names.get(k.principal_id, k.principal_id)}
            for k in rt.identity.list_keys(principal, include_revoked=include_revoked)
        ]
    print_rows(rows, _KEY_COLUMNS, fmt, title="API keys")


@keys_app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key id (the part after the prefix).")],
    reason: Annotated[str, typer.Option("--reason", help="Recorded in the ledger.")] = "revoked",
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Revoke a key at once."""
    with runtime_from(ctx) as rt:
        rec = rt.identity.revoke_key(key_id, actor=cli_actor(), reason=reason)
    print_record(rec.to_dict(), fmt)


@keys_app.command("rotate")
def rotate(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key id to replace.")],
    overlap_minutes: Annotated[
        int, typer.Option("--overlap-minutes", min=0, help="Keep the old key valid this long.")
    ] = 0,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Issue a new secret for a key (same principal and scope) and revoke the old one."""
    with runtime_from(ctx) as rt:
        created = rt.identity.rotate_key(
            key_id, overlap=timedelta(minutes=overlap_minutes), actor=cli_actor()
        )
    record = {**created.key.to_dict(), "key": created.token}
    if fmt is OutputFormat.JSON:
        print_json(record)
    else:
        print_record(record, fmt)
        err.print("[yellow]Store the new key now: it is shown only once.[/]")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
