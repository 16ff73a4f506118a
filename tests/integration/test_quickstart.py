"""The README's quickstart path, end to end, as a user runs it: ``bastion serve`` on an empty directory
prints a one-time admin key and a curl command; that curl makes a chat completion through Bastion;
the CLI creates a key; the ledger verifies."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from support.net import free_port, wait_until_ready

BASTION = [sys.executable, "-m", "bastion.cli.main"]


def _bastion(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the CLI in ``cwd`` as a user would (no BASTION_* from the test environment)."""
    return subprocess.run(
        [*BASTION, *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_quickstart_serve_curl_keys_and_ledger(tmp_path: Path) -> None:
    port = free_port()
    out_file = tmp_path / "serve.out"
    with out_file.open("w") as out:
        proc = subprocess.Popen(
            [*BASTION, "serve", "--port", str(port)],
            cwd=tmp_path,
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", proc)
        printed = out_file.read_text()
        key = re.search(r"(bst_[0-9a-f]{16}_[A-Za-z0-9_-]{43})", printed)
        assert key, printed
        assert (tmp_path / ".bastion" / "bastion.db").exists()
        curl = printed[printed.index("curl -s") :].split("\n\n")[0]
        if shutil.which("curl"):
            done = subprocess.run(
                ["bash", "-c", curl], capture_output=True, text=True, timeout=30, check=True
            )
            reply = json.loads(done.stdout)
        else:  # the same request the printed command makes
            reply = httpx.post(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                headers={"Authorization": f"Bearer {key.group(1)}"},
                json={"model": "bastion-demo", "messages": [{"role": "user", "content": "Hello, Bastion!"}]},
                timeout=30,
            ).json()
        assert reply["object"] == "chat.completion"
        assert "Hello, Bastion!" in reply["choices"][0]["message"]["content"]

        created = _bastion(
            tmp_path, "keys", "create", "--name", "app", "--role", "user", "--format", "json", timeout=60
        )
        assert created.returncode == 0, created.stderr
        app_key = json.loads(created.stdout)["key"]
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            # not trusted by default (gateway.trust_forwarded_for), and uvicorn must not apply it either
            headers={"Authorization": f"Bearer {app_key}", "X-Forwarded-For": "203.0.113.9"},
            json={"model": "bastion-demo", "messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        assert "server" not in r.headers  # the server software is not announced
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    verify = _bastion(tmp_path, "ledger", "verify", "--format", "json")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report = json.loads(verify.stdout)
    assert report["ok"] is True
    assert report["entries_checked"] >= 5
    tail = _bastion(tmp_path, "ledger", "tail", "-n", "50", "--format", "json")
    assert tail.returncode == 0, tail.stderr
    calls = [e for e in json.loads(tail.stdout) if e["tag"] == "gateway:request:completed"]
    assert calls and {e["attributes"]["client_ip"] for e in calls} == {"127.0.0.1"}


def test_serve_with_several_workers_refuses_per_worker_limits(tmp_path: Path) -> None:
    # the default limits on memory storage would be counted in each worker: refused before anything starts
    done = _bastion(tmp_path, "serve", "--workers", "2", "--port", str(free_port()), timeout=60)
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "gateway.limits.storage" in said and "2 times" in said and "storage: redis" in said
    assert "Traceback" not in said
    assert not (tmp_path / ".bastion").exists(), "something was created before the config was refused"
