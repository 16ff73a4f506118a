"""Review 5: upstream configuration and egress control.

What the allowlist, the upstream client and the start-up path promise (docs/gateway.md, the
docstrings of ``bastion.config`` and ``bastion.gateway.upstream``): an upstream's host is checked
against ``gateway.egress_allowlist`` when the config is loaded and the client connects to exactly
that host; a bad ``bastion.yaml`` is a :class:`ConfigError` naming the key, never a traceback; the
provider key is attached from config and never leaks; only connection failures are retried (a body
the provider received is never sent again); the circuit breaker counts provider failures only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bastion.cli.main import EXIT_USAGE, main
from bastion.config import Settings, UpstreamSettings, load_settings
from bastion.errors import ConfigError, UpstreamError
from bastion.gateway.upstream import HttpUpstream
from support.net import free_port

from .harness import BadUpstream
from .test_gateway_egress import settings_for

PROVIDER_KEY = "sk-review5-inline-KEY-0123456789"


class DroppingUpstream(BadUpstream):
    """BadUpstream plus ``drop``: read the whole request, then close without an answer (the provider
    got the body; whether it acted on it is unknown)."""

    async def _respond(self, mode: str, w: asyncio.StreamWriter) -> bool:
        if mode == "drop":
            return False
        return await super()._respond(mode, w)


@pytest.fixture(scope="module")
def bad() -> Iterator[DroppingUpstream]:
    b = DroppingUpstream()
    with b:
        yield b


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


# -- the allowlist at load time ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url",
    [
        "http://2130706433/v1",  # 127.0.0.1 as one decimal number
        "http://0x7f000001/v1",  # ... in hex
        "http://0177.0.0.1/v1",  # ... with an octal first part
        "http://127.1/v1",  # ... shortened
        "http://[::ffff:127.0.0.1]/v1",  # IPv4-mapped IPv6
        "http://[::ffff:a9fe:a9fe]/v1",  # 169.254.169.254 (cloud metadata), mapped, in hex
        "http://\uff41pi.openai.com/v1",  # full-width 'a': IDNA maps it to api.openai.com
        "http://api.openai.com.evil.net/v1",
        "http://evil.net/api.openai.com",
        "http://evil.net?.openai.azure.com/v1",
    ],
)
def test_other_spellings_of_an_address_never_match_a_name_or_wildcard_entry(base_url: str) -> None:
    """Entries are compared as text: an address spelled another way, or a name that only looks
    like an allowed one, is refused (fail closed), never matched by resolving or normalising it."""
    with pytest.raises(ConfigError, match=r"is not in gateway\.egress_allowlist|visible ASCII"):
        settings_for(base_url, ["api.openai.com", "*.openai.azure.com"])


@pytest.mark.parametrize("host", ["127.0.0.1\\0.openai.azure.com", "169.254.169.254\\0.openai.azure.com"])
def test_a_nul_in_the_host_cannot_slip_past_a_wildcard_entry(tmp_path: Path, host: str) -> None:
    """``egress_host`` accepts any text urlsplit calls a host name. ``127.0.0.1\\0.openai.azure.com``
    ends with ``.openai.azure.com`` and loads, yet under uvloop (the loop ``bastion serve`` runs)
    getaddrinfo reads it up to the NUL and the gateway connects to 127.0.0.1 (checked by hand: a
    call returned the local server's 200). YAML writes the NUL as ``\\0`` in a double-quoted string."""
    cfg = tmp_path / "bastion.yaml"
    cfg.write_text(
        "gateway:\n"
        "  egress_allowlist: ['*.openai.azure.com']\n"
        f'  upstreams: {{prov: {{base_url: "http://{host}/v1"}}}}\n'
        "  models: {m: {upstream: prov}}\n",
        encoding="utf-8",
    )
    assert "\0" in yaml.safe_load(cfg.read_text())["gateway"]["upstreams"]["prov"]["base_url"]
    with pytest.raises(ConfigError) as e:
        load_settings(cfg)
    assert "upstreams.prov.base_url" in str(e.value)


@pytest.mark.parametrize("port", ["99999", "abc", "0", "-1"])
def test_an_invalid_port_in_base_url_is_a_config_error_at_load(port: str) -> None:
    with pytest.raises(ConfigError) as e:
        settings_for(f"https://api.openai.com:{port}/v1", ["api.openai.com"])
    assert "upstreams.prov.base_url" in str(e.value)


@pytest.mark.parametrize("text", ["1: x\n", "on: true\n", "null: x\n"])  # `on` is a YAML 1.1 boolean
def test_a_non_string_top_level_key_is_a_config_error(tmp_path: Path, text: str) -> None:
    cfg = tmp_path / "bastion.yaml"
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_settings(cfg)


# -- the provider key -------------------------------------------------------------------------------


def test_an_inline_provider_key_never_shows_in_settings_or_config_errors() -> None:
    gw = {
        "upstreams": {"prov": {"base_url": "https://api.openai.com/v1", "api_key": PROVIDER_KEY}},
        "models": {"m": {"upstream": "prov"}},
        "egress_allowlist": ["api.openai.com"],
    }
    s = load_settings(None, gateway=gw)
    up = s.gateway.upstreams["prov"]
    for text in (
        repr(s),
        str(s),
        repr(up),
        s.model_dump_json(),
        str(s.model_dump()),
    ):
        assert PROVIDER_KEY not in text
    # the same upstream made invalid: a field error, and the allowlist check (a model validator)
    prov: dict[str, Any] = {"base_url": "https://api.openai.com/v1", "api_key": PROVIDER_KEY}
    for bad_gw in (
        {**gw, "upstreams": {"prov": {**prov, "timeout_s": -1}}},
        {**gw, "egress_allowlist": ["other.example"]},
    ):
        with pytest.raises(ConfigError) as e:
            load_settings(None, gateway=bad_gw)
        assert "prov" in str(e.value)
        assert PROVIDER_KEY not in str(e.value) and PROVIDER_KEY not in str(e.value.hint)


@pytest.mark.parametrize(
    ("source", "key"),
    [
        ("inline", "sk-abc\r\nx-injected: 1"),
        ("env", "sk-abc\r\nx-injected: 1"),
        ("inline", "sk-\u043a\u043b\u044e\u0447"),  # Cyrillic: not encodable as latin-1
    ],
)
def test_a_provider_key_that_cannot_be_a_header_value_is_a_config_error(
    bad: DroppingUpstream, monkeypatch: pytest.MonkeyPatch, source: str, key: str
) -> None:
    """Today the CR/LF key is sent as is: the provider receives an extra ``x-injected: 1`` header."""
    if source == "env":
        monkeypatch.setenv("REVIEW5_PROVIDER_KEY", key)
        cfg = UpstreamSettings(base_url=bad.base("ok"), api_key_env="REVIEW5_PROVIDER_KEY")
    else:
        cfg = UpstreamSettings.model_validate({"base_url": bad.base("ok"), "api_key": key})
    with pytest.raises(ConfigError) as e:
        HttpUpstream("prov", cfg)
    assert "prov" in str(e.value)
    assert key not in str(e.value) and key not in str(e.value.hint)


def test_a_trailing_newline_in_the_key_variable_never_reaches_the_wire(
    bad: DroppingUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Either refused (ConfigError) or stripped; never a bare LF in the head the provider parses."""
    monkeypatch.setenv("REVIEW5_PROVIDER_KEY", "sk-env-abc\n")
    cfg = UpstreamSettings(base_url=bad.base("ok"), api_key_env="REVIEW5_PROVIDER_KEY")
    try:
        up = HttpUpstream("prov", cfg)
    except ConfigError:
        return

    async def call() -> int:
        try:
            return (await up.send("/chat/completions", b"{}")).status
        finally:
            await up.aclose()

    before = len(bad.heads)
    assert _run(call()) == 200
    head = bad.heads[before]
    assert "\n" not in head.replace("\r\n", ""), repr(head)
    assert "\r\nauthorization: Bearer sk-env-abc\r\n" in head


# -- retries and the circuit breaker ----------------------------------------------------------------


@pytest.mark.parametrize(("mode", "status"), [("drop", 502), ("fail500", 500), ("status400", 400)])
def test_a_body_the_provider_received_is_never_sent_again(
    bad: DroppingUpstream, mode: str, status: int
) -> None:
    """``max_retries`` covers connection failures only: a connection closed after the request went
    out, a 5xx or a 4xx is one request at the provider, however many retries are configured."""
    cfg = UpstreamSettings(base_url=bad.base(mode), max_retries=5, breaker_failures=1000)

    async def call() -> int:
        up = HttpUpstream("prov", cfg)
        try:
            return (await up.send("/chat/completions", b'{"n":1}')).status
        except UpstreamError as e:
            return e.status
        finally:
            await up.aclose()

    before = len(bad.requests)
    assert _run(call()) == status  # drop: the gateway's 502; otherwise the provider's answer
    assert len(bad.requests) - before == 1, "the request was sent to the provider again"


def test_connection_retries_count_once_against_the_breaker() -> None:
    """A refused connection is retried ``max_retries`` times, and the call is one failure."""
    cfg = UpstreamSettings(
        base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=2, breaker_failures=2, breaker_reset_s=60
    )

    async def scenario() -> None:
        up = HttpUpstream("prov", cfg)
        try:
            with pytest.raises(UpstreamError) as e:
                await up.send("/chat/completions", b"{}")
            assert e.value.status == 502
            assert (up.breaker.failures, up.breaker.state) == (1, "closed")
            with pytest.raises(UpstreamError):
                await up.send("/chat/completions", b"{}")
            assert up.breaker.state == "open"
        finally:
            await up.aclose()

    _run(scenario())


def test_provider_refusals_of_the_callers_request_do_not_open_the_breaker(bad: DroppingUpstream) -> None:
    """A 400 or 429 is the caller's problem (the provider is up): even with ``breaker_failures: 1``
    the circuit stays closed; a 5xx opens it."""

    async def scenario() -> None:
        ups = {
            m: HttpUpstream(m, UpstreamSettings(base_url=bad.base(m), breaker_failures=1, breaker_reset_s=60))
            for m in ("status400", "status429", "status422", "fail500")
        }
        try:
            for name in ("status400", "status429", "status422"):
                for _ in range(2):
                    assert (await ups[name].send("/chat/completions", b"{}")).status == int(name[6:])
                assert ups[name].breaker.state == "closed" and ups[name].breaker.failures == 0
            assert (await ups["fail500"].send("/chat/completions", b"{}")).status == 500
            assert ups["fail500"].breaker.state == "open"
        finally:
            for up in ups.values():
                await up.aclose()

    _run(scenario())


def test_waiting_for_a_pooled_connection_is_not_a_provider_failure(bad: DroppingUpstream) -> None:
    """One caller's long stream holds the only connection; the provider is up and streaming. A
    second call gives up waiting for a connection: its caller gets an error, but the circuit must
    stay closed (here it opens, and every caller gets 503 for ``breaker_reset_s``)."""
    cfg = UpstreamSettings(
        base_url=bad.base("slowstream"), max_connections=1, breaker_failures=1, total_timeout_s=0.2
    )

    async def scenario() -> None:
        up = HttpUpstream("prov", cfg)
        stream = await up.open_stream("/chat/completions", b"{}")
        try:
            assert await stream.next_batch()  # type: ignore[attr-defined]
            with pytest.raises(UpstreamError):
                await up.send("/chat/completions", b"{}")
            assert up.breaker.failures == 0
            assert up.breaker.state == "closed"
        finally:
            await stream.aclose()
            await up.aclose()

    before = len(bad.requests)
    _run(scenario())
    assert len(bad.requests) - before == 1  # the second call never reached the provider


# -- start-up ---------------------------------------------------------------------------------------


class _FakeIdentity:
    def bootstrap_admin(self) -> None:
        return None


class _FakeRuntime:
    identity = _FakeIdentity()

    @classmethod
    def open(cls, settings: Settings) -> _FakeRuntime:
        return cls()

    def close(self) -> None:
        pass


def test_serve_with_several_workers_reports_a_missing_provider_key_before_starting_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With one worker the app is built in-process and the ConfigError reaches the CLI (exit 2);
    with two it is raised in each spawned worker only (seen by hand: 7 tracebacks in 25 s, still
    running)."""
    for var in ("REVIEW5_UNSET_KEY", "BASTION_SERVER__WORKERS", "BASTION_SERVER__HOST", "BASTION_CONFIG"):
        monkeypatch.setenv(var, "")  # so that what serve sets for its workers is undone too
        monkeypatch.delenv(var)
    started: list[Any] = []
    monkeypatch.setattr("bastion.cli.serve.uvicorn.run", lambda *a, **k: started.append((a, k)))
    monkeypatch.setattr("bastion.cli.serve.Runtime", _FakeRuntime)
    monkeypatch.setattr("bastion.cli.serve.configure_logging", lambda level: None)
    cfg = tmp_path / "bastion.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp_path / "data"),
                "gateway": {
                    "egress_allowlist": ["api.openai.com"],
                    "upstreams": {
                        "openai": {
                            "base_url": "https://api.openai.com/v1",
                            "api_key_env": "REVIEW5_UNSET_KEY",
                        }
                    },
                    "models": {"gpt": {"upstream": "openai"}},
                    "limits": {"per_worker_counts": True},
                },
            }
        ),
        encoding="utf-8",
    )
    rc = main(["--config", str(cfg), "serve", "--workers", "2"])
    assert not started, "the workers were started with an unusable upstream"
    assert rc == EXIT_USAGE
    assert "REVIEW5_UNSET_KEY" in capsys.readouterr().err
