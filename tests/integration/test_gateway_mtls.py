"""Mutual TLS: a verified client certificate authenticates its mapped service principal at the gateway.

Real TLS on loopback with certificates from ``make_dev_certs`` (what ``bastion tls dev-cert`` writes),
the server protocol ``bastion serve`` uses when ``tls.client_ca_file`` is set, and the real app.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import text

from bastion.app import create_app
from bastion.config import load_settings
from bastion.crypto.tls import make_dev_certs, server_context
from bastion.domain.identity import PrincipalKind, Role
from bastion.gateway.tls_scope import ClientCertHttpToolsProtocol
from bastion.services.runtime import Runtime
from support.net import free_port, serve_config


@pytest.fixture
def mtls(tmp_path: Path) -> Iterator[tuple[str, Path, Runtime]]:
    certs = make_dev_certs(tmp_path / "tls", clients=["ingest", "stranger"])
    settings = load_settings(
        None,
        data_dir=str(tmp_path / "data"),
        server={"tls_cert_file": str(certs.server_cert), "tls_key_file": str(certs.server_key)},
        tls={"client_ca_file": str(certs.ca_cert), "client_principals": {"CN=ingest": "ingest-svc"}},
    )
    rt = Runtime.open(settings)
    rt.identity.create_principal("ingest-svc", kind=PrincipalKind.SERVICE, roles=[Role.USER])
    config = uvicorn.Config(
        create_app(settings, rt),
        host="127.0.0.1",
        port=free_port(),
        log_level="error",
        http=ClientCertHttpToolsProtocol,
        ssl_certfile=str(certs.server_cert),
        ssl_keyfile=str(certs.server_key),
    )
    config.load()
    config.ssl = server_context(certs.server_cert, certs.server_key, client_ca_file=certs.ca_cert)
    try:
        with serve_config(config) as url:
            yield url, tmp_path / "tls", rt
    finally:
        rt.close()


def _client(tls_dir: Path, name: str | None) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(tls_dir / "ca.pem"))
    if name is not None:
        ctx.load_cert_chain(str(tls_dir / f"client-{name}.pem"), str(tls_dir / f"client-{name}-key.pem"))
    return httpx.Client(verify=ctx, timeout=10)


BODY = {"model": "bastion-demo", "messages": [{"role": "user", "content": "hello over mTLS"}]}


def test_mapped_client_certificate_authenticates_its_service_principal(
    mtls: tuple[str, Path, Runtime],
) -> None:
    url, tls_dir, rt = mtls
    with _client(tls_dir, "ingest") as c:
        r = c.post(url + "/v1/chat/completions", json=BODY)
    assert r.status_code == 200, r.text
    with rt.engine.connect() as conn:
        rows = conn.execute(text("SELECT tag, canonical FROM ledger_entries ORDER BY seq")).all()
    done = [json.loads(c) for t, c in rows if t == "gateway:request:completed"]
    assert done[-1]["attributes"]["auth_method"] == "mtls"
    assert done[-1]["actor"] == rt.identity.get_principal("ingest-svc").id


def test_unmapped_certificate_and_no_certificate_are_refused_and_recorded(
    mtls: tuple[str, Path, Runtime],
) -> None:
    url, tls_dir, rt = mtls
    with _client(tls_dir, "stranger") as c:
        assert c.post(url + "/v1/chat/completions", json=BODY).status_code == 401
    with _client(tls_dir, None) as c:  # optional client certificates: no cert, no key -> 401
        assert c.post(url + "/v1/chat/completions", json=BODY).status_code == 401
    with rt.engine.connect() as conn:
        rows = conn.execute(text("SELECT tag, canonical FROM ledger_entries ORDER BY seq")).all()
    failed = [json.loads(c)["attributes"] for t, c in rows if t == "identity:authentication:failed"]
    assert {"method": "mtls", "reason": "unknown_certificate"}.items() <= failed[0].items()


def test_a_disabled_service_principal_cannot_use_its_certificate(mtls: tuple[str, Path, Runtime]) -> None:
    url, tls_dir, rt = mtls
    rt.identity.update_principal("ingest-svc", disabled=True)
    with _client(tls_dir, "ingest") as c:
        assert c.post(url + "/v1/chat/completions", json=BODY).status_code == 401
