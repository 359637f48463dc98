"""Discovery through the real API path (kubernetes client → the simulator), and its failures."""

from __future__ import annotations

import pytest

from kportforward.kube.classify import KubeApiError
from kportforward.kube.discover import discover_services


async def test_lists_a_namespaces_services_and_tcp_ports(sim) -> None:
    found = await discover_services("payments", kubeconfig=str(sim.kubeconfig_path))
    assert found.namespace == "payments" and found.context == "kportforward-sim"
    services = {s.name: s for s in found.services}
    assert list(services) == sorted(services)
    assert {p.port for p in services["ledger-rpc"].ports} == {50051}
    assert services["ledger-rpc"].ports[0].name == "grpc"
    assert "web-frontend" not in services  # another namespace


async def test_default_namespace_comes_from_the_context(sim) -> None:
    found = await discover_services(None, kubeconfig=str(sim.kubeconfig_path))
    assert found.namespace == "default"
    assert "web-frontend" in {s.name for s in found.services}


async def test_a_forbidden_list_is_a_classified_one_line_error(sim) -> None:
    sim.add_rule(403, method="GET", path_regex=r"/namespaces/payments/services")
    with pytest.raises(KubeApiError) as info:
        await discover_services("payments", kubeconfig=str(sim.kubeconfig_path), timeout=5)
    assert info.value.kind == "forbidden"
    assert "listing the services of namespace 'payments'" in str(info.value)
    assert "\n" not in str(info.value)
