"""Every failure row of shared/notes/kubectl-port-forward.md §3, reproduced with the real kubectl
against the simulator: kubectl's stderr and exit code are what the supervisor will classify."""

from __future__ import annotations

import signal
import socket
import time

import pytest

from kportforward.sim import Simulator, World

from .conftest import small_world

LOST = "error: lost connection to pod"


@pytest.fixture
def small(sim_factory) -> Simulator:
    """A simulator on the small world."""
    return sim_factory(small_world())


def _wait(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.mark.parametrize("spdy_only", [False, True], ids=["websocket", "spdy"])
def test_pod_deleted_while_forwarding(small, port_forward, spdy_only) -> None:
    env = {"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"} if spdy_only else None
    pf = port_forward(small, "pod/solo", 7000, env=env)
    small.delete_pod("default", "solo")
    assert pf.wait_exit() == 1
    assert LOST in pf.stderr_lines


def test_dropped_streams_with_a_local_connection_open(small, port_forward) -> None:
    pf = port_forward(small, "service/echo", 7000)
    with pf.connect() as conn:
        conn.sendall(b"hello")
        assert conn.recv(5) == b"hello"
        assert small.drop_streams() == 1
        assert pf.wait_exit() == 1
        assert conn.recv(10) == b""  # the open local socket gets EOF
    assert LOST in pf.stderr_lines


def test_simulator_stopped_under_kubectl(sim_factory, port_forward) -> None:
    sim = sim_factory(small_world())
    pf = port_forward(sim, "pod/solo", 7000)
    sim.stop_in_thread()
    assert pf.wait_exit() == 1
    assert LOST in pf.stderr_lines


def test_hung_server_keeps_kubectl_alive_then_resumes(small, port_forward) -> None:
    pf = port_forward(small, "service/echo", 7000)
    assert pf.echo(b"before") == b"before"
    small.hang()
    with pf.connect(timeout=1.0) as conn:
        conn.sendall(b"stalled")
        with pytest.raises(TimeoutError):
            conn.recv(10)  # nothing comes back while the simulator hangs
    assert pf.alive()
    small.resume()
    assert pf.echo(b"after") == b"after"
    assert pf.alive()


def test_refused_backend_kills_the_whole_forward(small, port_forward) -> None:
    pf = port_forward(small, "pod/solo", 7000)
    small.refuse_backend("default", "solo", 7000)
    with pf.connect() as conn:
        conn.sendall(b"x")
        assert conn.recv(10) == b""
    assert pf.wait_exit() == 1
    assert f"Handling connection for {pf.local_port}" in pf.stdout_lines
    assert pf.wait_for_stderr(r"an error occurred forwarding \d+ -> 7000: .*connection refused")
    assert pf.stderr_lines[-1] == LOST


@pytest.mark.parametrize(
    "target,message",
    [
        ("pod/nope", 'Error from server (NotFound): pods "nope" not found'),
        ("service/nope", 'Error from server (NotFound): services "nope" not found'),
        ("deployment/nope", 'Error from server (NotFound): deployments.apps "nope" not found'),
        ("statefulset/nope", 'Error from server (NotFound): statefulsets.apps "nope" not found'),
        ("replicaset/nope", 'Error from server (NotFound): replicasets.apps "nope" not found'),
    ],
)
def test_not_found_for_each_kind(small, port_forward, target, message) -> None:
    pf = port_forward(small, target, 80, wait=False)
    assert pf.wait_exit() == 1
    assert pf.stderr_lines == [message]


def test_pod_not_running(sim_factory, port_forward) -> None:
    w = World()
    w.add_pod("waiting", phase="Pending", ready=False, ports=[7000])
    sim = sim_factory(w)
    pf = port_forward(sim, "pod/waiting", 7000, wait=False)
    assert pf.wait_exit() == 1
    assert pf.stderr_lines == [
        "error: unable to forward port because pod is not running. Current status=Pending"
    ]


def test_no_pods_behind_the_service_times_out(small, port_forward) -> None:
    small.delete_pod("default", small.pods("default", {"app": "echo"})[0])
    pf = port_forward(small, "service/echo", 7000, extra=["--pod-running-timeout=1s"], wait=False)
    assert pf.wait_exit() == 1
    assert pf.stderr_lines == ["error: timed out waiting for the condition"]
    assert small.count("GET", r"labelSelector=app%3Decho.*watch=true|watch=true.*app%3Decho") >= 1


def test_service_port_not_declared(small, port_forward) -> None:
    pf = port_forward(small, "service/echo", 1234, wait=False)
    assert pf.wait_exit() == 1
    assert pf.stderr_lines == ["error: Service echo does not have a service port 1234"]


def test_unauthorized_everywhere(small, port_forward) -> None:
    small.add_rule(401)
    pf = port_forward(small, "service/echo", 7000, wait=False)
    assert pf.wait_exit() == 1
    assert pf.stderr_lines[-1] == (
        "error: You must be logged in to the server "
        "(the server has asked for the client to provide credentials)"
    )


def test_wrong_token_over_tls(sim_factory, port_forward, tmp_path) -> None:
    sim = sim_factory(small_world(), tls=True)
    good = port_forward(sim, "service/echo", 7000)
    assert good.echo(b"tls") == b"tls"
    bad = sim.write_kubeconfig(tmp_path / "expired", token="expired")
    pf = port_forward(sim, "service/echo", 7000, kubeconfig=bad, wait=False)
    assert pf.wait_exit() == 1
    assert "You must be logged in to the server" in pf.stderr_lines[-1]


def test_forbidden_get(small, port_forward) -> None:
    small.add_rule(403, method="GET", path_regex=r"/services/echo$")
    pf = port_forward(small, "service/echo", 7000, wait=False)
    assert pf.wait_exit() == 1
    assert pf.stderr_lines == [
        'Error from server (Forbidden): services "echo" is forbidden: User "dev" cannot get '
        'resource "services" in API group "" in the namespace "default"'
    ]


@pytest.mark.parametrize("spdy_only", [False, True], ids=["websocket-then-post", "post-only"])
def test_forbidden_portforward(small, port_forward, spdy_only) -> None:
    small.add_rule(403, path_regex=r"/portforward$")
    env = {"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"} if spdy_only else None
    pf = port_forward(small, "pod/solo", 7000, env=env, wait=False)
    assert pf.wait_exit() == 1
    assert pf.stderr_lines == [
        'error: error upgrading connection: pods "solo" is forbidden: User "dev" cannot create '
        'resource "pods/portforward" in API group "" in the namespace "default"'
    ]
    assert small.count("POST", "/portforward$") == 1
    assert small.count("GET", "/portforward$") == (0 if spdy_only else 1)


def test_portforward_subresource_not_found(small, port_forward) -> None:
    small.add_rule(404, path_regex=r"/portforward$")
    pf = port_forward(small, "pod/solo", 7000, wait=False)
    assert pf.wait_exit() == 1
    assert pf.stderr_lines == ['error: error upgrading connection: pods "solo" not found']


def test_busy_local_port_with_explicit_address(small, port_forward) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        pf = port_forward(small, "pod/solo", 7000, local=port, wait=False)
        assert pf.wait_exit() == 1
    finally:
        holder.close()
    assert pf.stderr_lines[-1] == (
        f"error: unable to listen on any of the requested ports: [{{{port} 7000}}]"
    )
    assert pf.stderr_lines[0].startswith(f"Unable to listen on port {port}:")


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 0), (signal.SIGTERM, -15)])
def test_kubectl_signals(small, port_forward, sig, code) -> None:
    pf = port_forward(small, "pod/solo", 7000)
    pf.proc.send_signal(sig)
    assert pf.wait_exit() == code
    assert pf.stderr == ""


