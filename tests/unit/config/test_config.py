from __future__ import annotations

from pathlib import Path

import pytest

from bastion.config import Environment, load_settings, settings_schema
from bastion.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bastion.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_use_embedded_sqlite_under_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.environment is Environment.DEVELOPMENT
    assert s.database_url == "sqlite:///.bastion/bastion.db"


def test_unknown_key_is_named_with_a_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(_write(tmp_path, "database:\n  urll: sqlite:///x.db\n"))
    text = exc.value.diagnostics()
    assert "database.urll" in text
    assert "unknown key" in text


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(_write(tmp_path, "server:\n  port: not-a-port\n"))
    assert "server.port" in exc.value.diagnostics()


@pytest.mark.parametrize("text", ["{{{", "- a\n- b\n", "key: [unclosed"])
def test_malformed_yaml_is_a_clear_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(_write(tmp_path, text))
    assert "bastion.yaml" in exc.value.message


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "server:\n  port: 9000\n")
    monkeypatch.setenv("BASTION_SERVER__PORT", "9100")
    assert load_settings(path).server.port == 9100


def test_insecure_settings_refused_outside_development(tmp_path: Path) -> None:
    path = _write(tmp_path, "environment: production\nserver:\n  host: 0.0.0.0\n  cors_origins: ['*']\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    text = exc.value.diagnostics()
    assert "server.host" in text
    assert "server.cors_origins" in text
    assert "ledger.signing_key_file" in text
    assert "crypto.provider" in text


def test_production_with_tls_and_separate_signing_key_is_accepted(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "environment: production\nledger:\n  signing_key_file: /etc/bastion/ledger.pem\ncrypto:\n  provider: pkcs11\n"
        "server:\n  host: 0.0.0.0\n  tls_cert_file: /etc/bastion/cert.pem\n  tls_key_file: /etc/bastion/key.pem\n",
    )
    assert load_settings(path).environment is Environment.PRODUCTION


def test_insecure_settings_allowed_in_development(tmp_path: Path) -> None:
    s = load_settings(_write(tmp_path, "server:\n  host: 0.0.0.0\n"))
    assert s.server.host == "0.0.0.0"


def test_schema_lists_sections() -> None:
    schema = settings_schema()
    assert {"environment", "database", "ledger", "server", "auth"} <= set(schema["properties"])


def test_memory_limits_are_refused_with_several_workers(tmp_path: Path) -> None:
    # the default limits (600 requests/min and 32 concurrent per key) would be counted in each worker
    with pytest.raises(ConfigError) as exc:
        load_settings(_write(tmp_path, "server:\n  workers: 4\n"))
    text = exc.value.diagnostics()
    assert "gateway.limits.storage" in text and "4 times" in text and "storage: redis" in text


def test_several_workers_with_env_override_are_refused_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_SERVER__WORKERS", "2")  # what `bastion serve --workers 2` sets
    with pytest.raises(ConfigError, match=r"gateway\.limits\.storage"):
        load_settings(_write(tmp_path, "environment: development\n"))


@pytest.mark.parametrize(
    "limits",
    [
        "storage: redis",  # one count for all workers
        "per_worker_counts: true",  # accepted explicitly
        "per_key: {requests_per_minute: null, concurrent: null}",  # nothing to count
    ],
)
def test_several_workers_are_accepted_when_limits_mean_what_they_say(tmp_path: Path, limits: str) -> None:
    s = load_settings(_write(tmp_path, f"server:\n  workers: 4\ngateway:\n  limits: {{{limits}}}\n"))
    assert s.server.workers == 4


def test_a_budget_alone_counts_as_a_limit(tmp_path: Path) -> None:
    text = "server:\n  workers: 2\ngateway:\n  limits:\n    per_key: {requests_per_minute: null, concurrent: null}\n"
    load_settings(_write(tmp_path, text))  # no limit at all: fine
    with pytest.raises(ConfigError, match="every limit and budget"):
        load_settings(_write(tmp_path, text + "    queries_per_day: 1000\n"))
