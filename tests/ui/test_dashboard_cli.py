"""``kportforward`` / ``kportforward dashboard``: bad input is one line and exit 2 before any UI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

GOOD = "portForwards:\n  api:\n    target: service/api\n    targetPort: 80\n    localPort: 18080\n"


def one_line_exit_2(result, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]
    assert "\x1b[" not in result.stdout  # the UI never started (no escape sequences)


@pytest.mark.parametrize("command", [[], ["dashboard"]])
def test_config_error_is_one_line_before_the_ui(tmp_path: Path, command: list[str]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("portForwards:\n  api:\n    target: service/api\n    localPort: 99999\n")
    one_line_exit_2(run_cli(*command, "--config", str(config)), str(config))


def test_missing_kubectl_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "good.yaml"
    config.write_text(GOOD)
    result = run_cli("--config", str(config), "--kubectl", str(tmp_path / "no-kubectl"))
    one_line_exit_2(result, "kubectl")


def test_unusable_kubeconfig_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "good.yaml"
    config.write_text(GOOD)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    result = run_cli(
        "--config", str(config), "--kubeconfig", str(kubeconfig), "--kubectl", "/usr/bin/true"
    )
    one_line_exit_2(result, "kubeconfig")
