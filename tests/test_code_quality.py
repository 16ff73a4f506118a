"""The project's own checks run with the test suite, so CI enforces them: ruff (lint and format),
import-linter (the layering of DESIGN.md) and mypy --strict over src and, with the same settings,
over tests (a stale ``type: ignore`` or an untyped helper there fails too)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)


@pytest.mark.parametrize(
    "cmd",
    [
        ("ruff", "check", "src", "tests", "bench", "training"),
        ("ruff", "format", "--check", "src", "tests", "bench", "training"),
        ("lint-imports",),
        ("mypy",),
        ("mypy", "tests"),
    ],
    ids=["ruff-check", "ruff-format", "import-layers", "mypy-strict", "mypy-strict-tests"],
)
def test_tool_passes(cmd: tuple[str, ...]) -> None:
    exe = BIN / cmd[0]
    if not exe.exists():
        pytest.skip(f"{cmd[0]} is not installed in this environment (install the 'test' extra)")
    proc = _run(str(exe), *cmd[1:])
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-8000:]}\n{proc.stderr[-4000:]}"
