"""Structured JSON logs (structlog), configured once, with redaction.

Audit facts go to the ledger, not to the log. Prompts, responses and secrets are never logged: any
event key that names one is replaced by ``[redacted]`` before rendering, whatever the caller passed.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

REDACTED = "[redacted]"
_SENSITIVE = (
    "authorization",
    "api_key",
    "apikey",
    "token",
    "secret",
    "password",
    "passphrase",
    "prompt",
    "content",
    "messages",
    "completion",
    "cookie",
    "private_key",
)


def _is_sensitive(key: str) -> bool:
    k = key.lower()
    return any(s in k for s in _SENSITIVE)


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: blank every value whose key names a secret or content."""
    for key in list(event):
        if key != "event" and _is_sensitive(key):
            event[key] = REDACTED
    return event


def configure_logging(level: str = "info", *, json: bool = True) -> None:
    """Configure structlog and the standard library root logger once for the process."""
    lvl = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(stream=sys.stderr, level=lvl, format="%(message)s", force=True)
    logging.getLogger("alembic").setLevel(max(lvl, logging.WARNING))
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    """A bound structlog logger named ``name``."""
    return structlog.get_logger(name)
