"""``bastion policy explain PRINCIPAL OPERATION RESOURCE``: why a request would be allowed or denied."""

from __future__ import annotations

from typing import Annotated

import typer

from bastion.cli.output import FormatOpt, OutputFormat, out, print_json
from bastion.cli.runtime import runtime_from
from bastion.config import Settings
from bastion.domain.access import Operation, Resource
from bastion.errors import InputError

policy_app = typer.Typer(help="Explain authorization decisions.", no_args_is_help=True)


def resource_from(spec: str, attrs: list[str] | None, settings: Settings) -> Resource:
    """Parse ``TYPE:ID`` (``model:demo``); a configured model gets its attributes from gateway.models."""
    rtype, sep, rid = spec.partition(":")
    if not sep or not rtype or not rid:
        raise InputError(f"resource must look like TYPE:ID (e.g. model:demo), got {spec!r}")
    attributes: dict[str, str] = {}
    if rtype == "model" and rid in settings.gateway.models:
        attributes.update({"model": rid, **settings.gateway.models[rid].attributes})
    for pair in attrs or ():
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise InputError(f"--attr expects KEY=VALUE, got {pair!r}")
        attributes[key] = value
    return Resource(rtype, rid, attributes)


@policy_app.command("explain")
def explain(
    ctx: typer.Context,
    principal: Annotated[str, typer.Argument(help="Principal id or name.")],
    operation: Annotated[
        Operation, typer.Argument(help="Operation, e.g. model:invoke.", case_sensitive=False)
    ],
    resource: Annotated[str, typer.Argument(help="TYPE:ID, e.g. model:demo or apikey:*.")],
    attr: Annotated[
        list[str] | None, typer.Option("--attr", help="Resource attribute KEY=VALUE (repeatable).")
    ] = None,
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Show the decision and the policies that made it. Exit 0 when allowed, 1 when denied."""
    with runtime_from(ctx) as rt:
        who = rt.identity.get_principal(principal).to_principal()
        res = resource_from(resource, attr, rt.settings)
        explanation = rt.authorizer.explain(who, operation, res)
    data = explanation.to_dict()
    if fmt is OutputFormat.JSON:
        print_json(data)
    else:
        verdict = "[green]ALLOW[/]" if data["allowed"] else "[red]DENY[/]"
        out.print(f"{verdict}  {who.name} → {operation.value} → {res.type}:{res.id}", highlight=False)
        for p in data["policies"]:
            out.print(
                f"  {p['effect']:<7} {p['id']}: {p['reason']}  ({p['source']})", highlight=False, markup=False
            )
        if not data["policies"]:
            for reason in data.get("reasons", []):
                out.print(f"  {reason}", markup=False)
        for reason in data.get("errors", []) or []:
            out.print(f"  error: {reason}", markup=False)
    if not data["allowed"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
