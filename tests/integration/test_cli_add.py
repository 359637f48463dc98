"""`kportforward discover` and `add` from the command line, against the simulator's API."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_cli_ux import run_cli


def test_add_and_discover_against_the_simulator(sim, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("portForwards:\n")
    kubeconfig = str(sim.kubeconfig_path)
    done = run_cli("discover", "-n", "payments", "--kubeconfig", kubeconfig)
    assert done.returncode == 0, done.stderr
    assert any(line.split() == ["ledger-rpc", "50051/grpc"] for line in done.stdout.splitlines())
    done = run_cli("discover", "-n", "payments", "--kubeconfig", kubeconfig, "--json")
    assert '"name": "ledger-rpc"' in done.stdout
    done = run_cli("add", "-n", "payments", "--kubeconfig", kubeconfig, "--config", str(config),
                   "ledger-rpc", "fraud-model:rest")  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = config.read_text()
    assert text.startswith("portForwards:\n  # Added by kportforward add on ")
    assert "  ledger-rpc:\n    target: service/ledger-rpc\n    targetPort: 50051\n" in text
    assert "  fraud-model:\n    target: service/fraud-model\n    targetPort: 8501\n" in text
    done = run_cli("add", "-n", "payments", "--kubeconfig", kubeconfig, "--config", str(config),
                   "nope")  # fmt: skip
    assert done.returncode == 2 and "no service 'nope'" in done.stderr
    assert "services there: billing-ui" in done.stderr
    before = config.read_text()
    done = run_cli("add", "-n", "payments", "--kubeconfig", kubeconfig, "--config", str(config),
                   "--dry-run", "ledger-rpc")  # fmt: skip
    assert done.returncode == 0 and "ledger-rpc-2:" in done.stdout
    assert config.read_text() == before
