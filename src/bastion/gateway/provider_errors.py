"""What a caller hears when the model provider answers with an error: which statuses are relayed with
the provider's own words, those words without any credential they may echo, and a bounded Retry-After.
"""

from __future__ import annotations

import math
import re

import orjson

from bastion.detectors.interface import Direction, ScanContext
from bastion.detectors.secrets import SecretsDetector
from bastion.domain.events import EventTag
from bastion.gateway.errors import ApiError
from bastion.gateway.upstream import UpstreamReply
from bastion.services.guard import redact

#: provider statuses relayed as they are (the caller's request was at fault); others become a 502
_RELAYED_STATUSES = frozenset({400, 409, 413, 422, 429})


def provider_failure(reply: UpstreamReply, secret: str | None) -> ApiError:
    """The caller's answer for a non-2xx ``reply``: a relayed status keeps the provider's message,
    scrubbed of ``secret`` (the upstream's key) and anything else credential-shaped."""
    failed, outcome = EventTag.GATEWAY_REQUEST_FAILED, "error"
    if reply.status in _RELAYED_STATUSES:
        message = f"the upstream rejected the request ({reply.status})"
        try:
            err = orjson.loads(reply.body).get("error", {})
            if isinstance(err, dict) and isinstance(err.get("message"), str):
                message = scrub_credentials(err["message"][:2000], secret)[:500]
        except (orjson.JSONDecodeError, AttributeError):
            pass
        retry = retry_after_s(reply.retry_after) if reply.status == 429 else None
        return ApiError(
            reply.status, message, "upstream_rejected", retry_after=retry, tag=failed, outcome=outcome
        )
    if reply.status >= 500:
        return ApiError(
            502, f"the upstream failed ({reply.status})", "upstream_error", tag=failed, outcome=outcome
        )
    return ApiError(
        502, "the upstream refused the gateway's request", "upstream_error", tag=failed, outcome=outcome
    )


#: what a credential in a provider's error message looks like: a bearer token (a word with a digit or
#: token punctuation inside, or of 16 characters: not "the Bearer scheme."), or a key with a
#: provider prefix (OpenAI sk-/sk-proj-, Anthropic sk-ant-, Groq gsk_, Google AIza, xAI xai-)
_CREDENTIAL = re.compile(
    r"(?i)\bbearer\s+(?=[^\s\"',;]*(?:[0-9]|[._~+/=-][^\s\"',;])|[^\s\"',;]{16})[^\s\"',;]+|\b(?:sk|gsk|xai|pk|rk)[-_][A-Za-z0-9_\-]{8,}|\bAIza[A-Za-z0-9_\-]{20,}"
)


_SECRETS = SecretsDetector()
_SCRUB_CONTEXT = ScanContext(direction=Direction.OUTPUT)


def scrub_credentials(text: str, secret: str | None = None) -> str:
    """``text`` with ``secret``, anything the secrets detector finds (cloud keys, tokens, JWTs,
    connection strings) and anything that looks like an API key or bearer token masked."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, "[redacted]")
    spans = [s for f in _SECRETS.scan(text, _SCRUB_CONTEXT) for s in f.spans]
    return _CREDENTIAL.sub("[redacted]", redact(text, spans, marker="[redacted]"))


def retry_after_s(value: bytes | str | None) -> float:
    """A provider's Retry-After in seconds, kept within 1 s .. 1 day (an HTTP date, garbage, NaN
    or infinity count as 1 s)."""
    try:
        seconds = float(value or 1)
    except ValueError:
        return 1.0
    if not math.isfinite(seconds):
        return 1.0
    return min(max(seconds, 1.0), 86_400.0)
