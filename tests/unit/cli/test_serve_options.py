"""What ``bastion serve`` hands uvicorn, and what each (spawned) worker sets up for itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bastion.cli.serve import uvicorn_options
from bastion.config import Settings

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("drain", "graceful"), [(30.0, 30), (0.5, 1), (2.2, 3), (0.0, 0)])
def test_the_graceful_shutdown_wait_is_never_rounded_away(drain: float, graceful: int) -> None:
    s = Settings.model_validate({"environment": "development", "gateway": {"drain_timeout_s": drain}})
    options = uvicorn_options(s)
    assert options["timeout_graceful_shutdown"] == graceful
    assert options["proxy_headers"] is False and options["server_header"] is False


def test_a_worker_process_logs_json_with_secrets_redacted(tmp_path: Path) -> None:
    """Workers are spawned processes that build the app with the factory: their logs must be the
    same redacted JSON as the parent's, not structlog's default console output."""
    config = tmp_path / "bastion.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "environment": "development"}))
    code = (
        "import structlog\n"
        "from bastion.app import create_app_from_env\n"
        "create_app_from_env()\n"
        "structlog.get_logger('probe').warning('probe_event', api_key='sk-live-123', count=2)\n"
    )
    env = {**os.environ, "BASTION_CONFIG": str(config), "PYTHONPATH": str(ROOT / "src")}
    r = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stderr.splitlines() if '"probe_event"' in line]
    assert lines, r.stderr
    assert lines[0]["api_key"] == "[redacted]" and lines[0]["count"] == 2
    assert "sk-live-123" not in r.stderr
