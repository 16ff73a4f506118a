from __future__ import annotations

import os
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509

from bastion.crypto.tls import (
    CertificateReloader,
    ClientCertMapper,
    DevCerts,
    client_context,
    make_dev_certs,
    server_context,
)
from bastion.errors import ConfigError, InputError


def handshake(
    server: ssl.SSLContext, client: ssl.SSLContext
) -> tuple[bytes | None, bytes | None, str | None]:
    """One TLS handshake over a socket pair: (server cert seen by client, client cert seen by server, version)."""
    a, b = socket.socketpair()
    peer: list[bytes | None] = []
    errors: list[OSError] = []  # ssl.SSLError is an OSError

    def serve() -> None:
        try:
            with server.wrap_socket(a, server_side=True) as s:
                peer.append(s.getpeercert(binary_form=True))
                s.sendall(b"ok")
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=serve)
    t.start()
    try:
        with client.wrap_socket(b, server_hostname="localhost") as c:
            c.recv(2)
            result = (c.getpeercert(binary_form=True), None, c.version())
    finally:
        t.join(5)
    if errors:
        raise errors[0]
    return result[0], peer[0] if peer else None, result[2]


@pytest.fixture
def certs(tmp_path: Path) -> DevCerts:
    return make_dev_certs(tmp_path / "tls", clients=["ingest"])


def test_dev_certs_and_modern_tls(certs: DevCerts) -> None:
    assert certs.ca_key.stat().st_mode & 0o077 == 0
    srv = server_context(certs.server_cert, certs.server_key)
    assert srv.minimum_version is ssl.TLSVersion.TLSv1_2
    for cipher in srv.get_ciphers():
        assert cipher["aead"], cipher["name"]
        assert cipher["protocol"] == "TLSv1.3" or cipher["kea"] == "kx-ecdhe"
    der, _peer, version = handshake(srv, client_context(certs.ca_cert))
    assert der is not None
    assert version in ("TLSv1.2", "TLSv1.3")


def test_tls12_cbc_suites_refused_aead_accepted(certs: DevCerts) -> None:
    srv = server_context(certs.server_cert, certs.server_key)
    cbc = client_context(certs.ca_cert)
    cbc.maximum_version = ssl.TLSVersion.TLSv1_2
    cbc.set_ciphers("ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA")
    with pytest.raises(ssl.SSLError):
        handshake(srv, cbc)
    gcm = client_context(certs.ca_cert)
    gcm.maximum_version = ssl.TLSVersion.TLSv1_2
    gcm.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    assert handshake(srv, gcm)[2] == "TLSv1.2"


def test_mtls_maps_client_subject_to_principal(certs: DevCerts) -> None:
    srv = server_context(
        certs.server_cert, certs.server_key, client_ca_file=certs.ca_cert, client_cert_required=True
    )
    cert, key = certs.clients[0]
    _der, peer, _v = handshake(srv, client_context(certs.ca_cert, cert_file=cert, key_file=key))
    mapper = ClientCertMapper({"CN=ingest": "svc-ingest"})
    assert mapper.principal_for_der(peer) == "svc-ingest"
    assert ClientCertMapper({"CN=other": "x"}).principal_for_der(peer) is None
    assert mapper.principal_for_der(None) is None
    assert mapper.principal_for_der(b"garbage") is None


def test_mtls_required_refuses_anonymous_client(certs: DevCerts) -> None:
    srv = server_context(
        certs.server_cert, certs.server_key, client_ca_file=certs.ca_cert, client_cert_required=True
    )
    with pytest.raises((ssl.SSLError, OSError)):
        handshake(srv, client_context(certs.ca_cert))


def test_reload_on_change_same_context(certs: DevCerts, tmp_path: Path) -> None:
    srv = server_context(certs.server_cert, certs.server_key)
    reloader = CertificateReloader(srv, certs.server_cert, certs.server_key)
    first, _, _ = handshake(srv, client_context(certs.ca_cert))
    assert reloader.check() is False
    # a broken pair is refused and the old certificate keeps serving
    certs.server_key.write_bytes(b"not a key")
    assert reloader.check() is False
    assert reloader.last_error is not None
    again, _, _ = handshake(srv, client_context(certs.ca_cert))
    assert again == first
    # a new valid pair from the same CA is picked up by the same context
    new = make_dev_certs(tmp_path / "new")
    os.replace(new.server_cert, certs.server_cert)
    os.replace(new.server_key, certs.server_key)
    assert reloader.check() is True
    second, _, _ = handshake(srv, client_context(new.ca_cert))
    assert second is not None and second != first
    assert x509.load_der_x509_certificate(second).issuer.rfc4514_string() == "CN=Bastion development CA"


def test_config_errors(certs: DevCerts, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="client_ca_file"):
        server_context(certs.server_cert, certs.server_key, client_cert_required=True)
    with pytest.raises(ConfigError, match="missing"):
        server_context(tmp_path / "nope.pem", certs.server_key)
    with pytest.raises(ConfigError, match="cannot be loaded"):
        server_context(certs.server_cert, certs.ca_key)
    with pytest.raises(ConfigError, match="RFC 4514"):
        ClientCertMapper({"not a subject": "x"})
    with pytest.raises(InputError, match="already exist"):
        make_dev_certs(certs.ca_cert.parent)
    with pytest.raises(InputError, match="client name"):
        make_dev_certs(tmp_path / "x", clients=["../evil"])
