"""Mapping Bastion errors to the admin API's JSON error body and HTTP status (the one place that does)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from bastion.errors import (
    AuthenticationError,
    AuthorizationError,
    BastionError,
    ConfigError,
    InputError,
    LimitExceeded,
    NotFoundError,
    StoreError,
)

_STATUS: tuple[tuple[type[BastionError], int], ...] = (
    (AuthenticationError, 401),
    (AuthorizationError, 403),
    (NotFoundError, 404),
    (InputError, 400),
    (ConfigError, 400),
    (LimitExceeded, 429),
    (StoreError, 503),
)


def status_for(e: BastionError) -> int:
    """The HTTP status of a Bastion error (500 for anything unexpected)."""
    for cls, status in _STATUS:
        if isinstance(e, cls):
            return status
    return 500


def error_response(status: int, code: str, message: str, hint: str | None = None) -> JSONResponse:
    body: dict[str, object] = {"error": {"code": code, "message": message}}
    if hint:
        body["error"]["hint"] = hint  # type: ignore[index]
    headers = {"WWW-Authenticate": 'Bearer realm="bastion"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Turn Bastion and validation errors into clear JSON answers; never leak a traceback."""

    async def bastion_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BastionError)
        status = status_for(exc)
        # Authentication failures say little on purpose: the ledger has the reason.
        message = "authentication failed" if status == 401 else exc.message
        return error_response(status, exc.code, message, exc.diagnostics().split("Hint: ", 1)[-1])

    async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:10]
        )
        return error_response(422, "invalid_request", problems or "invalid request")

    app.add_exception_handler(BastionError, bastion_error)
    app.add_exception_handler(RequestValidationError, validation_error)
