"""Entry point of the ``bastion`` command and its single error boundary.

Exit codes (stable, documented in docs/cli.md):
    0  success
    1  findings at or above --fail-on, or a failed check (ledger verify, config check)
    2  usage or configuration error
    3  any other Bastion error (store unavailable, upstream failure …)
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated

import typer
from rich.markup import escape

from bastion.cli.output import err
from bastion.errors import BastionError, ConfigError, InputError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ERROR = 3

app = typer.Typer(
    name="bastion",
    help="Bastion: the security platform for AI systems. Gateway, audit ledger, scanners, keys.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module registers its noun(s) on the root app; a module that is missing (not built yet)
# is skipped so the rest of the CLI keeps working.
_COMMAND_MODULES = (
    "bastion.cli.serve",
    "bastion.cli.config_cmd",
    "bastion.cli.db",
    "bastion.cli.keys",
    "bastion.cli.principals",
    "bastion.cli.policy",
    "bastion.cli.ledger",
    "bastion.cli.access",
    "bastion.cli.scan",
    "bastion.cli.supply_chain",
    "bastion.cli.crypto",
)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        str | None,
        typer.Option(
            "--config", "-c", envvar="BASTION_CONFIG", help="Config file (default: ./bastion.yaml)."
        ),
    ] = None,
) -> None:
    ctx.obj = {"config": config}


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue
            raise
        module.register(app)


_register_all()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map Bastion errors to exit codes (the one place that does so)."""
    try:
        # Outside standalone mode click returns the code of a typer.Exit instead of raising it.
        rc = app(args=argv, standalone_mode=False)
    except BastionError as e:
        err.print(f"[bold red]error[/] \\[{e.code}]: {escape(e.diagnostics())}", highlight=False)
        return EXIT_USAGE if isinstance(e, ConfigError | InputError) else EXIT_ERROR
    except typer.Exit as e:
        return int(e.exit_code)
    except typer.Abort:
        err.print("aborted")
        return EXIT_ERROR
    except typer.TyperException as e:  # usage errors (bad option values …) in non-standalone mode
        show = getattr(e, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"[bold red]usage error[/]: {escape(str(e))}", highlight=False)
        return EXIT_USAGE
    return rc if isinstance(rc, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
