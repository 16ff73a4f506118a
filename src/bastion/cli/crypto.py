"""``bastion encrypt`` / ``decrypt`` / ``erase``, ``bastion tls dev-cert`` and ``bastion keys provider-check`` /
``create-kek`` / ``rotate-kek``.

Key operations run as the local operator (who holds the provider credentials) through
:class:`~bastion.services.keys.KeyService`, so each key use is an audit event.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

from bastion.cli.keys import keys_app
from bastion.cli.output import FormatOpt, OutputFormat, err, print_record, print_rows
from bastion.cli.runtime import settings_from
from bastion.config import Settings
from bastion.crypto.keys.interface import HEALTH_PROBE_KEYS, KeyNotFoundError, KeyProvider
from bastion.errors import ConfigError, InputError
from bastion.services.audit import AuditLog
from bastion.services.keys import KeyService, TrustedLocalOperator, local_operator, provider_from_settings


def _provider(settings: Settings) -> KeyProvider:
    passphrase = None
    c = settings.crypto
    if c.provider == "local" and not os.environ.get(c.local.passphrase_env) and sys.stdin.isatty():
        passphrase = typer.prompt("Local keyring passphrase", hide_input=True, err=True)
    return provider_from_settings(settings, passphrase=passphrase)


@contextmanager
def _service(ctx: typer.Context) -> Iterator[tuple[Settings, KeyService]]:
    settings = settings_from(ctx)
    provider = _provider(settings)
    try:
        with AuditLog.open(settings) as audit:  # closing flushes every key-use event to the ledger
            yield (
                settings,
                KeyService(
                    provider,
                    TrustedLocalOperator(),
                    audit,
                    rotation_days=settings.crypto.rotation_days,
                    rotation_overrides=settings.crypto.rotation_overrides,
                ),
            )
    finally:
        provider.close()


def _progress(total: int) -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def _refuse_keys_beside_data(settings: Settings, output: Path) -> None:
    if settings.crypto.provider != "local":
        return
    ring_dir = settings.crypto.local.path.expanduser().resolve().parent
    if output.resolve().parent == ring_dir:
        raise InputError(
            f"refusing to write encrypted data into the keyring's directory {str(ring_dir)!r}",
            hint="Keep keys apart from the data they protect: choose another output directory.",
        )


InPath = Annotated[Path, typer.Argument(help="Input file.", dir_okay=False)]
OutPath = Annotated[
    Path, typer.Option("--output", "-o", help="Output file (written atomically).", dir_okay=False)
]
Force = Annotated[bool, typer.Option("--force", help="Replace an existing output file.")]


def encrypt_cmd(
    ctx: typer.Context,
    source: InPath,
    output: OutPath,
    object_id: Annotated[
        str | None, typer.Option(help="Object id bound to the file (default: input name).")
    ] = None,
    purpose: Annotated[str, typer.Option(help="What the file is: dataset, model, backup …")] = "file",
    key_id: Annotated[
        str | None, typer.Option(help="KEK to wrap the data key (default: crypto.key_id).")
    ] = None,
    force: Force = False,
) -> None:
    """Encrypt a file (data set, model weights) with a fresh data key wrapped by the configured KEK."""
    from bastion.crypto.files import encrypt_file

    oid = object_id or source.name
    if not source.is_file():
        raise InputError(f"input {str(source)!r} does not exist or is not a file")
    with _service(ctx) as (settings, svc):
        _refuse_keys_beside_data(settings, output)
        provider = svc.provider_for(local_operator(), purpose=purpose, object_id=oid)
        with _progress(source.stat().st_size) as bar:
            task = bar.add_task("encrypting", total=source.stat().st_size)
            header = encrypt_file(
                source, output, provider=provider, key_id=key_id or settings.crypto.key_id, object_id=oid,
                purpose=purpose, overwrite=force, progress=lambda n: bar.advance(task, n),
            )  # fmt: skip
    err.print(
        f"encrypted {source} -> {output} (object {header.object_id!r}, key {header.wrapped.key_id} "
        f"v{header.wrapped.version} via {header.wrapped.provider})",
        highlight=False,
    )


def decrypt_cmd(
    ctx: typer.Context,
    source: InPath,
    output: OutPath,
    expect_object_id: Annotated[
        str | None, typer.Option(help="Refuse a file bound to another object id.")
    ] = None,
    force: Force = False,
) -> None:
    """Decrypt a file; nothing is written unless every segment authenticates."""
    from bastion.crypto.files import decrypt_file
    from bastion.crypto.stream import HEADER_SIZE, parse_header

    if not source.is_file():
        raise InputError(f"input {str(source)!r} does not exist or is not a file")
    with open(source, "rb") as f:
        peek = parse_header(f.read(HEADER_SIZE))
    with _service(ctx) as (_settings, svc):
        provider = svc.provider_for(local_operator(), purpose=peek.purpose, object_id=peek.object_id)
        with _progress(source.stat().st_size) as bar:
            task = bar.add_task("decrypting", total=source.stat().st_size)
            decrypt_file(
                source, output, provider=provider, expected_object_id=expect_object_id, overwrite=force,
                progress=lambda n: bar.advance(task, n),
            )  # fmt: skip
    err.print(f"decrypted {source} -> {output} (object {peek.object_id!r})", highlight=False)


def erase_cmd(
    ctx: typer.Context,
    subject: Annotated[str, typer.Argument(help="The data subject whose recorded content is erased.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Crypto-shred a subject's recorded content (GDPR Art. 17): destroy its data keys."""
    from bastion.services.content_vault import ContentVault
    from bastion.store.content_tables import ContentRecord, ContentSubjectKey
    from bastion.store.engine import make_engine

    if not yes and not typer.confirm(
        f"Destroy every content key of subject {subject!r}? This cannot be undone", err=True
    ):
        raise typer.Exit(1)
    with _service(ctx) as (settings, svc):
        engine = make_engine(settings.database_url)
        try:
            tables = [ContentSubjectKey.__table__, ContentRecord.__table__]
            ContentSubjectKey.metadata.create_all(engine, tables=tables)  # type: ignore[arg-type]
            result = ContentVault(engine, svc, key_id=settings.crypto.key_id).erase(local_operator(), subject)
        finally:
            engine.dispose()
    err.print(
        f"erased subject sha256:{result.subject_sha256[:16]}…: {result.keys_destroyed} key(s) destroyed, "
        f"{result.records_unreadable} record(s) now unreadable",
        highlight=False,
    )


