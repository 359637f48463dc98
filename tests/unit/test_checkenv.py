"""check's look at the environment: the real kubectl, a binary that is not kubectl, kubeconfigs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kportforward.commands.checkenv import check_environment, verify_kubectl
from kportforward.core.models import Config
from kportforward.errors import KubectlNotFoundError
from tests.ui.fakes import spec

KUBECONFIG = (
    "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
    "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\n"
    "users:\n- name: u\n  user: {}\n"
    "contexts:\n- name: dev\n  context: {cluster: c, user: u}\n"
)


def test_the_real_kubectl_answers_with_its_version() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed")
    assert verify_kubectl(kubectl).startswith("v1.")


@pytest.mark.parametrize("binary", ["/bin/false", "/bin/true", "/bin/echo"])
def test_a_binary_that_is_not_kubectl_is_named(binary: str) -> None:
    with pytest.raises(KubectlNotFoundError, match=f"{binary} is not kubectl") as info:
        verify_kubectl(binary)
    assert info.value.exit_code == 2


def test_kubeconfig_and_contexts(tmp_path: Path) -> None:
    good = tmp_path / "kubeconfig"
    good.write_text(KUBECONFIG)
    config = Config(forwards=(spec("a", 1), spec("b", 2, context="staging")))
    report = check_environment(config, str(good), "/bin/false")
    assert report.problems[0].startswith("/bin/false is not kubectl")
    assert any("forward 'b'" in p and "staging" in p for p in report.problems)
    missing = check_environment(config, str(tmp_path / "nonexistent"), None)
    assert any("nonexistent" in p for p in missing.problems)
    fine = check_environment(Config(forwards=(spec("a", 1),)), str(good), None)
    if shutil.which("kubectl"):
        assert fine.problems == [] and fine.facts[0].startswith("kubectl v1.")
