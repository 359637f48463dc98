"""Ready-made worlds: the demo cluster and generated worlds for benchmarks and ``profile``."""

from __future__ import annotations

from kportforward.sim.world import ContainerPort, ServicePort, World


def demo_world() -> World:
    """About a dozen services of every kind across ``default`` and ``payments``, with web, REST and
    RPC-style ports (numeric and named targetPorts), used by ``kportforward demo`` and ``sim``."""
    w = World(seed=42)
    # default: a web front end, REST APIs, an RPC service, data stores and a bare debug pod
    w.add_app("web-frontend", replicas=2, port=80, target_port=8080, port_name="http")
    w.add_app("api-gateway", port=8080, target_port=8080, port_name="http")
    w.add_deployment("user-service", ports=[ContainerPort(8080, "http", "http")])
    w.add_service("user-service", ports=[ServicePort(80, 8080, "http")])
    w.add_app("docs", port=80, target_port=3000, port_name="web")
    w.add_deployment("auth-grpc", ports=[ContainerPort(9090, "grpc", "echo")])
    w.add_service("auth-grpc", ports=[ServicePort(9090, "grpc", "grpc")])
    w.add_statefulset("redis", ports=[ContainerPort(6379, "redis", "echo")])
    w.add_service("redis", ports=[ServicePort(6379, "redis", "redis")])
    w.add_statefulset("postgres", ports=[ContainerPort(5432, "postgres", "echo")])
    w.add_service("postgres", ports=[ServicePort(5432, 5432, "postgres")])
    w.add_replicaset("metrics-exporter", ports=[ContainerPort(9100, "metrics", "http")])
    w.add_service("metrics-exporter", ports=[ServicePort(9100, "metrics", "metrics")])
    w.add_pod("debug-shell", labels={"app": "debug-shell"}, ports=[ContainerPort(7000, "tcp")])
    # payments: a second namespace with the same mix
    ns = "payments"
    w.add_app("payments-api", namespace=ns, replicas=2, port=80, target_port=8080)
    w.add_deployment("ledger-rpc", namespace=ns, ports=[ContainerPort(50051, "grpc", "echo")])
    w.add_service("ledger-rpc", namespace=ns, ports=[ServicePort(50051, "grpc", "grpc")])
    w.add_app("billing-ui", namespace=ns, port=80, target_port=3000, port_name="web")
    w.add_statefulset("fraud-model", namespace=ns, ports=[ContainerPort(8501, "rest", "http")])
    w.add_service("fraud-model", namespace=ns, ports=[ServicePort(8501, "rest", "rest")])
    w.add_replicaset("invoice-worker", namespace=ns, ports=[ContainerPort(8080, "http", "http")])
    w.add_service("invoice-worker", namespace=ns, ports=[ServicePort(80, "http", "http")])
    return w


def generated_world(n: int, namespace: str = "default") -> World:
    """``n`` services ``svc-000``… each backed by a one-pod Deployment with two container ports:
    8080 ``http`` (HTTP backend, service port 80) and 9000 ``echo`` (echo backend, service 9000)."""
    w = World(seed=7)
    width = max(3, len(str(n - 1)))
    for i in range(n):
        name = f"svc-{i:0{width}d}"
        w.add_deployment(
            name,
            namespace=namespace,
            ports=[ContainerPort(8080, "http", "http"), ContainerPort(9000, "echo", "echo")],
        )
        w.add_service(
            name,
            namespace=namespace,
            ports=[ServicePort(80, "http", "http"), ServicePort(9000, "echo", "echo")],
        )
    return w
