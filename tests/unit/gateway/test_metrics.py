"""The gateway's metrics: plain counters rendered at scrape time, the same exposition as
prometheus-client's own Counter / Histogram / Gauge."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bastion.gateway.metrics import _BUCKETS, GatewayMetrics

_CREATED = re.compile(r"^(\S+_created(?:\{[^}]*\})?) \S+$", re.MULTILINE)


def _normalised(text: bytes) -> str:
    return _CREATED.sub(r"\1 T", text.decode())


def _reference() -> tuple[CollectorRegistry, dict[str, object]]:
    """The metrics as prometheus-client's own objects (what the gateway exposed before)."""
    r = CollectorRegistry(auto_describe=True)
    ms: dict[str, object] = {
        "requests": Counter(
            "bastion_gateway_requests",
            "Gateway calls by route, model, outcome and status",
            ["route", "model", "outcome", "status"],
            registry=r,
        ),
        "latency": Histogram(
            "bastion_gateway_request_seconds", "Whole-call latency", ["route"], buckets=_BUCKETS, registry=r
        ),
        "upstream_latency": Histogram(
            "bastion_gateway_upstream_seconds",
            "Upstream latency (to first byte on streams)",
            ["upstream"],
            buckets=_BUCKETS,
            registry=r,
        ),
        "upstream_errors": Counter(
            "bastion_gateway_upstream_errors", "Upstream failures", ["upstream", "status"], registry=r
        ),
        "blocks": Counter(
            "bastion_gateway_guard_blocks", "Calls blocked by a guard", ["detector", "direction"], registry=r
        ),
        "tokens": Counter(
            "bastion_gateway_tokens", "Tokens by model and kind", ["model", "kind"], registry=r
        ),
        "limited": Counter("bastion_gateway_limited", "Calls refused by a limit", ["reason"], registry=r),
        "limiter_unavailable": Counter(
            "bastion_gateway_limiter_unavailable",
            "Times the shared limit store could not be reached",
            registry=r,
        ),
        "in_flight": Gauge("bastion_gateway_in_flight", "Calls being served", registry=r),
    }
    return r, ms


def _drive(m: object) -> None:
    """The same updates on either set of metrics."""
    g = m.__getitem__ if isinstance(m, dict) else lambda name: getattr(m, name)
    g("requests").labels("chat", "bench", "allowed", "200").inc()
    g("requests").labels("chat", "bench", "allowed", "200").inc()
    g("requests").labels("chat", "-", "error", "503").inc()
    for seconds in (0.0005, 0.001, 0.003, 0.05, 1, 121, 7):  # on a bound, between, past the last
        g("latency").labels("chat").observe(seconds)
    g("upstream_latency").labels("mock").observe(0.2)
    g("tokens").labels("bench", "prompt").inc(9)
    g("blocks").labels("pii", "input").inc()
    g("limited").labels("rate").inc()
    g("upstream_errors").labels("mock", "500").inc()
    g("in_flight").inc()
    g("in_flight").inc()
    g("in_flight").dec()
    g("limiter_unavailable").inc()


def test_exposition_is_prometheus_clients_own() -> None:
    registry, reference = _reference()
    _drive(reference)
    ours = GatewayMetrics()
    _drive(ours)
    assert _normalised(ours.render()) == _normalised(generate_latest(registry))


def test_an_idle_gateway_exposes_the_same_families() -> None:
    registry, _ = _reference()
    assert _normalised(GatewayMetrics().render()) == _normalised(generate_latest(registry))


def test_label_values_are_text_and_counted_once() -> None:
    m = GatewayMetrics()
    m.upstream_errors.labels("mock", 500).inc()  # type: ignore[arg-type]
    m.upstream_errors.labels("mock", "500").inc()
    text = m.render().decode()
    assert 'bastion_gateway_upstream_errors_total{status="500",upstream="mock"} 2.0' in text


def test_misuse_is_refused() -> None:
    m = GatewayMetrics()
    with pytest.raises(ValueError, match="label values"):
        m.requests.labels("chat")
    with pytest.raises(ValueError, match="non-negative"):
        m.tokens.labels("bench", "prompt").inc(-1)
