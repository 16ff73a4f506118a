"""Settings: one YAML file (``bastion.yaml``) plus ``BASTION_*`` environment overrides.

Nothing is built at import time: :func:`load_settings` validates everything up front and raises a
:class:`~bastion.errors.ConfigError` that names the offending key and says how to fix it.
Environment variables use ``__`` for nesting: ``BASTION_DATABASE__URL=postgresql://…``.
"""

from __future__ import annotations

import ipaddress
import os
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bastion.errors import ConfigError

DEFAULT_CONFIG_FILE = "bastion.yaml"
CONFIG_ENV = "BASTION_CONFIG"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"


class Section(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(Section):
    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: SQLite file bastion.db under data_dir. "
        "PostgreSQL: postgresql://user@host/db",
    )
    pool_size: int = Field(default=10, ge=1, le=200)


class LedgerSettings(Section):
    signing_key_file: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM) that signs tree heads; default: ledger-signing.pem in data_dir",
    )
    group_commit_max_batch: int = Field(default=512, ge=1, le=100_000)
    group_commit_max_wait_ms: float = Field(default=2.0, ge=0.0, le=1000.0)
    tree_head_every: int = Field(default=1000, ge=1, description="sign a tree head every N entries")


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    cors_origins: list[str] = Field(default_factory=list)


class OIDCSettings(Section):
    issuer: str
    audience: str
    jwks_url: str | None = None
    jwks_file: Path | None = None
    algorithms: list[Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]] = (
        Field(default_factory=lambda: ["RS256"])  # type: ignore[arg-type]
    )
    leeway_seconds: int = Field(default=30, ge=0, le=600)
    role_claim: str = "roles"
    team_claim: str = "team"

    @model_validator(mode="after")
    def _one_source(self) -> OIDCSettings:
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise ValueError("set exactly one of jwks_url or jwks_file")
        return self


class AuthSettings(Section):
    api_key_prefix: str = Field(default="bst", pattern=r"^[a-z]{2,8}$")
    oidc: OIDCSettings | None = None
    last_used_resolution_s: int = Field(default=60, ge=1, description="how often last-use is written per key")


class Settings(BaseSettings):
    """Bastion's whole configuration."""

    model_config = SettingsConfigDict(
        env_prefix="BASTION_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    environment: Environment = Environment.DEVELOPMENT
    data_dir: Path = Path(".bastion")
    database: DatabaseSettings = DatabaseSettings()
    ledger: LedgerSettings = LedgerSettings()
    server: ServerSettings = ServerSettings()
    auth: AuthSettings = AuthSettings()
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()

    @property
    def database_url(self) -> str:
        """The configured URL, or the embedded SQLite file under ``data_dir``."""
        return self.database.url or f"sqlite:///{self.data_dir / 'bastion.db'}"

    @property
    def signing_key_path(self) -> Path:
        return self.ledger.signing_key_file or self.data_dir / "ledger-signing.pem"

    @model_validator(mode="after")
    def _refuse_insecure(self) -> Settings:
        if self.environment is Environment.DEVELOPMENT:
            return self
        problems = insecure_settings(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment variables override the YAML file, which is passed as init values.
        return env_settings, init_settings


def insecure_settings(s: Settings) -> list[str]:
    """Human-readable reasons why ``s`` is unfit outside development (empty when fine)."""
    problems: list[str] = []
    if "*" in s.server.cors_origins:
        problems.append("server.cors_origins: wildcard '*' is refused outside development; list the origins")
    if s.server.tls_cert_file is None and not _is_loopback(s.server.host):
        problems.append(
            f"server.host: plain HTTP on the non-loopback address {s.server.host!r}; "
            "set server.tls_cert_file and server.tls_key_file, or bind 127.0.0.1 behind a TLS proxy"
        )
    return problems


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def config_path(explicit: str | Path | None = None) -> Path | None:
    """The config file to read: ``explicit``, else ``$BASTION_CONFIG``, else ``./bastion.yaml`` if present."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {str(path)!r} does not exist",
            hint="Create it (see docs/configuration.md) or drop --config / BASTION_CONFIG.",
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {e}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping at top level, got {type(data).__name__}")
    return data


def _format_validation_error(e: ValidationError, origin: str) -> ConfigError:
    lines = []
    for err in e.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key; remove it or check its spelling (`bastion config schema` lists every key)"
        lines.append(f"  {key}: {msg}")
    return ConfigError(
        f"invalid configuration in {origin}:\n" + "\n".join(lines),
        hint="Fix the keys named above; environment variables BASTION_<SECTION>__<KEY> override the file.",
    )


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read, merge and validate the configuration; :class:`ConfigError` on any problem."""
    file = config_path(path)
    data = _read_yaml(file) if file else {}
    data.update(overrides)
    origin = str(file) if file else "defaults and BASTION_* environment"
    try:
        return Settings(**data)
    except ValidationError as e:
        raise _format_validation_error(e, origin) from None


def settings_schema() -> dict[str, Any]:
    """The JSON Schema of ``bastion.yaml``."""
    return Settings.model_json_schema()
