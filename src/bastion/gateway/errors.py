"""OpenAI-style errors: ``{"error": {"message", "type", "param", "code"}}`` with the right status.

The official SDKs pick their exception class from the status (400 BadRequestError, 401
AuthenticationError, 403 PermissionDeniedError, 404 NotFoundError, 422 UnprocessableEntityError,
429 RateLimitError with ``Retry-After``, >= 500 InternalServerError). Bastion errors are mapped to
statuses here and only here. Messages never carry prompt content or secrets.

A ``Retry-After`` longer than the SDKs wait (a spent daily budget: hours) comes with
``x-should-retry: false``, which they obey: they would otherwise retry it within seconds, in vain.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from bastion.domain.events import EventTag
from bastion.errors import (
    AuthenticationError,
    AuthorizationError,
    BastionError,
    InputError,
    LimitExceeded,
    NotFoundError,
    StoreError,
    UpstreamError,
)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    431: "invalid_request_error",
}
#: the longest Retry-After the official SDKs wait for (Python's 1.x: 60 s); past it they retry after
#: their own short backoff, unless told not to
_SDK_RETRY_AFTER_MAX_S = 60


@dataclass(eq=False)
class ApiError(Exception):
    """An error answered to the caller, and how it is recorded in the ledger."""

    status: int
    message: str
    code: str
    param: str | None = None
    retry_after: float | None = None
    tag: EventTag = EventTag.GATEWAY_REQUEST_REJECTED
    outcome: str = "denied"
    #: what the ledger records as the reason, when the message quotes the request (a model name)
    reason: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def type(self) -> str:
        return _TYPES.get(self.status, "api_error")

    def body(self) -> bytes:
        """The OpenAI error JSON."""
        return error_body(self.message, self.type, self.code, self.param)

    def headers(self) -> list[tuple[bytes, bytes]]:
        if self.retry_after is None:
            return []
        retry_after = (b"retry-after", str(max(1, int(self.retry_after + 0.999))).encode())
        if self.retry_after > _SDK_RETRY_AFTER_MAX_S:
            return [retry_after, (b"x-should-retry", b"false")]
        return [retry_after]


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def bad_request(message: str, *, param: str | None = None, code: str = "invalid_request") -> ApiError:
    return ApiError(400, message, code, param)


def from_bastion_error(e: BastionError) -> ApiError:
    """Map a Bastion error raised by a component to the answer the caller gets."""
    if isinstance(e, AuthenticationError):
        return ApiError(401, "invalid or missing API key", "invalid_api_key")
    if isinstance(e, AuthorizationError):
        return ApiError(403, e.message, "permission_denied")
    if isinstance(e, LimitExceeded):
        tag = EventTag.GATEWAY_LIMIT_EXCEEDED
        return ApiError(429, e.message, e.code, retry_after=e.retry_after, tag=tag, outcome="limited")
    if isinstance(e, NotFoundError):
        return ApiError(404, e.message, "not_found")
    if isinstance(e, InputError):
        return ApiError(400, e.message, "invalid_request")
    if isinstance(e, UpstreamError):
        status = e.status if e.status in (502, 503, 504) else 502
        return ApiError(
            status, e.message, "upstream_error", tag=EventTag.GATEWAY_REQUEST_FAILED, outcome="error"
        )
    if isinstance(e, StoreError):
        return ApiError(
            503,
            "the gateway cannot reach its database",
            "service_unavailable",
            tag=EventTag.GATEWAY_REQUEST_FAILED,
            outcome="error",  # the gateway could not serve the call; it denied nothing
        )
    failed = EventTag.GATEWAY_REQUEST_FAILED
    return ApiError(503, f"the gateway is unavailable ({e.code})", e.code, tag=failed, outcome="error")


def audit_unavailable() -> ApiError:
    """The caller's answer when a call's ledger event (or its sealed content) could not be recorded:
    the response is withheld (fail closed)."""
    return ApiError(
        503,
        "the audit ledger is unavailable; the response was withheld",
        "audit_unavailable",
        tag=EventTag.GATEWAY_REQUEST_FAILED,
        outcome="error",
    )
