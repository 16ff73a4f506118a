"""Two gateway processes sharing Redis enforce ONE global rate limit (not one per replica).

Run as a script, this file is one gateway replica: ``python test_gateway_redis.py PORT REDIS_URL RPM ID``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from support.net import free_port, wait_until_ready

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]


def _serve(port: int, redis_url: str, rpm: int, ident: str) -> None:  # pragma: no cover - subprocess
    import uvicorn
    from gateway.harness import FakeAuthenticator, FakeAuthorizer, MemoryAudit, principal

    from bastion.config import load_settings
    from bastion.domain.identity import Role
    from bastion.gateway import GatewayComponents, create_gateway

    settings = load_settings(
        None,
        gateway={
            "limits": {
                "storage": "redis",
                "redis_url": redis_url,
                "per_key": {"requests_per_minute": rpm, "concurrent": 64},
            }
        },
    )
    auth = FakeAuthenticator()
    auth.add("k", principal(ident, Role.ADMIN))
    app = create_gateway(settings, GatewayComponents(auth, FakeAuthorizer(), MemoryAudit()))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error")


@pytest.mark.redis
@pytest.mark.slow
def test_two_replicas_share_one_rate_limit() -> None:
    redis_url = os.environ.get("BASTION_TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("Redis tests need BASTION_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
    rpm, ident = 7, uuid.uuid4().hex  # a fresh principal (and key id) so earlier runs do not count
    ports = [free_port(), free_port()]
    # the paths pytest gives this module, for the gateway harness and the support package
    paths = (ROOT / "src", ROOT / "tests" / "unit", ROOT / "tests")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths))}
    procs = [
        subprocess.Popen([sys.executable, str(HERE), str(p), redis_url, str(rpm), ident], env=env, cwd=ROOT)
        for p in ports
    ]
    try:
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        for u, proc in zip(urls, procs, strict=True):
            wait_until_ready(u, proc, path="/healthz", timeout_s=30)
        statuses = []
        body = {"model": "bastion-demo", "input": "x"}
        for i in range(20):
            r = httpx.post(
                urls[i % 2] + "/v1/embeddings", json=body, headers={"authorization": "Bearer k"}, timeout=10
            )
            statuses.append(r.status_code)
        assert statuses.count(200) == rpm, statuses
        assert statuses.count(429) == 20 - rpm
        # both replicas refused once the shared window was spent
        assert 429 in statuses[0::2] and 429 in statuses[1::2]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)


if __name__ == "__main__":  # pragma: no cover
    _serve(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4])
