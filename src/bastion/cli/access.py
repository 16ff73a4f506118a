"""``bastion access review|decide``: periodic access reviews with decisions recorded in the ledger."""

from __future__ import annotations

from typing import Annotated

import typer

from bastion.cli.output import FormatOpt, OutputFormat, print_json, print_record, print_rows
from bastion.cli.runtime import cli_actor, runtime_from
from bastion.services.access_review import ReviewDecision

access_app = typer.Typer(help="Review who may do what, and act on it.", no_args_is_help=True)


@access_app.command("review")
def review(
    ctx: typer.Context,
    unused_days: Annotated[
        int, typer.Option("--unused-days", min=1, help="Flag keys unused this long.")
    ] = 90,
    flagged_only: Annotated[
        bool, typer.Option("--flagged", help="Only keys with at least one flag.")
    ] = False,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """List every grant with its last use and flags (unused, expired but present, broader than use …).

    Exit 1 when anything is flagged, so a scheduled job can alert on it.
    """
    with runtime_from(ctx) as rt:
        result = rt.access.review(unused_days=unused_days)
    flagged = result.flagged_keys()
    if fmt is OutputFormat.JSON:
        print_json(result.to_dict())
    else:
        rows = [
            {
                "key_id": k.key.key_id,
                "principal": g.principal.name,
                "roles": ",".join(sorted(r.value for r in g.principal.roles)),
                "last_used_at": k.key.last_used_at,
                "expires_at": k.key.expires_at,
                "flags": ",".join(f.value for f in k.flags),
            }
            for g in result.grants
            for k in g.keys
            if k.flags or not flagged_only
        ]
        print_rows(
            rows,
            ("key_id", "principal", "roles", "last_used_at", "expires_at", "flags"),
            fmt,
            title="Access review",
        )
    if flagged:
        raise typer.Exit(1)


@access_app.command("decide")
def decide(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key id under review.")],
    decision: Annotated[ReviewDecision, typer.Argument(help="keep or revoke.", case_sensitive=False)],
    note: Annotated[str | None, typer.Option("--note", help="Reviewer's note (recorded).")] = None,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Record a reviewer's decision on a key; revoke takes effect at once."""
    with runtime_from(ctx) as rt:
        rec = rt.access.decide_key(key_id, decision, reviewer=cli_actor(), note=note)
    print_record({**rec.to_dict(), "decision": decision.value}, fmt)


def register(app: typer.Typer) -> None:
    app.add_typer(access_app, name="access")
