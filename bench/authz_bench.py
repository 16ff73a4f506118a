"""Authorization decision latency with the built-in Cedar policies.

Run: .venv/bin/python bench/authz_bench.py [--n 20000]

Measures, per decision (median and p99 of individually timed calls):
  baseline   cedarpy.is_authorized with policies and entities passed as text (no caching at all)
  miss       Authorizer.is_authorized on a decision-cache miss (parsed policies, cached principal entities)
  hit        Authorizer.is_authorized on a decision-cache hit (the steady state of a gateway)
  mixed      a rotating mix of 7 roles x 23 operations x 50 resources (cache bounded at 20,000)
  apikey     IdentityService.authenticate_api_key on a cached key (SQLite, in-memory audit sink)
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cedarpy

from bastion.authz import Authorizer
from bastion.authz.authorizer import _principal_json, _resource_json
from bastion.domain.access import Operation, Resource
from bastion.domain.identity import Principal, PrincipalKind, Role


def timed(fn: Callable[[int], object], n: int) -> tuple[float, float]:
    samples = []
    clock = time.perf_counter_ns
    for i in range(n):
        t0 = clock()
        fn(i)
        samples.append(clock() - t0)
    samples.sort()
    return statistics.median(samples) / 1000, samples[int(len(samples) * 0.99)] / 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    n = ap.parse_args().n
    authz = Authorizer()
    p = Principal("u1", PrincipalKind.USER, "alice", frozenset({Role.USER}), team="red")
    r = Resource("model", "m1", {"team": "red", "classification": "internal", "environment": "staging"})
    results: dict[str, tuple[float, float]] = {}

    policies_text = authz.bundle.text
    entities_text = json.dumps(json.loads(_principal_json(p)) + json.loads(_resource_json(r)))
    req = {
        "principal": {"type": "Bastion::Principal", "id": "u1"},
        "action": {"type": "Bastion::Action", "id": "model:invoke"},
        "resource": {"type": "Bastion::Resource", "id": "m1"},
    }
    assert cedarpy.is_authorized(req, policies_text, entities_text).allowed
    results["baseline"] = timed(
        lambda i: cedarpy.is_authorized(req, policies_text, entities_text), max(n // 10, 500)
    )

    resources = [Resource("model", f"m{i}", {"team": "red"}) for i in range(n)]
    authz.clear_cache()
    authz.is_authorized(p, Operation.MODEL_INVOKE, r)  # warm the principal entity cache
    results["miss"] = timed(lambda i: authz.is_authorized(p, Operation.MODEL_INVOKE, resources[i]), n)

    assert authz.is_authorized(p, Operation.MODEL_INVOKE, r).allowed
    results["hit"] = timed(lambda i: authz.is_authorized(p, Operation.MODEL_INVOKE, r), n)

    principals = [
        Principal(f"u-{x.value}", PrincipalKind.USER, x.value, frozenset({x}), team="red") for x in Role
    ]
    ops = list(Operation)
    mixed_res = [Resource("model", f"m{i}", {"team": "shared" if i % 2 else "red"}) for i in range(50)]
    mixed_authz = Authorizer()
    results["mixed"] = timed(
        lambda i: mixed_authz.is_authorized(
            principals[i % len(principals)], ops[(i // 7) % len(ops)], mixed_res[(i // 161) % len(mixed_res)]
        ),
        n,
    )

    results["apikey"] = bench_apikey(n)

    print(f"{'case':<10} {'p50 µs':>10} {'p99 µs':>10}")
    for name, (p50, p99) in results.items():
        print(f"{name:<10} {p50:>10.2f} {p99:>10.2f}")
    print(f"baseline/hit p50 ratio: {results['baseline'][0] / results['hit'][0]:.1f}x")


def bench_apikey(n: int) -> tuple[float, float]:
    from bastion.domain.events import AuditEvent
    from bastion.services.identity import IdentityService
    from bastion.store.engine import make_engine
    from bastion.store.schema import create_all

    class Sink:
        def record(self, event: AuditEvent) -> object:
            return None

    with tempfile.TemporaryDirectory() as d:
        engine = make_engine(f"sqlite:///{Path(d) / 'b.db'}")
        create_all(engine)
        svc = IdentityService(engine, Sink(), cache_ttl_s=300, last_used_resolution_s=3600)
        svc.create_principal("bench", roles=["user"])
        token = svc.create_key("bench", name="k").token
        svc.authenticate_api_key(token, "127.0.0.1")
        result = timed(lambda i: svc.authenticate_api_key(token, "127.0.0.1"), n)
        engine.dispose()
        return result


if __name__ == "__main__":
    main()
