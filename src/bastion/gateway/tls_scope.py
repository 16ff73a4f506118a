"""Expose the verified TLS client certificate to the application (ASGI TLS extension).

uvicorn does not put the peer certificate into the ASGI scope; this protocol does, as
``scope["extensions"]["tls"]["client_cert_der"]`` (the DER bytes, read once per connection), so that
the gateway can authenticate service principals by mutual TLS. The certificate has already been
verified by the TLS layer against ``tls.client_ca_file``; the gateway maps its subject to a
principal (deny by default).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class ClientCertHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus the TLS client certificate in the scope."""

    _client_cert_der: bytes | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object: Any = transport.get_extra_info("ssl_object")
        self._client_cert_der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._client_cert_der:
            self.scope["extensions"] = {"tls": {"client_cert_der": self._client_cert_der}}