def provider_check_cmd(ctx: typer.Context, fmt: FormatOpt = OutputFormat.TABLE) -> None:
    """Round-trip the configured key provider, list its keys and flag overdue rotations."""
    with _service(ctx) as (settings, svc):
        health = svc.check()
        keys = [k for k in svc.provider.list_keys() if k.key_id not in HEALTH_PROBE_KEYS]
        overdue = {k.key_id for k in svc.check_rotation()}
        configured_present = any(k.key_id == settings.crypto.key_id for k in keys)
    print_record(
        {
            "provider": health.provider,
            "ok": health.ok,
            "detail": health.detail,
            "wrap_unwrap_us": None if health.wrap_unwrap_us is None else round(health.wrap_unwrap_us, 1),
            "configured_key": settings.crypto.key_id
            + ("" if configured_present else " (MISSING: bastion keys create-kek)"),
        },
        fmt,
    )
    rows = [
        {
            "key_id": k.key_id,
            "active_version": k.active.version,
            "versions": ",".join(f"v{v.version}:{v.state.value}" for v in k.versions),
            "created": k.active.created_at.isoformat(timespec="seconds"),
            "overdue": k.key_id in overdue,
        }
        for k in keys
    ]
    if fmt is OutputFormat.TABLE:
        print_rows(rows, ["key_id", "active_version", "versions", "created", "overdue"], fmt, title="keys")
    if not health.ok or not configured_present:
        raise typer.Exit(1)


