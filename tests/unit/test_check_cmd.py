"""``kportforward check``: the table, the JSON, warnings on stderr, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kportforward import cli
from kportforward.core.config import load_config
from tests.conftest import DATA, run_cli

GOOD = DATA / "config" / "good"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    load_config.cache_clear()


def test_table_through_the_real_entry_point() -> None:
    result = run_cli("check", "--offline", "--config", str(GOOD / "go_tool_config.yaml"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "TARGET", "NAMESPACE", "PORTS", "TYPE", "CONTEXT", "GROUP"]
    assert lines[1].split() == ["api", "service/api", "default", "8080:80", "rest", "-", "-"]
    assert [line.split()[0] for line in lines[1:]] == ["api", "frontend", "users-grpc"]
    # Aligned: every row starts its TARGET cell at the same column.
    column = lines[0].index("TARGET")
    assert all(line[column - 2 : column] == "  " and line[column] != " " for line in lines[1:])
    assert "legacy" not in result.stdout  # disabled
    assert "sources: <embedded>, " in result.stderr
    assert "Traceback" not in result.stderr


def test_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "--offline", "--json", "--config", str(GOOD / "all_keys.yaml")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {
        "version",
        "ok",
        "sources",
        "monitoringIntervalSeconds",
        "uiOptions",
        "portForwards",
        "warnings",
    }
    assert doc["version"] == 1
    assert doc["sources"][0] == "<embedded>" and doc["sources"][-1].endswith("all_keys.yaml")
    assert doc["monitoringIntervalSeconds"] == 90.0
    assert doc["uiOptions"] == {"refreshRateSeconds": 0.5, "theme": "nord"}
    entry = doc["portForwards"]["everything"]
    assert entry == {
        "target": "statefulset/db",
        "targetPort": "postgres",
        "localPort": 15432,
        "namespace": "data",
        "type": "other",
        "swaggerPath": "openapi.yaml",
        "apiPath": "v1",
        "context": "staging",
        "kubeconfig": str(GOOD / "kube" / "staging.yaml"),
        "address": "::1",
        "group": "storage",
    }
    assert doc["warnings"] == []


def test_warnings_go_to_stderr_and_into_the_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "--offline", "--config", str(GOOD / "warnings.yaml")]) == 0
    out, err = capsys.readouterr()
    assert "namespce" not in out
    warnings = [line for line in err.splitlines() if line.startswith("kportforward: warning: ")]
    assert len(warnings) == 3
    assert any("warnings.yaml:11: portForwards.web.localPort" in w for w in warnings)
    assert "0.0.0.0:8080:80" in out  # a non-default address is shown with the ports
    assert cli.main(["check", "--offline", "--json", "--config", str(GOOD / "warnings.yaml")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {w["key"] for w in doc["warnings"]} == {
        "portForwards.api.namespce",
        "portForwards.web.localPort",
        "portForwards.web.address",
    }
    assert all(w["file"].endswith("warnings.yaml") and w["line"] for w in doc["warnings"])


def test_no_forwards_names_the_user_file(
    capsys: pytest.CaptureFixture[str], hermetic_env: Path
) -> None:
    assert cli.main(["check", "--offline"]) == 0
    out = capsys.readouterr().out
    assert "No forwards configured" in out
    assert str(hermetic_env / ".config" / "kportforward" / "config.yaml") in out
    assert not (hermetic_env / ".config" / "kportforward").exists()  # nothing created
    assert cli.main(["check", "--offline", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["portForwards"] == {}


def test_user_file_and_flag_are_merged(
    capsys: pytest.CaptureFixture[str], hermetic_env: Path, tmp_path: Path
) -> None:
    user = hermetic_env / ".config" / "kportforward" / "config.yaml"
    user.parent.mkdir(parents=True)
    user.write_text("portForwards:\n  a: {target: pod/a, targetPort: 1, localPort: 1001}\n")
    flag = tmp_path / "flag.yaml"
    flag.write_text("portForwards:\n  a: {context: prod, group: ops}\n")
    assert cli.main(["check", "--offline", "--json", "--config", str(flag)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["sources"] == ["<embedded>", str(user), str(flag)]
    assert doc["portForwards"]["a"]["context"] == "prod"
    assert doc["portForwards"]["a"]["localPort"] == 1001


def test_check_imports_neither_textual_nor_kubernetes() -> None:
    code = (
        "import contextlib, io, sys\n"
        "from kportforward.cli import main\n"
        "quiet = io.StringIO()\n"
        "with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):\n"
        "    rc = main(['check', '--offline', '--config', "
        f"{str(GOOD / 'go_tool_config.yaml')!r}])\n"
        "assert rc == 0, rc\n"
        "print('textual' in sys.modules, 'kubernetes' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]


def test_check_validates_contexts_against_the_kubeconfig(tmp_path: Path) -> None:
    """A forward whose context is not in the kubeconfig is an error naming it (exit 2), unless
    --offline; with no kubeconfig anywhere the contexts are not checked (a warning)."""
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: alpha\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: alpha, context: {cluster: c, user: u}}]\n"
    )
    config = tmp_path / "c.yaml"
    config.write_text(
        "portForwards:\n"
        "  good: {target: svc/a, targetPort: 80, localPort: 18080}\n"
        "  bad: {target: svc/b, targetPort: 80, localPort: 18081, context: nope}\n"
    )
    result = run_cli("check", "--config", str(config), "--kubeconfig", str(kubeconfig))
    assert result.returncode == 2
    assert "forward 'bad'" in result.stderr and "'nope'" in result.stderr
    assert "alpha" in result.stderr and "forward 'good'" not in result.stderr
    offline = run_cli(
        "check", "--offline", "--config", str(config), "--kubeconfig", str(kubeconfig)
    )
    assert offline.returncode == 0, offline.stderr
