"""The CLI's error boundary: documented exit codes, clear messages, no tracebacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.cli.main import EXIT_OK, EXIT_USAGE, main


@pytest.mark.parametrize(
    "argv",
    [
        ["nosuch"],
        ["ledger", "tail", "-n", "-1"],
        ["keys", "create", "--name", "x", "--role", "nosuchrole"],
        ["config", "check", "--format", "xml"],
    ],
)
def test_usage_errors_exit_2_without_traceback(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == EXIT_USAGE
    assert "Traceback" not in capsys.readouterr().err


def test_bad_config_exits_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bastion.yaml"
    cfg.write_text("ledgr: {}\n", encoding="utf-8")
    assert main(["--config", str(cfg), "config", "check"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "[config_error]" in err
    assert "ledgr" in err


def test_config_check_ok(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["config", "check", "--format", "json"]) == EXIT_OK
