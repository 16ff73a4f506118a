"""``bastion serve``: run the gateway and the admin API.

The first start on an empty database creates the admin principal and prints its API key once,
with a ``curl`` command that makes a chat completion through Bastion.
"""

from __future__ import annotations

import math
import os
import shlex
import ssl
import sys
from typing import Annotated, Any

import typer
import uvicorn

from bastion.cli.output import err
from bastion.cli.runtime import settings_from
from bastion.config import CONFIG_ENV, Settings, config_path
from bastion.logging import configure_logging
from bastion.services.runtime import Runtime

DEMO_PROMPT = "Hello, Bastion!"
APP_FACTORY = "bastion.app:create_app_from_env"
MODERN_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def curl_example(settings: Settings, host: str, port: int, key: str) -> str:
    """A copy-paste ``curl`` that sends one chat completion through Bastion."""
    scheme = "https" if settings.server.tls_cert_file else "http"
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - only formats the hint
    model = next(iter(settings.gateway.models), "bastion-demo")
    body = f'{{"model": "{model}", "messages": [{{"role": "user", "content": "{DEMO_PROMPT}"}}]}}'
    return (
        f"curl -s {scheme}://{shown}:{port}/v1/chat/completions \\\n"
        f"  -H {shlex.quote('Authorization: Bearer ' + key)} \\\n"
        f"  -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(body)}"
    )


def _announce(settings: Settings, rt: Runtime, host: str, port: int) -> None:
    created = rt.identity.bootstrap_admin()
    if created is None:
        err.print(
            "Bastion is starting. Create a key with: "
            "[bold]bastion keys create --name me --role user --format json[/]",
            highlight=False,
        )
        return
    # Plain text, never wrapped or cropped: the key and the command must survive copy and paste.
    sys.stdout.write(
        "\n== Bastion first start ==\n"
        f"Admin API key (shown once, store it now):\n\n  {created.token}\n\n"
        "Try the gateway from another terminal:\n\n"
        f"{curl_example(settings, host, port, created.token)}\n\n"
    )
    sys.stdout.flush()


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Bind address (default: server.host).")] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port (default: server.port).", min=1, max=65535)
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Worker processes (default: server.workers).")
    ] = None,
) -> None:
    """Run the OpenAI-compatible gateway and the admin API until interrupted."""
    # Options become BASTION_SERVER__* variables: validated like the file (an insecure bind is still
    # refused outside development) and inherited by worker processes.
    for key, value in (("HOST", host), ("PORT", port), ("WORKERS", workers)):
        if value is not None:
            os.environ[f"BASTION_SERVER__{key}"] = str(value)
    settings = settings_from(ctx)
    configure_logging(settings.log_level)
    h, p, n = settings.server.host, settings.server.port, settings.server.workers
    rt = Runtime.open(settings)
    try:
        _announce(settings, rt, h, p)
    finally:
        rt.close()
    # Each worker builds the app from the same settings (config file and environment); the
    # composition root (bastion.app, above the CLI) is named, not imported.
    root = ctx.find_root().obj or {}
    path = config_path(root.get("config"))
    if path:
        os.environ[CONFIG_ENV] = str(path.resolve())
    options = uvicorn_options(settings)
    if n > 1:
        # Each worker builds the app itself, and uvicorn restarts a worker that fails to start for
        # ever: what would fail there (a TLS pair, a provider key, a CA file) is reported once, here.
        check_tls(settings)
        check_upstreams(settings)
        uvicorn.run(APP_FACTORY, workers=n, **options)
        return
    config = uvicorn.Config(APP_FACTORY, **options)
    _install_tls_context(config, settings)
    uvicorn.Server(config).run()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings for the gateway's server (one worker or several)."""
    options: dict[str, Any] = {
        "factory": True,
        "host": settings.server.host,
        "port": settings.server.port,
        "access_log": False,
        # uvicorn's own X-Forwarded-For handling (on by default, trusting 127.0.0.1) would rewrite the
        # peer address behind Bastion's back: a loopback caller could claim any client IP and pass a
        # key's source-CIDR rule. gateway.trust_forwarded_for is the one switch for that.
        "proxy_headers": False,
        "server_header": False,  # no "server: uvicorn" on every answer: nothing to fingerprint
        "log_level": settings.log_level,
        # whole seconds; rounded up, as int(0.5) would be 0: no graceful wait at all
        "timeout_graceful_shutdown": math.ceil(settings.gateway.drain_timeout_s),
        **_tls_kwargs(settings),
    }
    if settings.tls.client_ca_file is not None:
        # Hands the verified client certificate to the gateway (mTLS service principals).
        options["http"] = "bastion.gateway.tls_scope:ClientCertHttpToolsProtocol"
    return options


def _tls_kwargs(settings: Settings) -> dict[str, Any]:
    s = settings.server
    if s.tls_cert_file is None or s.tls_key_file is None:
        return {}
    # Used as is by several workers; one worker gets Bastion's own context (_install_tls_context).
    out: dict[str, Any] = {
        "ssl_certfile": str(s.tls_cert_file),
        "ssl_keyfile": str(s.tls_key_file),
        "ssl_ciphers": MODERN_CIPHERS,
    }
    if settings.tls.client_ca_file is not None:  # client certificates are checked in every worker
        out["ssl_ca_certs"] = str(settings.tls.client_ca_file)
        out["ssl_cert_reqs"] = ssl.CERT_REQUIRED if settings.tls.client_cert_required else ssl.CERT_OPTIONAL
    return out


def check_tls(settings: Settings) -> ssl.SSLContext | None:
    """Bastion's server TLS context for ``settings`` (None without TLS); a missing, unreadable or
    mismatched certificate and key, or client CA, is a :class:`ConfigError`, not a traceback."""
    s = settings.server
    if s.tls_cert_file is None or s.tls_key_file is None:
        return None
    from bastion.crypto.tls import server_context

    return server_context(
        s.tls_cert_file,
        s.tls_key_file,
        client_ca_file=settings.tls.client_ca_file,
        client_cert_required=settings.tls.client_cert_required,
    )


def check_upstreams(settings: Settings) -> None:
    """:class:`ConfigError` for an upstream the gateway could not build: its provider key variable
    unset or unusable, or its CA bundle or client certificate unreadable."""
    from bastion.crypto.tls import client_context

    for name, up in settings.gateway.upstreams.items():
        if up.type != "openai":
            continue
        up.provider_key(name)
        if up.ca_file is not None or up.client_cert_file is not None:
            client_context(up.ca_file, cert_file=up.client_cert_file, key_file=up.client_key_file)


def _install_tls_context(config: uvicorn.Config, settings: Settings) -> None:
    """Replace uvicorn's TLS context with Bastion's (TLS 1.2+, AEAD ciphers, mTLS, reload on change)."""
    s = settings.server
    ctx = check_tls(settings)  # first: uvicorn's own loading would fail with a traceback
    if ctx is None or s.tls_cert_file is None or s.tls_key_file is None:
        return
    from bastion.crypto.tls import CertificateReloader

    config.load()
    config.ssl = ctx
    CertificateReloader(ctx, s.tls_cert_file, s.tls_key_file).start(settings.tls.reload_interval_s)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
