"""The simulator as an API server: the kubernetes python client, watch, TLS and tokens, the world
file, control endpoints and the request log."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.request
import zlib

import pytest

from kportforward.sim import Simulator, SimulatorClient, World, WorldError, generated_world, spdy


def _client(sim: Simulator):
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(sim.kubeconfig_path))
    return client, api


def _get(sim: Simulator, path: str) -> tuple[int, dict]:
    req = urllib.request.Request(sim.url + path)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_spdy_dictionary_is_byte_exact() -> None:
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2


def test_header_block_round_trip_shares_one_context_per_direction() -> None:
    a, b = spdy.HeaderCodec(), spdy.HeaderCodec()
    for i in range(3):
        headers = {"streamtype": "data", "port": "8080", "requestid": str(i)}
        # a's deflater feeds b's inflater: one zlib stream across blocks, as on the wire
        assert b.decode(a.encode(headers)) == headers


def test_python_client_version_and_list(sim) -> None:
    client, api = _client(sim)
    assert client.VersionApi(api).get_code().git_version == "v1.32.4"
    pods = client.CoreV1Api(api).list_namespaced_pod("default", label_selector="app=redis")
    assert [p.metadata.name for p in pods.items] == ["redis-0"]
    assert pods.items[0].status.phase == "Running"
    deps = client.AppsV1Api(api).list_namespaced_deployment("payments")
    assert {d.metadata.name for d in deps.items} >= {"payments-api", "ledger-rpc"}


def test_python_client_watch_sees_a_deletion(sim) -> None:
    from kubernetes import watch

    client, api = _client(sim)
    core = client.CoreV1Api(api)
    listed = core.list_namespaced_pod("default", label_selector="app=web-frontend")
    victim = listed.items[0].metadata.name
    events: list[tuple[str, str]] = []
    w = watch.Watch()

    def run() -> None:
        for ev in w.stream(
            core.list_namespaced_pod,
            "default",
            label_selector="app=web-frontend",
            resource_version=listed.metadata.resource_version,
            timeout_seconds=20,
        ):
            events.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while sim.count(path_regex="watch=true") == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    sim.delete_pod("default", victim)
    t.join(20)
    assert ("DELETED", victim) in events


def test_watch_without_resource_version_lists_then_streams(sim) -> None:
    """No resourceVersion: ADDED for what exists, then live events; timeoutSeconds ends it."""
    new_name: list[str] = []

    def restart_soon() -> None:
        while sim.count(path_regex="watch=true") == 0:
            time.sleep(0.02)
        new_name.append(sim.restart_pod("default", "redis-0"))

    threading.Thread(target=restart_soon, daemon=True).start()
    url = sim.url + "/api/v1/namespaces/default/pods?watch=true&labelSelector=app%3Dredis"
    lines = []
    with urllib.request.urlopen(url + "&timeoutSeconds=3", timeout=10) as resp:
        for raw in resp:
            ev = json.loads(raw)
            lines.append((ev["type"], ev["object"]["metadata"]["name"]))
            if ev["type"] == "ADDED" and len(lines) > 1:
                break
    assert lines[0] == ("ADDED", "redis-0")
    assert ("DELETED", "redis-0") in lines
    assert ("ADDED", new_name[0]) in lines
    assert new_name[0] != "redis-0"


def test_watch_replays_from_a_resource_version(sim) -> None:
    _, listed = _get(sim, "/api/v1/namespaces/default/pods")
    rv = listed["metadata"]["resourceVersion"]
    sim.set_pod_ready("default", "postgres-0", False)
    url = f"{sim.url}/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}"
    with urllib.request.urlopen(url + "&timeoutSeconds=1", timeout=10) as resp:
        events = [json.loads(line) for line in resp]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("MODIFIED", "postgres-0")
    ]
    ready = {c["type"]: c["status"] for c in events[0]["object"]["status"]["conditions"]}
    assert ready["Ready"] == "False"


def test_open_watches_do_not_block_stop(sim_factory) -> None:
    sim = sim_factory()
    resp = urllib.request.urlopen(sim.url + "/api/v1/pods?watch=true", timeout=10)
    resp.readline()
    thread = sim._thread
    assert thread is not None
    sim.stop_in_thread()
    assert not thread.is_alive()  # the loop finished: the open watch did not hold it
    with pytest.raises(http.client.IncompleteRead):
        resp.read()  # the stream was cut, not left open
    resp.close()


def test_tls_requires_the_token(sim_factory, tmp_path) -> None:
    sim = sim_factory(tls=True)
    client, api = _client(sim)
    assert client.VersionApi(api).get_code().git_version == "v1.32.4"
    bad = sim.write_kubeconfig(tmp_path / "bad", token="wrong")
    from kubernetes import client as kc
    from kubernetes import config

    bad_api = config.new_client_from_config(config_file=str(bad))
    with pytest.raises(kc.exceptions.ApiException) as err:
        kc.CoreV1Api(bad_api).list_namespaced_pod("default")
    assert err.value.status == 401


def test_only_loopback() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1 only"):
        Simulator(World(), host="0.0.0.0")


def test_token_without_tls_is_refused() -> None:
    with pytest.raises(ValueError, match="tls"):
        Simulator(World(), token="t")


def test_not_found_status_names_the_object(sim) -> None:
    assert _get(sim, "/apis/apps/v1/namespaces/default/deployments/nope") == (
        404,
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": 'deployments.apps "nope" not found',
            "reason": "NotFound",
            "code": 404,
            "details": {"name": "nope", "kind": "deployments", "group": "apps"},
        },
    )


def test_rules_and_request_counts(sim) -> None:
    rule = sim.add_rule(403, method="GET", path_regex=r"/services/redis$")
    status, body = _get(sim, "/api/v1/namespaces/default/services/redis")
    assert status == 403
    assert body["message"] == (
        'services "redis" is forbidden: User "dev" cannot get resource "services" '
        'in API group "" in the namespace "default"'
    )
    sim.remove_rule(rule)
    assert _get(sim, "/api/v1/namespaces/default/services/redis")[0] == 200
    assert sim.count("GET", r"/services/redis$") == 2
    assert [r.status for r in sim.request_log if r.path.endswith("/redis")] == [403, 200]


def test_label_selectors(sim) -> None:
    _, body = _get(sim, "/api/v1/pods?labelSelector=app+in+(redis,postgres)")
    assert sorted(p["metadata"]["name"] for p in body["items"]) == ["postgres-0", "redis-0"]
    _, body = _get(sim, "/api/v1/namespaces/payments/pods?labelSelector=app!%3Dbilling-ui")
    names = [p["metadata"]["name"] for p in body["items"]]
    assert names and not any(n.startswith("billing-ui") for n in names)


def test_control_endpoints_drive_faults_from_another_process(sim) -> None:
    remote = SimulatorClient(sim.url)
    assert remote.add_pod("extra", labels={"app": "extra"}, ports=[{"containerPort": 7000}]) == (
        "extra"
    )
    assert sim.pods("default", {"app": "extra"}) == ["extra"]
    remote.set_pod_phase("default", "extra", "Failed")
    assert sim.world.pods[("default", "extra")].phase == "Failed"
    remote.refuse_backend("default", "extra", 7000)
    with pytest.raises(urllib.error.HTTPError) as err:
        remote.refuse_backend("default", "extra", 7001)
    assert err.value.code == 404
    remote.delete_pod("default", "extra")
    assert remote.drop_streams() == 0
    (old,) = remote.pods("default", {"app": "redis"})
    new = remote.restart_pod("default", old)
    assert sim.pods("default", {"app": "redis"}) == [new]
    rule = remote.add_rule(404, path_regex="/version")
    assert _get(sim, "/version")[0] == 404
    remote.remove_rule(rule)
    remote.set_server_version("v1.27.16")
    assert _get(sim, "/version")[1]["gitVersion"] == "v1.27.16"
    remote.hang()
    assert sim.hung
    remote.resume()
    assert not sim.hung
    assert remote.count("GET", "^/version") == 2


def test_world_from_dict_and_yaml(tmp_path) -> None:
    path = tmp_path / "world.yaml"
    path.write_text(
        "namespaces:\n"
        "  team:\n"
        "    deployments:\n"
        "      - name: api\n"
        "        replicas: 2\n"
        "        ports: [{name: http, containerPort: 8080, backend: http}]\n"
        "    services:\n"
        "      - name: api\n"
        "        ports: [{port: 80, targetPort: http}]\n"
        "    pods:\n"
        "      - {name: pending, phase: Pending, ports: [7000]}\n"
    )
    w = World.from_yaml(path)
    assert len(w.pods_matching("team", {"app": "api"})) == 2
    assert w.pods[("team", "pending")].phase == "Pending"
    assert w.services[("team", "api")].ports[0].target_port == "http"


@pytest.mark.parametrize(
    "text,where,fragment",
    [
        ("namespaces: [1]", "1: namespaces", "must be a mapping"),
        ("namespaces:\n  a:\n    widgets: []\n", "3: namespaces.a.widgets", "unknown section"),
        (
            "namespaces:\n  a:\n    pods:\n      - name: p\n        ports: [70000]\n",
            "5: namespaces.a.pods[0].ports[0]",
            "port must be a number from 1 to 65535, got 70000",
        ),
        (
            "namespaces:\n  a:\n    pods:\n      - name: p\n        phase: Bogus\n",
            "5: namespaces.a.pods[0].phase",
            "'Bogus' is not one of",
        ),
        ("namespaces: {a: {pods: [{ports: [1]}]}}", "1: namespaces.a.pods[0]", "needs a 'name'"),
        (
            "namespaces:\n  a:\n    deployments:\n      - name: d\n        colour: red\n",
            "5: namespaces.a.deployments[0].colour",
            "unknown key",
        ),
        (
            "namespaces:\n  a:\n    statefulsets:\n      - {name: d, replicas: -1}\n",
            "4: namespaces.a.statefulsets[0].replicas",
            "must be a number >= 0",
        ),
        ("namespaces: {a: [", "1", "not valid YAML"),
    ],
)
def test_bad_world_files_name_file_line_and_key(tmp_path, text, where, fragment) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(text)
    with pytest.raises(WorldError) as err:
        World.from_yaml(path)
    assert str(err.value).startswith(f"{path}:{where}")
    assert fragment in str(err.value)


def test_generated_world_shape() -> None:
    w = generated_world(12)
    assert sorted(n for _, n in w.services)[:2] == ["svc-000", "svc-001"]
    assert len(w.pods) == 12
    pod = next(iter(w.pods.values()))
    assert [(p.name, p.port, p.backend) for p in pod.ports] == [
        ("http", 8080, "http"),
        ("echo", 9000, "echo"),
    ]


async def test_async_api_and_restart_from_the_loop() -> None:
    w = World()
    w.add_pod("p", ports=[{"containerPort": 7000, "name": "tcp"}])
    async with Simulator(w) as sim:
        assert sim.kubeconfig_path is not None and sim.kubeconfig_path.exists()
        new = sim.restart_pod("default", "p")
        assert sim.pods("default") == [new]
        port = sim.backend_port("default", new, 7000)
        import asyncio

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping")
        writer.write_eof()
        assert await reader.read() == b"ping"
        writer.close()
    assert not sim.kubeconfig_path.exists()


def test_the_example_world_file_loads() -> None:
    from kportforward.sim.worldfile import EXAMPLE

    w = World.from_yaml(EXAMPLE)
    assert len(w.pods_matching("default", {"app": "api"})) == 2
    assert w.pods[("default", "db-0")].ports[0].name == "postgres"
    assert w.pods[("default", "starting")].phase == "Pending"
    assert w.services[("default", "api")].ports[0].target_port == "http"


def test_a_watch_ends_when_its_client_leaves(sim) -> None:
    resp = urllib.request.urlopen(
        sim.url + "/api/v1/namespaces/default/pods?watch=true", timeout=10
    )
    resp.readline()
    state = sim._state
    assert len(state.watchers) == 1
    resp.close()
    deadline = time.monotonic() + 10
    while state.watchers and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not state.watchers


def test_a_hung_server_delivers_no_watch_events(sim) -> None:
    _, listed = _get(sim, "/api/v1/namespaces/default/pods")
    rv = listed["metadata"]["resourceVersion"]
    path = f"/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}&timeoutSeconds=30"
    with socket.create_connection((sim.host, sim.port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: sim\r\n\r\n".encode())
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        while not sim._state.watchers:
            time.sleep(0.02)
        sim.hang()
        sim.delete_pod("default", "redis-0")
        s.settimeout(0.5)
        with pytest.raises(TimeoutError):
            s.recv(4096)
        sim.resume()
        s.settimeout(10)
        data = b""
        while b"\n" not in data.split(b"\r\n", 1)[-1]:
            data += s.recv(4096)
    event = json.loads(data.split(b"\r\n", 1)[1].split(b"\n")[0])
    assert (event["type"], event["object"]["metadata"]["name"]) == ("DELETED", "redis-0")
