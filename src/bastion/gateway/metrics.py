"""Prometheus metrics of the gateway (served at ``/metrics``). Labels come from config, never callers."""

from __future__ import annotations

from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Label combinations remembered per metric (they come from config, so this is a safety bound).
_MAX_CHILDREN = 4096

M = TypeVar("M", Counter, Histogram)


class Labelled(Generic[M]):
    """A labelled metric whose children are looked up once: ``labels()`` of prometheus-client
    validates, locks and builds a key on every call, which the hot path need not pay."""

    __slots__ = ("_children", "metric")

    def __init__(self, metric: M) -> None:
        self.metric: M = metric
        self._children: dict[tuple[str, ...], M] = {}

    def labels(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            if len(self._children) >= _MAX_CHILDREN:
                self._children.clear()
            child = self._children[values] = self.metric.labels(*values)
        return child


class GatewayMetrics:
    """The gateway's metrics in their own registry (several gateways may live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Labelled(
            Counter(
                "bastion_gateway_requests",
                "Gateway calls by route, model, outcome and status",
                ["route", "model", "outcome", "status"],
                registry=r,
            )
        )
        self.latency = Labelled(
            Histogram(
                "bastion_gateway_request_seconds",
                "Whole-call latency",
                ["route"],
                buckets=_BUCKETS,
                registry=r,
            )
        )
        self.upstream_latency = Labelled(
            Histogram(
                "bastion_gateway_upstream_seconds",
                "Upstream latency (to first byte on streams)",
                ["upstream"],
                buckets=_BUCKETS,
                registry=r,
            )
        )
        self.upstream_errors = Labelled(
            Counter(
                "bastion_gateway_upstream_errors", "Upstream failures", ["upstream", "status"], registry=r
            )
        )
        self.blocks = Labelled(
            Counter(
                "bastion_gateway_guard_blocks",
                "Calls blocked by a guard",
                ["detector", "direction"],
                registry=r,
            )
        )
        self.tokens = Labelled(
            Counter("bastion_gateway_tokens", "Tokens by model and kind", ["model", "kind"], registry=r)
        )
        self.limited = Labelled(
            Counter("bastion_gateway_limited", "Calls refused by a limit", ["reason"], registry=r)
        )
        self.limiter_unavailable = Counter(
            "bastion_gateway_limiter_unavailable",
            "Times the shared limit store could not be reached",
            registry=r,
        )
        self.in_flight = Gauge("bastion_gateway_in_flight", "Calls being served", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
