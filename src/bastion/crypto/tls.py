"""TLS for the gateway and admin API: server contexts, hot reload, mTLS principals, dev certificates.

* :func:`server_context` — TLS 1.2+ only, ECDHE with AEAD ciphers only (AES-GCM, ChaCha20-Poly1305)
  on TLS 1.2 (TLS 1.3 suites are all AEAD), no compression, no renegotiation; optionally verifies
  client certificates against a CA bundle (mTLS).
* :class:`CertificateReloader` — reloads the certificate and key into the SAME context when the files
  change (``load_cert_chain`` again), so new connections pick up a renewed certificate without a
  restart; a broken new pair is refused and the old one keeps serving.
* :class:`ClientCertMapper` — maps a verified client certificate's subject to a service principal id.
* :func:`make_dev_certs` — a self-signed development CA plus server (and client) certificates.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import re
import ssl
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bastion.errors import ConfigError, InputError

log = logging.getLogger(__name__)

#: TLS 1.2 cipher suites: forward secret and AEAD only.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1:!DSS:!RSA+AES"


def _load_chain(ctx: ssl.SSLContext, cert_file: Path, key_file: Path) -> None:
    try:
        ctx.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    except FileNotFoundError as e:
        raise ConfigError(f"TLS certificate or key file missing: {e.filename}") from e
    except (ssl.SSLError, OSError) as e:
        raise ConfigError(
            f"TLS certificate {str(cert_file)!r} / key {str(key_file)!r} cannot be loaded: {e}",
            hint="Check that both are PEM, that the key matches the certificate, and that it is not encrypted.",
        ) from e


def server_context(
    cert_file: str | Path,
    key_file: str | Path,
    *,
    client_ca_file: str | Path | None = None,
    client_cert_required: bool = False,
) -> ssl.SSLContext:
    """A server-side :class:`ssl.SSLContext` with Bastion's TLS policy."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    ctx.options |= ssl.OP_SINGLE_ECDH_USE
    _load_chain(ctx, Path(cert_file), Path(key_file))
    if client_ca_file is not None:
        try:
            ctx.load_verify_locations(cafile=str(client_ca_file))
        except (ssl.SSLError, OSError) as e:
            raise ConfigError(f"tls.client_ca_file {str(client_ca_file)!r} cannot be loaded: {e}") from e
        ctx.verify_mode = ssl.CERT_REQUIRED if client_cert_required else ssl.CERT_OPTIONAL
    elif client_cert_required:
        raise ConfigError(
            "tls.client_cert_required needs tls.client_ca_file (the CA that signs client certificates)"
        )
    return ctx


