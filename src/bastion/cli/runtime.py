"""What CLI commands share: the settings the root ``--config`` option points at, the services
built from them, and the actor name under which a CLI change is recorded in the ledger."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from bastion.config import Settings, load_settings
from bastion.domain.events import AuditEvent
from bastion.services.audit import AuditLog
from bastion.services.runtime import Runtime


def settings_from(ctx: typer.Context) -> Settings:
    """The validated settings for this invocation (``--config`` / ``BASTION_CONFIG`` / ./bastion.yaml)."""
    root = ctx.find_root()
    path = (root.obj or {}).get("config") if root.obj else None
    return load_settings(path)


@contextmanager
def runtime_from(ctx: typer.Context) -> Iterator[Runtime]:
    """The services for this invocation, closed (ledger flushed) when the command ends."""
    rt = Runtime.open(settings_from(ctx))
    try:
        yield rt
    finally:
        rt.close()


def cli_actor() -> str:
    """Who ran this command, as recorded in the ledger (``cli:<os user>``)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"cli:{user}"


def record_event(ctx: typer.Context, event: AuditEvent) -> None:
    """Append ``event`` to the ledger of this invocation's settings; returns once it is durable."""
    with AuditLog.open(settings_from(ctx)) as log:
        log.record(event)
