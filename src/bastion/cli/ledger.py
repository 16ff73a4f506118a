"""``bastion ledger verify|export|tail|proof|public-key``: the tamper-evident audit ledger.

``verify`` exits 0 when the ledger is intact and 1 otherwise; ``--format json`` prints the report
(``ok``, ``entries_checked``, ``first_bad_seq``, ``reason``, ``bad_tree_head`` …). ``export`` writes JSON
Lines that ``docs/examples/verify_export.py`` checks without Bastion (see docs/ledger.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from bastion.cli.output import FormatOpt, OutputFormat, err, out, print_json, print_record, print_rows
from bastion.cli.runtime import cli_actor, runtime_from
from bastion.services.audit import public_key_pem

ledger_app = typer.Typer(
    help="Verify, export and read the tamper-evident audit ledger.", no_args_is_help=True
)


@ledger_app.command("verify")
def verify(ctx: typer.Context, fmt: FormatOpt = OutputFormat.TABLE) -> None:
    """Recompute every hash, the chain and every tree head; exit 1 and name the first bad entry if any."""
    with runtime_from(ctx) as rt:
        report = rt.audit.verify(actor=cli_actor())
    if fmt is OutputFormat.JSON:
        print_json(report.to_json())
    elif report.ok:
        out.print(
            f"[green]ledger intact[/]: {report.entries_checked} entries, "
            f"{report.tree_heads_checked} signed tree heads verified",
            highlight=False,
        )
    else:
        err.print("[bold red]LEDGER NOT INTACT[/]", highlight=False)
        print_record(
            {
                "first bad entry": report.first_bad_seq if report.first_bad_seq is not None else "-",
                "reason": report.reason,
                "bad tree head": report.bad_tree_head if report.bad_tree_head is not None else "-",
                "entries checked": report.entries_checked,
            },
            fmt,
        )
    if not report.ok:
        raise typer.Exit(1)


@ledger_app.command("export")
def export(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write (JSON Lines).")],
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Sign a tree head at the end of the log and write entries, tree heads and consistency proofs."""
    with runtime_from(ctx) as rt:
        summary = rt.audit.export(output, actor=cli_actor())
    head = summary.tree_head
    print_record(
        {
            "file": str(output),
            "entries": summary.entries,
            "tree_heads": summary.tree_heads,
            "consistency_proofs": summary.consistency_proofs,
            "tree_size": head.tree_size if head else 0,
            "root_hash": head.root_hash.hex() if head else "",
        },
        fmt,
    )


@ledger_app.command("tail")
def tail(
    ctx: typer.Context,
    n: Annotated[int, typer.Option("-n", "--lines", min=0, max=100_000, help="How many entries.")] = 20,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """The last N entries, oldest first."""
    with runtime_from(ctx) as rt:
        entries = rt.audit.tail(n)
    rows: list[dict[str, Any]] = [e.to_json() for e in entries]
    if fmt is OutputFormat.TABLE:
        for row in rows:
            row["attributes"] = json.dumps(row["attributes"], ensure_ascii=False, sort_keys=True)
    print_rows(rows, ("seq", "time", "tag", "actor", "target", "outcome", "attributes"), fmt, title="ledger")


@ledger_app.command("proof")
def proof(
    ctx: typer.Context,
    seq: Annotated[int, typer.Argument(min=0, help="The entry to prove.")],
    fmt: FormatOpt = OutputFormat.JSON,
) -> None:
    """An inclusion proof of entry SEQ against a freshly signed tree head."""
    with runtime_from(ctx) as rt:
        head = rt.audit.sign_tree_head()
        incl = rt.audit.inclusion_proof(seq, head.tree_size)
    data = {"tree_head": head.to_json(), "inclusion_proof": incl.to_json()}
    if fmt is OutputFormat.JSON:
        print_json(data)
    else:
        print_record({**incl.to_json(), "root_hash": head.root_hash.hex()}, fmt)


@ledger_app.command("public-key")
def public_key(ctx: typer.Context) -> None:
    """The PEM public key that verifies tree heads (give it to auditors out of band)."""
    with runtime_from(ctx) as rt:
        pem = public_key_pem(rt.audit.public_key)
    out.print(pem, end="", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(ledger_app, name="ledger")