def client_context(
    ca_file: str | Path | None, *, cert_file: str | Path | None = None, key_file: str | Path | None = None
) -> ssl.SSLContext:
    """A client context trusting ``ca_file`` (None: the system trust store) and presenting a client
    certificate when one is given (mTLS). Certificates and host names are verified. A CA bundle
    that cannot be loaded, or a bad client pair, is a :class:`ConfigError`."""
    try:
        ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(
            f"the CA bundle {str(ca_file)!r} could not be loaded: {e}",
            hint="Point ca_file at a readable PEM file of CA certificates.",
        ) from e
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None and key_file is not None:
        _load_chain(ctx, Path(cert_file), Path(key_file))
    return ctx


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class CertificateReloader:
    """Reload a context's certificate chain when its files change (same context object)."""

    def __init__(self, context: ssl.SSLContext, cert_file: str | Path, key_file: str | Path) -> None:
        self.context = context
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        self._stamps = (_stamp(self.cert_file), _stamp(self.key_file))
        self.last_error: str | None = None
        self.reloads = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """Reload if either file changed; True when a new pair was loaded.

        A pair that does not load (half-written, mismatched) is refused: the previous certificate
        keeps serving and ``last_error`` says why; the next change is tried again.
        """
        stamps = (_stamp(self.cert_file), _stamp(self.key_file))
        if stamps == self._stamps:
            return False
        try:
            # Validate on a scratch context first so a bad pair never reaches the live one.
            _load_chain(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), self.cert_file, self.key_file)
            _load_chain(self.context, self.cert_file, self.key_file)
        except ConfigError as e:
            self.last_error = e.message
            log.warning("TLS certificate reload refused: %s", e.message)
            return False
        self._stamps = stamps
        self.last_error = None
        self.reloads += 1
        log.info("TLS certificate reloaded from %s", self.cert_file)
        return True

    def start(self, interval_s: float = 5.0) -> None:
        """Poll in a daemon thread every ``interval_s`` seconds."""
        if self._thread is not None:
            return

        def run() -> None:
            while not self._stop.wait(interval_s):
                self.check()

        self._thread = threading.Thread(target=run, name="tls-reloader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class ClientCertMapper:
    """Maps a verified client certificate to a service principal id by its subject.

    Keys of ``mapping`` are RFC 4514 subject strings (``CN=ingest,O=Example``); a bare common name
    (``CN=ingest``) matches certificates whose subject is exactly that. Unknown subjects map to
    ``None`` (deny by default).
    """

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self._by_subject = {_normalise_subject(k): v for k, v in mapping.items()}

    def principal_for_der(self, der: bytes | None) -> str | None:
        """The principal id for a DER certificate (``ssl_object.getpeercert(binary_form=True)``)."""
        if not der:
            return None
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            return None
        return self._by_subject.get(_normalise_subject(cert.subject.rfc4514_string()))


def _normalise_subject(subject: str) -> str:
    try:
        return x509.Name.from_rfc4514_string(subject).rfc4514_string()
    except ValueError as e:
        raise ConfigError(f"tls.client_principals: {subject!r} is not an RFC 4514 subject") from e


@dataclass(frozen=True, slots=True)
class DevCerts:
    """Paths written by :func:`make_dev_certs`."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    clients: tuple[tuple[Path, Path], ...] = ()


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def _issue(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    days: int,
    ca: bool,
    sans: Sequence[x509.GeneralName] = (),
    usage: Sequence[x509.ObjectIdentifier] = (),
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        b = b.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        b = b.add_extension(x509.ExtendedKeyUsage(list(usage)), critical=False)
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def make_dev_certs(
    out_dir: str | Path,
    hostnames: Sequence[str] = ("localhost", "127.0.0.1", "::1"),
    *,
    clients: Sequence[str] = (),
    days: int = 30,
    overwrite: bool = False,
) -> DevCerts:
    """Write a development CA, a server certificate for ``hostnames`` and client certificates.

    For local development only: the CA key is written beside the certificates (mode 0600).
    """
    for name in clients:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
            raise InputError(f"client name {name!r}: use letters, digits, '.', '_' or '-'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = DevCerts(out / "ca.pem", out / "ca-key.pem", out / "server.pem", out / "server-key.pem")
    if not overwrite and any(p.exists() for p in (paths.ca_cert, paths.server_cert)):
        raise InputError(f"certificates already exist in {str(out)!r}; pass --force to replace them")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bastion development CA")])
    ca = _issue(ca_name, ca_key, ca_name, ca_key, days=days, ca=True)
    sans: list[x509.GeneralName] = []
    for h in hostnames:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv_name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0] if hostnames else "localhost")]
    )
    srv = _issue(srv_name, srv_key, ca_name, ca_key, days=days, ca=False, sans=sans,
                 usage=[ExtendedKeyUsageOID.SERVER_AUTH])  # fmt: skip
    _write_key(paths.ca_key, ca_key)
    paths.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    _write_key(paths.server_key, srv_key)
    paths.server_cert.write_bytes(
        srv.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    )
    client_paths = []
    for name in clients:
        ck = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), ck, ca_name, ca_key,
                      days=days, ca=False, usage=[ExtendedKeyUsageOID.CLIENT_AUTH])  # fmt: skip
        cp, kp = out / f"client-{name}.pem", out / f"client-{name}-key.pem"
        _write_key(kp, ck)
        cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        client_paths.append((cp, kp))
    return DevCerts(paths.ca_cert, paths.ca_key, paths.server_cert, paths.server_key, tuple(client_paths))
