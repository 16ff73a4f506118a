"""Egress: an upstream's host must be on ``gateway.egress_allowlist`` when the config is loaded (exact
hosts, and ``*.suffix`` entries for subdomains only), credentials in its URL are refused, and nothing a
caller sends (Host, X-Forwarded-Host, any header) changes where the gateway connects."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bastion.config import Settings, load_settings
from bastion.domain.identity import Role
from bastion.errors import ConfigError

from .harness import BadUpstream, gateway_settings, live_gateway, principal


def settings_for(base_url: str, allowlist: list[str]) -> Settings:
    return load_settings(
        None,
        gateway={
            "upstreams": {"prov": {"base_url": base_url}},
            "models": {"m": {"upstream": "prov"}},
            "egress_allowlist": allowlist,
        },
    )


# -- at load time ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "allowlist"),
    [
        ("https://api.openai.com/v1", ["api.openai.com"]),
        ("https://API.OpenAI.com./v1", ["api.openai.com"]),  # case and a trailing dot do not matter
        ("https://api.openai.com/v1", ["API.OPENAI.COM."]),
        ("https://myres.openai.azure.com/openai", ["*.openai.azure.com"]),
        ("https://a.b.openai.azure.com/openai", ["*.openai.azure.com"]),  # any depth below the suffix
        ("http://127.0.0.1:8000/v1", ["127.0.0.1"]),  # the port is not part of the entry
        ("http://vllm.internal:9000/v1", ["api.openai.com", "vllm.internal"]),
    ],
)
def test_allowlisted_hosts_load(base_url: str, allowlist: list[str]) -> None:
    s = settings_for(base_url, allowlist)
    assert s.gateway.upstreams["prov"].base_url == base_url


@pytest.mark.parametrize(
    ("base_url", "allowlist", "host"),
    [
        ("https://api.evil.com/v1", ["api.openai.com"], "api.evil.com"),
        ("https://api.openai.com/v1", [], "api.openai.com"),  # the default allowlist is empty
        ("https://api.openai.com.evil.com/v1", ["api.openai.com"], "api.openai.com.evil.com"),
        ("https://evilapi.openai.com/v1", ["api.openai.com"], "evilapi.openai.com"),
        ("https://openai.azure.com/openai", ["*.openai.azure.com"], "openai.azure.com"),  # not the bare one
        ("https://evilopenai.azure.com/openai", ["*.openai.azure.com"], "evilopenai.azure.com"),
        ("https://openai.azure.com.evil.com/x", ["*.openai.azure.com"], "openai.azure.com.evil.com"),
        ("https://x.azure.com/openai", ["*.openai.azure.com"], "x.azure.com"),
        ("http://127.0.0.2:8000/v1", ["127.0.0.1"], "127.0.0.2"),
        ("http://evil.com#@api.openai.com/v1", ["api.openai.com"], "evil.com"),  # a fragment, not a host
    ],
)
def test_hosts_off_the_allowlist_are_refused_at_load(base_url: str, allowlist: list[str], host: str) -> None:
    with pytest.raises(ConfigError) as e:
        settings_for(base_url, allowlist)
    msg = str(e.value)
    assert "upstreams.prov.base_url" in msg
    assert f"host {host!r} is not in gateway.egress_allowlist" in msg


@pytest.mark.parametrize(
    "base_url",
    [
        "https://user:s3cretpw@api.openai.com/v1",
        "https://s3cretpw@api.openai.com/v1",  # a user name alone (often a token) too
        "https://:s3cretpw@api.openai.com/v1",
        "http://api.openai.com:443@s3cretpw.evil.com/v1",  # looks like the allowed host, is userinfo
        "http://s3cretpw.evil.com\\@api.openai.com/v1",
    ],
)
def test_credentials_in_the_url_are_refused_without_echoing_them(base_url: str) -> None:
    with pytest.raises(ConfigError) as e:
        settings_for(base_url, ["api.openai.com", "s3cretpw.evil.com"])
    msg = str(e.value)
    assert "credentials in an upstream URL are refused" in msg
    assert "s3cretpw" not in msg and "s3cretpw" not in str(e.value.hint)


@pytest.mark.parametrize(
    "base_url", ["ftp://api.openai.com/v1", "file:///etc/passwd", "api.openai.com/v1", "https:///v1"]
)
def test_non_http_urls_are_refused(base_url: str) -> None:
    with pytest.raises(ConfigError, match="not an http\\(s\\) URL"):
        settings_for(base_url, ["api.openai.com"])


def test_credential_error_names_the_offending_upstream() -> None:
    with pytest.raises(ConfigError) as e:
        settings_for("https://user:pw@api.openai.com/v1", ["api.openai.com"])
    assert "upstreams.prov.base_url" in str(e.value)


def test_demo_upstreams_need_no_allowlist() -> None:
    s = load_settings(
        None, gateway={"upstreams": {"d": {"type": "demo"}}, "models": {"m": {"upstream": "d"}}}
    )
    assert s.gateway.egress_allowlist == []


# -- at run time: the caller cannot pick the target --------------------------------------------------


@pytest.fixture(scope="module")
def ups() -> Iterator[tuple[BadUpstream, BadUpstream]]:
    with BadUpstream() as real, BadUpstream() as decoy:
        yield real, decoy


def request_target(head: str) -> tuple[str, dict[str, str]]:
    lines = head.split("\r\n")
    headers = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    return lines[0], headers


@pytest.mark.parametrize(
    "caller_headers",
    [
        {"Host": "DECOY"},
        {"X-Forwarded-Host": "DECOY", "X-Forwarded-Proto": "http", "Forwarded": "host=DECOY"},
        {"X-Original-URL": "http://DECOY/ok/v1", "X-Rewrite-URL": "http://DECOY/ok/v1"},
        {"X-Upstream": "http://DECOY/ok/v1", "OpenAI-Base-URL": "http://DECOY/ok/v1", "api-base": "DECOY"},
    ],
)
def test_caller_headers_cannot_redirect_the_upstream_call(
    ups: tuple[BadUpstream, BadUpstream], caller_headers: dict[str, str]
) -> None:
    real, decoy = ups
    decoy_host = f"127.0.0.1:{decoy.port}"
    headers = {k: v.replace("DECOY", decoy_host) for k, v in caller_headers.items()}
    s = gateway_settings(
        upstreams={"u": {"base_url": real.base("ok")}},
        models={"m": {"upstream": "u"}},
        egress_allowlist=["127.0.0.1"],
        guards={"input": [], "output": []},
    )
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with live_gateway(s) as lv:
        lv.auth.add("k", principal("p", Role.ADMIN))
        before_real, before_decoy = len(real.heads), len(decoy.heads)
        r = httpx.post(
            lv.v1 + "/chat/completions",
            json=body,
            headers={"authorization": "Bearer k", **headers},
            timeout=10,
        )
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "fine"
    assert len(decoy.heads) == before_decoy, "the call reached the caller's chosen host"
    heads = real.heads[before_real:]
    assert len(heads) == 1
    line, sent = request_target(heads[0])
    assert line == "POST /ok/v1/chat/completions HTTP/1.1"
    assert sent["host"] == f"127.0.0.1:{real.port}"
    assert decoy_host not in heads[0]
