"""The single error tree of Bastion.

Every error Bastion raises on purpose derives from :class:`BastionError`. Each has a stable
``code`` (used in JSON output, exit-code mapping and logs) and a ``diagnostics()`` text that tells
the user what to do next. HTTP statuses and exit codes are mapped only at the boundaries
(``gateway``, ``cli``).

    BastionError
    ├── ConfigError            bad or insecure configuration
    ├── StoreError             database unavailable, migration missing
    ├── LedgerError
    │   └── LedgerIntegrityError   the ledger does not verify
    ├── AuthError
    │   ├── AuthenticationError    who are you? (401)
    │   └── AuthorizationError     you may not (403)
    ├── LimitExceeded          rate or budget limit (429)
    ├── NotFoundError          a named object does not exist
    ├── InputError             bad user input (usage, malformed request)
    ├── DetectorError          a detector failed (yields an error verdict: fail closed)
    ├── ScanError              an offline scan could not complete
    ├── CryptoError            encryption, decryption, key provider failure
    └── UpstreamError          the model provider failed
"""

from __future__ import annotations

from typing import ClassVar


class BastionError(Exception):
    """Root of every error Bastion raises on purpose."""

    code: ClassVar[str] = "bastion_error"
    hint: ClassVar[str] = "See the documentation under docs/ or run the command with --help."

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self._hint = hint

    def diagnostics(self) -> str:
        """A short text that says what went wrong and what to do next."""
        return f"{self.message}\nHint: {self._hint or self.hint}"


class ConfigError(BastionError):
    code = "config_error"
    hint = (
        "Fix the named key in bastion.yaml (or its BASTION_* variable); `bastion config check` re-validates."
    )


class StoreError(BastionError):
    code = "store_error"
    hint = "Check `database.url` and that the database answers; run `bastion db upgrade` after an upgrade."


class LedgerError(BastionError):
    code = "ledger_error"
    hint = "Run `bastion ledger verify` to see the state of the ledger."


class LedgerIntegrityError(LedgerError):
    code = "ledger_integrity"
    hint = (
        "The ledger was modified outside Bastion. Preserve the database for investigation; do not repair it."
    )


class AuthError(BastionError):
    code = "auth_error"


class AuthenticationError(AuthError):
    code = "authentication_failed"
    hint = "Send a valid API key as `Authorization: Bearer <key>`; create one with `bastion keys create`."


class AuthorizationError(AuthError):
    code = "permission_denied"
    hint = "Ask an admin for a role that allows this; `bastion policy explain` shows why it was denied."


class LimitExceeded(BastionError):
    code = "rate_limited"
    hint = "Slow down and retry after the indicated time, or ask for a higher limit."

    def __init__(self, message: str, *, retry_after: float = 1.0, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class NotFoundError(BastionError):
    code = "not_found"
    hint = "Check the name or id; list what exists with the matching `list` command."


class InputError(BastionError):
    code = "invalid_input"
    hint = "Check the input against the documentation or --help."


class DetectorError(BastionError):
    code = "detector_error"
    hint = "A detector failed; the input was blocked (fail closed). Check the logs for the detector name."


class ScanError(BastionError):
    code = "scan_error"
    hint = "The file could not be fully analysed and is not reported clean; inspect it by hand."


class CryptoError(BastionError):
    code = "crypto_error"
    hint = "Check the key provider configuration with `bastion keys provider-check`."


class UpstreamError(BastionError):
    code = "upstream_error"
    hint = "The model provider failed; check `upstreams` in bastion.yaml and the provider's status."

    def __init__(self, message: str, *, status: int = 502, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
