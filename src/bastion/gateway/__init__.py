"""The OpenAI-compatible security gateway (docs/gateway.md).

Public API::

    from bastion.gateway import GatewayComponents, create_gateway
    app = create_gateway(settings, GatewayComponents(authenticator, authorizer, audit, readiness),
                         fallback=admin_fastapi_app)
"""

from __future__ import annotations

from bastion.gateway.asgi import GatewayApp, create_gateway
from bastion.gateway.deps import AuditSink, Authenticator, Authorizer, GatewayComponents, ReadinessProbe

__all__ = [
    "AuditSink",
    "Authenticator",
    "Authorizer",
    "GatewayApp",
    "GatewayComponents",
    "ReadinessProbe",
    "create_gateway",
]
