"""The real server under load, and two replicas sharing PostgreSQL and Redis.

* 20,000 chat completions at concurrency 100 against ``bastion.app`` (SQLite ledger with group
  commit, demo upstream, default guards) end with exactly one ledger event per request and a
  ledger that verifies.
* Two gateway processes on one PostgreSQL schema and one Redis write one consistent ledger (exact
  event count, verifies) and enforce one global rate limit.

The servers run as ``uvicorn --factory bastion.app:create_app_from_env`` subprocesses.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from sqlalchemy import Engine, text

from bastion.config import load_settings
from bastion.domain.identity import Role
from bastion.services.runtime import Runtime
from support.net import free_port, wait_until_ready

ROOT = Path(__file__).resolve().parents[2]
CHAT = {"model": "bastion-demo", "messages": [{"role": "user", "content": "load test hello"}]}


def _write_config(tmp: Path, **cfg: Any) -> Path:
    path = tmp / "bastion.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp / "data"), **cfg}))
    return path


def _provision(config: Path) -> tuple[str, str]:
    """Migrate, create the ledger key, a user and an API key; return (principal id, token)."""
    with Runtime.open(load_settings(config)) as rt:
        p = rt.identity.create_principal("loader", roles=[Role.USER], team="blue")
        return p.id, rt.identity.create_key(p.id, name="load").token


@contextlib.contextmanager
def _servers(config: Path, n: int) -> Iterator[list[str]]:
    env = {**os.environ, "BASTION_CONFIG": str(config), "PYTHONPATH": str(ROOT / "src")}
    ports = [free_port() for _ in range(n)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "bastion.app:create_app_from_env",
                "--host",
                "127.0.0.1",
                "--port",
                str(p),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
            cwd=config.parent,
        )
        for p in ports
    ]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        for u, proc in zip(urls, procs, strict=True):
            wait_until_ready(u, proc)
        yield urls
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


async def _load(urls: list[str], token: str, total: int, concurrency: int) -> Counter[int]:
    """``total`` chat completions over ``concurrency`` connections, spread over ``urls``."""
    statuses: Counter[int] = Counter()
    headers = {"Authorization": f"Bearer {token}"}
    counter = iter(range(total))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            for i in counter:
                async with session.post(urls[i % len(urls)] + "/v1/chat/completions", json=CHAT) as r:
                    await r.read()
                    statuses[r.status] += 1

        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout=120)
    return statuses


def _gateway_events(engine: Engine, actor: str) -> Counter[str]:
    """Per-call events of ``actor`` by tag (a call ends in gateway:request:* or gateway:limit:exceeded)."""
    with engine.connect() as c:
        rows = c.execute(
            text(
                "SELECT tag, count(*) FROM ledger_entries WHERE actor = :a AND "
                "(tag LIKE 'gateway:request:%' OR tag = 'gateway:limit:exceeded') GROUP BY tag"
            ),
            {"a": actor},
        ).all()
    return Counter({str(t): int(n) for t, n in rows})


@pytest.mark.slow
def test_20000_requests_at_concurrency_100_one_ledger_event_each(tmp_path: Path) -> None:
    total = 20_000
    config = _write_config(
        tmp_path,
        gateway={"limits": {"per_key": {"requests_per_minute": 1_000_000, "concurrent": 1_000}}},
    )
    principal_id, token = _provision(config)
    with _servers(config, 1) as urls:
        t0 = time.monotonic()
        statuses = asyncio.run(_load(urls, token, total, 100))
        elapsed = time.monotonic() - t0
    assert statuses == Counter({200: total}), statuses
    with Runtime.open(load_settings(config), migrate=False) as rt:
        assert _gateway_events(rt.engine, principal_id) == Counter({"gateway:request:completed": total})
        with rt.engine.connect() as c:
            others = c.execute(
                text("SELECT count(*) FROM ledger_entries WHERE actor = :a AND tag NOT LIKE 'gateway:%'"),
                {"a": principal_id},
            ).scalar_one()
        assert others == 0  # no per-call authentication events beside the call's own
        report = rt.audit.verify()
    assert report.ok, report.reason
    print(f"\n{total} requests at concurrency 100 in {elapsed:.1f} s ({total / elapsed:.0f} req/s)")


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_two_processes_share_postgres_and_redis_one_ledger_one_rate_limit(
    tmp_path: Path, postgres_schema_url: str
) -> None:
    redis_url = os.environ.get("BASTION_TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("Redis tests need BASTION_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
    rpm, total = 40, 150
    config = _write_config(
        tmp_path,
        database={"url": postgres_schema_url},
        gateway={
            "limits": {
                "storage": "redis",
                "redis_url": redis_url,
                "per_key": {"requests_per_minute": rpm, "concurrent": 100},
            }
        },
    )
    principal_id, token = _provision(config)
    with _servers(config, 2) as urls:
        statuses = asyncio.run(_load(urls, token, total, 10))
    # one global limit: exactly rpm calls got through across both replicas, not rpm per replica
    assert statuses == Counter({200: rpm, 429: total - rpm}), statuses
    with Runtime.open(load_settings(config), migrate=False) as rt:
        assert _gateway_events(rt.engine, principal_id) == Counter(
            {"gateway:request:completed": rpm, "gateway:limit:exceeded": total - rpm}
        )
        with rt.engine.connect() as c:
            pids = c.execute(
                text("SELECT DISTINCT canonical FROM ledger_entries WHERE tag = 'system:server:started'")
            ).all()
        assert len(pids) >= 2  # both replicas wrote to this ledger
        report = rt.audit.verify()
    assert report.ok, report.reason