@pytest.mark.parametrize(
    "version,post,get",
    [("v1.27.16", 1, 0), ("v1.30.13", 1, 0), ("v1.31.9", 0, 1), ("v1.33.1", 0, 1)],
)
def test_server_version_picks_the_dispatchers_client(sim_factory, port_forward, version, post, get):
    """The gcloud dispatcher execs the kubectl matching /version: 1.27–1.30 speak SPDY only."""
    sim = sim_factory(small_world(), server_version=version)
    pf = port_forward(sim, "service/echo", 7000)
    assert pf.echo(b"old and new") == b"old and new"
    assert sim.count("POST", "/portforward$") == post
    assert sim.count("GET", "/portforward$") == get
    assert _wait(lambda: any(r.path.startswith("/version") for r in sim.request_log))


def test_kubectl_waits_for_a_pod_to_appear(sim_factory, port_forward) -> None:
    """No pod behind the service yet: kubectl watches; the ADDED event lets it forward."""
    w = small_world()
    w.add_service("late", ports=[{"port": 80, "targetPort": 7000}])
    sim = sim_factory(w)
    pf = port_forward(sim, "service/late", 80, extra=["--pod-running-timeout=30s"], wait=False)
    assert _wait(lambda: sim.count("GET", r"app%3Dlate.*watch=true|watch=true.*app%3Dlate") > 0)
    sim.add_pod("late-1", labels={"app": "late"}, ports=[7000])
    pf.wait_ready()
    assert pf.echo(b"finally") == b"finally"


def test_restarted_pod_cuts_the_forward_and_a_new_one_reaches_the_new_pod(small, port_forward):
    (old,) = small.pods("default", {"app": "web"})
    first = port_forward(small, "deployment/web", 8080)
    assert old in first.http_get()
    new = small.restart_pod("default", old)
    assert first.wait_exit() == 1
    assert LOST in first.stderr_lines
    second = port_forward(small, "deployment/web", 8080)
    assert new in second.http_get()


def test_pod_made_pending_is_refused(small, port_forward) -> None:
    small.set_pod_phase("default", "solo", "Pending")
    pf = port_forward(small, "pod/solo", 7000, wait=False)
    assert pf.wait_exit() == 1
    assert pf.stderr_lines[-1].endswith("Current status=Pending")


def test_stop_while_hung_does_not_block(sim_factory, port_forward) -> None:
    sim = sim_factory(small_world())
    pf = port_forward(sim, "pod/solo", 7000)
    sim.hang()
    with pf.connect(timeout=1.0) as conn:
        conn.sendall(b"stuck")
        sim.stop_in_thread(timeout=10)
    assert pf.wait_exit() == 1