def create_kek_cmd(
    ctx: typer.Context,
    key_id: Annotated[str | None, typer.Option(help="KEK id (default: crypto.key_id).")] = None,
) -> None:
    """Create the KEK that wraps data keys."""
    with _service(ctx) as (settings, svc):
        info = svc.create(local_operator(), key_id or settings.crypto.key_id)
    err.print(f"created key {info.key_id} v{info.active.version} in {svc.provider.name}", highlight=False)


def rotate_kek_cmd(
    ctx: typer.Context,
    rewrap: Annotated[
        list[Path] | None, typer.Option("--rewrap", help="Encrypted file to re-wrap (repeatable).")
    ] = None,
    retire: Annotated[
        bool, typer.Option(help="Destroy older versions after every re-wrap succeeded.")
    ] = False,
    key_id: Annotated[str | None, typer.Option(help="KEK id (default: crypto.key_id).")] = None,
) -> None:
    """Rotate the KEK and re-wrap data keys (content vault, listed files) without re-encrypting data."""
    from bastion.crypto.files import rewrap_file
    from bastion.services.content_vault import ContentVault
    from bastion.store.engine import make_engine

    operator = local_operator()
    with _service(ctx) as (settings, svc):
        kid = key_id or settings.crypto.key_id
        try:
            info = svc.rotate(operator, kid)
        except KeyNotFoundError as e:
            raise ConfigError(f"{e.message}", hint="Create it first: `bastion keys create-kek`.") from e
        err.print(f"rotated {kid}: active version v{info.active.version}", highlight=False)
        engine = make_engine(settings.database_url)
        try:
            from sqlalchemy import inspect

            n = 0
            if inspect(engine).has_table("content_subject_keys"):
                n = ContentVault(engine, svc, key_id=kid).rewrap_keys(operator)
        finally:
            engine.dispose()
        err.print(f"re-wrapped {n} content subject key(s)")
        for path in rewrap or []:
            with open(path, "rb") as f:
                from bastion.crypto.stream import HEADER_SIZE, parse_header

                peek = parse_header(f.read(HEADER_SIZE))
            view = svc.provider_for(operator, purpose=peek.purpose, object_id=peek.object_id)
            header = rewrap_file(path, provider=view, key_id=kid)
            err.print(f"re-wrapped {path} -> v{header.wrapped.version}", highlight=False)
        if retire:
            svc.retire(operator, kid, info.active.version)
            err.print(f"retired versions of {kid} below v{info.active.version}", highlight=False)


def dev_cert_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the PEM files.")] = Path(
        ".bastion/tls"
    ),
    host: Annotated[list[str] | None, typer.Option("--host", help="Server name or IP (repeatable).")] = None,
    client: Annotated[
        list[str] | None, typer.Option("--client", help="Client certificate CN (repeatable).")
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=825)] = 30,
    force: Force = False,
) -> None:
    """Write a self-signed development CA and a server certificate (development only)."""
    from bastion.crypto.tls import make_dev_certs

    certs = make_dev_certs(
        out_dir, host or ["localhost", "127.0.0.1", "::1"], clients=client or [], days=days, overwrite=force
    )
    err.print(
        f"wrote {certs.ca_cert}, {certs.server_cert}, {certs.server_key}"
        + "".join(f", {c}" for c, _k in certs.clients)
        + "\n[yellow]development only[/]: set server.tls_cert_file / tls_key_file to these files",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add the encryption commands to the root app."""
    app.command("encrypt")(encrypt_cmd)
    app.command("decrypt")(decrypt_cmd)
    app.command("erase")(erase_cmd)
    tls_app = typer.Typer(name="tls", help="TLS certificates.", no_args_is_help=True)
    tls_app.command("dev-cert")(dev_cert_cmd)
    app.add_typer(tls_app)
    keys_app.command("provider-check")(provider_check_cmd)
    keys_app.command("create-kek")(create_kek_cmd)
    keys_app.command("rotate-kek")(rotate_kek_cmd)
