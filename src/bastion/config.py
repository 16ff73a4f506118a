"""Settings: one YAML file (``bastion.yaml``) plus ``BASTION_*`` environment overrides.

Nothing is built at import time: :func:`load_settings` validates everything up front and raises a
:class:`~bastion.errors.ConfigError` that names the offending key and says how to fix it.
Environment variables use ``__`` for nesting: ``BASTION_DATABASE__URL=postgresql://…``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
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
    group_commit_max_wait_ms: float = Field(
        default=0.0,
        ge=0.0,
        le=1000.0,
        description="extra wait for more events before a commit when callers are concurrent (0: none; "
        "what queues during a commit still goes in the next one)",
    )
    detached_max_wait_ms: float = Field(
        default=5.0,
        ge=0.0,
        le=1000.0,
        description="how long the writer may hold events nobody waits for (the gateway's with "
        "durable_audit: false) to commit them together with others; an event a caller waits for ends the wait",
    )
    tree_head_every: int = Field(default=1000, ge=1, description="sign a tree head every N entries")


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    body_timeout_s: float = Field(
        default=30.0, gt=0, le=3600, description="a request body not complete this long after its head: 408"
    )
    max_header_bytes: int = Field(
        default=32 * 1024, ge=1024, le=1024 * 1024, description="larger request headers are refused (431)"
    )
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    cors_origins: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerSettings:
        # one without the other would quietly serve plain HTTP
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("set both server.tls_cert_file and server.tls_key_file (or neither)")
        return self


class OIDCSettings(Section):
    issuer: str
    audience: str
    jwks_url: str | None = None
    jwks_file: Path | None = None
    algorithms: list[
        Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
    ] = Field(default_factory=lambda: ["RS256"])  # type: ignore[arg-type]
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
    key_cache_ttl_s: float = Field(
        default=5.0,
        ge=0.0,
        le=300.0,
        description="seconds an API key lookup is cached per process; a revocation made in another process "
        "takes effect here within this time (at once in the revoking process)",
    )
    policy_files: list[Path] = Field(
        default_factory=list, description="extra Cedar policy files loaded after the built-in policies"
    )


# --- gateway (issue 3) -------------------------------------------------------------------------


class UpstreamSettings(Section):
    """One model provider: any OpenAI-compatible endpoint, or the built-in deterministic ``demo``."""

    type: Literal["openai", "demo"] = "openai"
    base_url: str | None = Field(
        default=None,
        description="e.g. https://api.openai.com/v1; its host must be in gateway.egress_allowlist",
    )
    api_key_env: str | None = Field(
        default=None, description="name of the environment variable that holds the provider key (preferred)"
    )
    api_key: SecretStr | None = Field(default=None, description="provider key inline (prefer api_key_env)")
    auth_header: Literal["authorization", "api-key"] = Field(
        default="authorization", description="'api-key' for Azure OpenAI, else 'Authorization: Bearer'"
    )
    query: dict[str, str] = Field(default_factory=dict, description="query parameters (Azure: api-version)")
    connect_timeout_s: float = Field(default=5.0, gt=0, le=120)
    timeout_s: float = Field(default=60.0, gt=0, le=3600, description="read timeout between bytes")
    total_timeout_s: float = Field(default=300.0, gt=0, le=7200, description="whole non-streamed call")
    max_retries: int = Field(default=1, ge=0, le=5, description="retries of connection failures only")
    max_connections: int = Field(default=256, ge=1, le=10_000)
    breaker_failures: int = Field(default=5, ge=1, le=1000, description="consecutive failures that open it")
    breaker_reset_s: float = Field(default=30.0, gt=0, le=3600)
    demo_delay_ms: float = Field(default=0.0, ge=0, le=60_000, description="demo only: delay per response")
    ca_file: Path | None = Field(
        default=None,
        description="https: CA bundle for the provider's certificate (default: system trust store)",
    )
    client_cert_file: Path | None = Field(default=None, description="https: client certificate (mTLS)")
    client_key_file: Path | None = Field(default=None, description="https: its private key")

    def provider_key(self, name: str) -> str | None:
        """The provider key of upstream ``name`` as it goes into a request header: surrounding white
        space (a secret file's last line break) dropped; :class:`ConfigError` when ``api_key_env``
        is not set, or for a key that cannot be a header value (a line break inside would add header
        lines of its own). Errors never show the key."""
        if self.api_key_env:
            value = os.environ.get(self.api_key_env, "").strip()
            where = f"the variable {self.api_key_env!r} (gateway.upstreams.{name}.api_key_env)"
            if not value:
                raise ConfigError(
                    f"gateway.upstreams.{name}.api_key_env names {self.api_key_env!r}, which is not set",
                    hint="Export the provider key in that variable before starting Bastion.",
                )
        elif self.api_key is not None:
            value = self.api_key.get_secret_value().strip()
            where = f"gateway.upstreams.{name}.api_key"
        else:
            return None
        if not all("!" <= c <= "~" for c in value):
            raise ConfigError(
                f"the provider key in {where} holds a space, a control or a non-ASCII character",
                hint="Provider keys are printable ASCII; check the value for a stray line break or quote.",
            )
        return value

    @model_validator(mode="after")
    def _needs_url(self) -> UpstreamSettings:
        if self.type == "openai" and not self.base_url:
            raise ValueError("an upstream of type 'openai' needs base_url")
        if (self.client_cert_file is None) != (self.client_key_file is None):
            raise ValueError("set both client_cert_file and client_key_file, or neither")
        return self


class ModelRoute(Section):
    """A model name callers use, and where it goes."""

    upstream: str = Field(description="a key of gateway.upstreams")
    upstream_model: str | None = Field(default=None, description="name at the provider (default: same)")
    kinds: list[Literal["chat", "completions", "embeddings"]] = Field(
        default_factory=lambda: ["chat", "completions", "embeddings"]  # type: ignore[arg-type]
    )
    attributes: dict[str, str] = Field(
        default_factory=dict,
        description="resource attributes for policies: team, environment, classification",
    )


class LimitSet(Section):
    """Limits for one kind of subject (a key, a principal, a team); null means unlimited."""

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_day: int | None = Field(default=None, ge=1)
    concurrent: int | None = Field(default=None, ge=1)


class LimitsSettings(Section):
    storage: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    on_unavailable: Literal["open", "closed"] = Field(
        default="closed", description="when Redis is down: let calls through (open) or refuse them (closed)"
    )
    per_key: LimitSet = LimitSet(requests_per_minute=600, concurrent=32)
    per_principal: LimitSet = LimitSet()
    per_team: LimitSet = LimitSet()
    queries_per_day: int | None = Field(
        default=None, ge=1, description="per-principal query budget (model-extraction defence)"
    )
    per_worker_counts: bool = Field(
        default=False,
        description="accept that with storage: memory and several server.workers each worker counts on its "
        "own (every limit and budget becomes workers × the configured value); otherwise that is refused",
    )

    def any_limit(self) -> bool:
        """Whether any rate, token, concurrency or budget limit is set."""
        sets = (self.per_key, self.per_principal, self.per_team)
        return self.queries_per_day is not None or any(
            v is not None for ls in sets for v in ls.model_dump().values()
        )


class GuardRule(Section):
    """Which action a finding gets; the first rule whose set fields all match wins."""

    action: Literal["allow", "flag", "redact", "block"]
    detector: str | None = None
    finding_type: str | None = Field(default=None, description="exact type or prefix ending in '.'")
    direction: Literal["input", "output"] | None = None
    route: str | None = None
    model: str | None = None
    team: str | None = None
    min_severity: Literal["info", "low", "medium", "high", "critical"] | None = None


def _default_guard_rules() -> list[GuardRule]:
    """Out-of-the-box actions: redact secrets and unambiguous personal data, block only
    high-severity injection/hidden-text/unsafe-output and canary leaks, flag the rest."""
    r = GuardRule
    return [
        r(action="redact", detector="secrets"),
        *(
            r(action="redact", detector="pii", finding_type=f"pii.{t}")
            for t in ("email", "payment_card", "iban", "national_id")
        ),
        r(action="flag", detector="pii"),  # phone/ip/address/name patterns also match dates and versions
        *(
            rule
            for d in ("prompt_injection", "hidden_text", "unsafe_output", "canary")
            for rule in (r(action="block", detector=d, min_severity="high"), r(action="flag", detector=d))
        ),
    ]


class GuardSettings(Section):
    input: list[str] = Field(
        default_factory=lambda: ["prompt_injection", "secrets", "hidden_text", "pii"],
        description="detector names run on prompts ([] turns input guards off)",
    )
    output: list[str] = Field(
        default_factory=lambda: ["secrets", "pii", "unsafe_output", "canary"],
        description="detector names run on model output ([] turns output guards off)",
    )
    options: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per-detector options")
    default_action: Literal["allow", "flag", "redact", "block"] = "block"
    rules: list[GuardRule] = Field(
        default_factory=_default_guard_rules, description="replaces the built-in rules when given"
    )
    canary: bool = Field(
        default=False, description="add a per-request canary to the system prompt; its echo blocks"
    )
    scan_system: bool = Field(
        default=False,
        description="input guards also scan system/developer messages (the application's own instructions)",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list, description="hosts output links/images may point to (unsafe_output)"
    )
    stream_window_chars: int = Field(default=256, ge=16, le=65_536, description="look-behind on streams")
    max_scan_chars: int = Field(default=1_000_000, ge=1024, description="longer texts are refused (413)")
    scan_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="a scan run in a worker thread (texts over 16 KiB) that takes longer blocks the call",
    )


def _default_upstreams() -> dict[str, UpstreamSettings]:
    return {"demo": UpstreamSettings(type="demo")}


def _default_models() -> dict[str, ModelRoute]:
    return {
        "bastion-demo": ModelRoute(upstream="demo", attributes={"team": "shared", "classification": "public"})
    }


class GatewaySettings(Section):
    """The OpenAI-compatible gateway (docs/gateway.md)."""

    upstreams: dict[str, UpstreamSettings] = Field(default_factory=_default_upstreams)
    models: dict[str, ModelRoute] = Field(default_factory=_default_models)
    egress_allowlist: list[str] = Field(
        default_factory=list, description="hosts upstreams may name: 'api.openai.com', '*.openai.azure.com'"
    )
    limits: LimitsSettings = LimitsSettings()
    guards: GuardSettings = GuardSettings()
    durable_audit: bool = Field(
        default=True, description="release a response only after its event is durable"
    )
    max_n: int = Field(default=1, ge=1, le=128, description="largest 'n' a caller may ask for")
    max_tokens_cap: int = Field(default=4096, ge=1, description="max_tokens is capped to this")
    trust_forwarded_for: bool = Field(default=False, description="take the client IP from X-Forwarded-For")
    drain_timeout_s: float = Field(
        default=30.0, ge=0, le=3600, description="graceful shutdown wait for streams"
    )

    @model_validator(mode="after")
    def _consistent(self) -> GatewaySettings:
        for name, route in self.models.items():
            if route.upstream not in self.upstreams:
                raise ValueError(f"models.{name}.upstream: unknown upstream {route.upstream!r}")
        for name, up in self.upstreams.items():
            if up.type == "openai" and up.base_url:
                try:
                    host = egress_host(up.base_url)
                except ValueError as e:
                    raise ValueError(f"upstreams.{name}.base_url: {e}") from None
                if not host_allowed(host, self.egress_allowlist):
                    raise ValueError(
                        f"upstreams.{name}.base_url: host {host!r} is not in gateway.egress_allowlist; "
                        "add it there if this provider is intended"
                    )
                try:
                    check_request_target(up.base_url)
                except ValueError as e:
                    raise ValueError(f"upstreams.{name}.base_url: {e}") from None
        return self


#: a host name as the resolver reads it: ASCII labels of letters, digits, '-' and '_', none empty
_HOST_NAME = re.compile(
    r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.?"
)


def egress_host(url: str) -> str:
    """The lower-cased host of an upstream ``url``; ``ValueError`` saying what is wrong unless it is
    an http(s) URL of visible ASCII (it is written as it is into requests) without credentials, whose
    host is a DNS name or an IP address: what the allowlist compares must be what the resolver gets
    (a NUL or another odd character could end the name early)."""
    if any(c <= " " or c > "~" for c in url):
        # urlsplit drops some of these silently; the resolver or the request line would not
        raise ValueError(
            "base_url may hold only visible ASCII characters: percent-encode the path, "
            "write host names of other scripts in punycode ('xn--…')"
        )
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        # the URL itself is not repeated: it may carry credentials
        raise ValueError(f"not an http(s) URL (scheme {parts.scheme!r}, host {host!r})")
    if parts.username or parts.password:
        raise ValueError("credentials in an upstream URL are refused; use api_key_env")
    if not _HOST_NAME.fullmatch(host) or len(host) > 254:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"host {host!r} is neither a DNS name nor an IP address") from None
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            raise ValueError(f"host {host!r}: an IPv6 zone is not supported")
    return host.rstrip(".")


def check_request_target(url: str) -> None:
    """``ValueError`` unless the port and path of ``url`` (one :func:`egress_host` accepted) are what
    requests will use: a port in 1-65535, no query or fragment (query parameters go under ``query``)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 and parts.netloc.rpartition("]")[2].count(":"):
        raise ValueError("the port must be a number from 1 to 65535")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ValueError("a query or fragment in base_url is not sent; put query parameters under 'query'")


def host_allowed(host: str, allowlist: list[str]) -> bool:
    """True when ``host`` equals an entry or matches a ``*.suffix`` entry of ``allowlist``."""
    host = host.lower().rstrip(".")
    for entry in allowlist:
        entry = entry.lower().rstrip(".")
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and host != entry[2:]:
                return True
        elif host == entry:
            return True
    return False


class LocalKeyringSettings(Section):
    """The development keyring (refused outside environment: development)."""

    path: Path = Field(
        default=Path("~/.config/bastion/keyring.json"),
        description="keyring file; keep it away from the data it protects",
    )
    passphrase_env: str = Field(
        default="BASTION_KEYRING_PASSPHRASE", description="variable holding the passphrase"
    )
    scrypt_n: int = Field(default=2**15, ge=2**10, le=2**22, description="scrypt cost (a power of two)")


class Pkcs11Settings(Section):
    """A PKCS#11 HSM (SoftHSM2 in tests)."""

    library: Path = Path("/usr/lib/softhsm/libsofthsm2.so")
    token_label: str = "bastion"  # noqa: S105 - a token label, not a secret
    pin_env: str = Field(default="BASTION_PKCS11_PIN", description="variable holding the user PIN")


class VaultTransitSettings(Section):
    """HashiCorp Vault Transit."""

    addr: str = "http://127.0.0.1:8200"
    mount_point: str = "transit"
    namespace: str | None = None
    token_env: str = Field(default="VAULT_TOKEN", description="variable holding the Vault token")
    ca_file: Path | None = None


class CryptoSettings(Section):
    """Encryption at rest and key management (docs/encryption.md)."""

    provider: str = Field(default="local", description="key provider registry name: local, pkcs11, vault, …")
    key_id: str = Field(default="bastion-kek", description="the KEK that wraps data keys")
    local: LocalKeyringSettings = LocalKeyringSettings()
    pkcs11: Pkcs11Settings = Pkcs11Settings()
    vault: VaultTransitSettings = VaultTransitSettings()
    rotation_days: int = Field(default=90, ge=1, le=3650, description="a KEK older than this is overdue")
    rotation_overrides: dict[str, int] = Field(default_factory=dict, description="key id -> rotation days")
    record_content: bool = Field(default=False, description="store prompts/responses encrypted per subject")


class TlsSettings(Section):
    """TLS details beyond server.tls_cert_file / tls_key_file: client certificates (mTLS)."""

    client_ca_file: Path | None = Field(default=None, description="CA bundle for client certificates")
    client_cert_required: bool = Field(
        default=False, description="refuse clients without a valid certificate"
    )
    client_principals: dict[str, str] = Field(
        default_factory=dict, description="client certificate subject (RFC 4514) -> service principal id"
    )
    reload_interval_s: float = Field(
        default=5.0, ge=0.5, le=3600, description="certificate file change check"
    )


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
    gateway: GatewaySettings = GatewaySettings()
    crypto: CryptoSettings = CryptoSettings()
    tls: TlsSettings = TlsSettings()
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
        problems = limits_per_worker(self)  # in every environment: a limit must mean what it says
        if self.environment is not Environment.DEVELOPMENT:
            problems += insecure_settings(self)
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


def limits_per_worker(s: Settings) -> list[str]:
    """Why ``s`` would enforce its limits once per worker process (empty when it does not): the memory
    storage counts in each process, so several workers would each allow the full limit."""
    limits, n = s.gateway.limits, s.server.workers
    if n > 1 and limits.storage == "memory" and limits.any_limit() and not limits.per_worker_counts:
        return [
            f"gateway.limits.storage: memory counts in each process, so with server.workers: {n} every limit "
            f"and budget would allow {n} times its value; use storage: redis (one count for all workers and "
            "replicas), server.workers: 1, or set gateway.limits.per_worker_counts: true to accept it"
        ]
    return []


def insecure_settings(s: Settings) -> list[str]:
    """Human-readable reasons why ``s`` is unfit outside development (empty when fine)."""
    problems: list[str] = []
    if "*" in s.server.cors_origins:
        problems.append("server.cors_origins: wildcard '*' is refused outside development; list the origins")
    if s.crypto.provider == "local":
        problems.append(
            "crypto.provider: the local development keyring is refused outside environment: development; "
            "use pkcs11 (an HSM) or vault (docs/encryption.md)"
        )
    if s.ledger.signing_key_file is None:
        problems.append(
            "ledger.signing_key_file: set it outside development; the default keeps the ledger's signing key "
            "in data_dir beside the database it vouches for"
        )
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
        raise ConfigError(
            f"config file {str(path)!r} must hold a mapping at top level, got {type(data).__name__}"
        )
    if bad := [k for k in data if not isinstance(k, str)]:
        # YAML reads `1:`, `null:` and `on:` (a YAML 1.1 boolean) as keys that are not names
        raise ConfigError(
            f"config file {str(path)!r}: top-level key {bad[0]!r} is not a name",
            hint="Top-level keys are section names (`bastion config schema` lists them); quote a key "
            "that YAML reads as a number or a boolean.",
        )
    return data


def _format_validation_error(e: ValidationError, origin: str) -> ConfigError:
    lines = []
    for err in e.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
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
