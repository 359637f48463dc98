"""kubectl's output as measured (shared/notes/kubectl-port-forward.md §3): classify, argv."""

from __future__ import annotations

import asyncio
import sys

import pytest

from kportforward.core.models import ForwardSpec
from kportforward.supervisor.kubectl import Failure, KubectlProcess, build_argv, classify

KLOG = (
    'E1122 15:20:00.123456   4242 memcache.go:265] "Unhandled Error" '
    "err=\"couldn't get current server API group list: "
)

CASES = [
    (['Error from server (NotFound): services "nope" not found'], Failure.FATAL, "not found"),
    (
        ['Error from server (NotFound): deployments.apps "nope" not found'],
        Failure.FATAL,
        "not found",
    ),
    (
        [
            'Error from server (Forbidden): services "foo" is forbidden: User "dev" cannot get '
            'resource "services" in API group "" in the namespace "default"'
        ],
        Failure.FATAL,
        "forbidden",
    ),
    (
        [
            'error: error upgrading connection: pods "foo-1" is forbidden: User "dev" cannot '
            'create resource "pods/portforward" in API group "" in the namespace "default"'
        ],
        Failure.FATAL,
        "forbidden",
    ),
    (['error: error upgrading connection: pods "foo-1" not found'], Failure.RETRY, "pod went away"),
    (
        [
            *[KLOG + 'the server has asked for the client to provide credentials"'] * 4,
            "error: You must be logged in to the server (the server has asked for the client "
            "to provide credentials)",
        ],
        Failure.AUTH,
        "credentials rejected",
    ),
    (
        [
            KLOG + 'Get \\"http://127.0.0.1:1/api?timeout=32s\\": dial tcp 127.0.0.1:1: '
            'connect: connection refused"',
            "The connection to the server 127.0.0.1:1 was refused - "
            "did you specify the right host or port?",
        ],
        Failure.NETWORK,
        "cluster unreachable",
    ),
    (["error: lost connection to pod"], Failure.RETRY, "lost connection to pod"),
    (
        ["error: unable to forward port because pod is not running. Current status=Pending"],
        Failure.RETRY,
        "pod not running",
    ),
    (["error: timed out waiting for the condition"], Failure.RETRY, "no running pod"),
    (
        [
            "Unable to listen on port 8080: Listeners failed to create with the following errors: "
            "[unable to create listener: Error listen tcp4 127.0.0.1:8080: bind: "
            "address already in use]",
            "error: unable to listen on any of the requested ports: [{8080 8080}]",
        ],
        Failure.PORT,
        "local port busy",
    ),
    (["error: Service foo does not have a service port 1234"], Failure.FATAL, "no such port"),
    (['error: context "gone" does not exist'], Failure.FATAL, "kubeconfig problem"),
    (
        ["Error in configuration: context was not found for specified context: gone"],
        Failure.FATAL,
        "kubeconfig problem",
    ),
    (["Error: stat /k/c: no such file or directory"], Failure.FATAL, "kubeconfig problem"),
    (
        ["setpriv: failed to execute /x/kubectl: No such file or directory"],
        Failure.FATAL,
        "cannot run kubectl",
    ),
    (
        [
            'E1122 15:20:00.1   42 portforward.go:424] "Unhandled Error" err="an error occurred '
            'forwarding 8080 -> 7000: dial tcp 127.0.0.1:7000: connect: connection refused"',
            "error: lost connection to pod",
        ],
        Failure.REFUSED,
        "nothing listens in the pod",
    ),
]


@pytest.mark.parametrize(("lines", "failure", "reason"), CASES)
def test_classify_measured_outputs(lines: list[str], failure: Failure, reason: str) -> None:
    got = classify(lines, 1)
    assert got.failure is failure
    assert got.reason == reason
    if failure is Failure.REFUSED:  # the cause, not the "lost connection" that follows it
        assert got.message.startswith("an error occurred forwarding 8080 -> 7000")
    else:
        assert got.message == lines[-1][:500]  # kubectl's own last line, as the message


def test_silent_exits() -> None:
    assert classify([], 0).failure is Failure.UNKNOWN  # nothing said why: back off all the way
    killed = classify([], -9)
    assert killed.failure is Failure.RETRY and "SIGKILL" in killed.reason


def test_argv_has_only_the_documented_flags() -> None:
    spec = ForwardSpec("api", "service/api", 80, 8080, namespace="ns", context="c")
    argv = build_argv("/usr/bin/kubectl", spec, 9090, kubeconfig="/k/config")
    assert argv == [
        "/usr/bin/kubectl", "port-forward", "--address", "127.0.0.1", "--context", "c",
        "--kubeconfig", "/k/config", "-n", "ns", "-v=6", "service/api", "9090:80",
    ]  # fmt: skip
    bare = build_argv("kubectl", ForwardSpec("x", "pod/x", "http", 1), 1, verbose=False)
    assert bare == ["kubectl", "port-forward", "--address", "127.0.0.1", "pod/x", "1:http"]


FAKE = r"""
import sys, time
T = "I1122 10:00:00.000001   1 round_trippers.go:560] "
U = "http://127.0.0.1:1/api/v1/namespaces/ns/pods/"
print(T + "GET " + U + "web-1 200 OK in 1 milliseconds", file=sys.stderr, flush=True)
print(T + "GET " + U + "web-2/portforward 101 Switching Protocols in 2 milliseconds",
      file=sys.stderr, flush=True)
print("Forwarding from 127.0.0.1:5555 -> 80", flush=True)
print("Handling connection for 5555", flush=True)
print("Handling connection for 5555", flush=True)
if sys.argv[1] == "die":
    print("error: lost connection to pod", file=sys.stderr, flush=True)
    sys.exit(1)
time.sleep(60)
"""


async def test_process_parses_readiness_pod_connections_and_exit(tmp_path) -> None:
    """A narrow fake stands in for kubectl here: only the line parsing and exit plumbing."""
    script = tmp_path / "fake.py"
    script.write_text(FAKE)
    proc = await KubectlProcess.spawn([sys.executable, str(script), "die"], forward="f")
    assert await asyncio.wait_for(proc.wait(), 10) == 1
    assert proc.ready.is_set() and proc.ready_port == 5555
    assert (proc.pod_namespace, proc.pod) == ("ns", "web-2")
    assert proc.connections == 2
    why = proc.classify()
    assert why.failure is Failure.RETRY and why.message == "error: lost connection to pod"
    assert any("Forwarding from" in line for line in proc.lines)


async def test_stop_sends_sigint_first(tmp_path) -> None:
    script = tmp_path / "fake.py"
    script.write_text(FAKE)
    proc = await KubectlProcess.spawn([sys.executable, str(script), "live"], forward="f")
    await asyncio.wait_for(proc.ready.wait(), 10)
    code = await asyncio.wait_for(proc.stop(2.0, 1.0), 10)
    # Python dies of an unhandled SIGINT: -2 (not -15/-9) proves SIGINT came first.
    assert code == -2
    assert proc.exited


def test_a_missing_pod_is_fatal_only_for_pod_targets() -> None:
    line = 'Error from server (NotFound): pods "svc-000-abc" not found'
    assert classify([line], 1, pod_target=True).failure is Failure.FATAL
    replaced = classify([line], 1, pod_target=False)
    assert replaced.failure is Failure.RETRY and replaced.reason == "pod went away"
    # the target itself missing stays fatal whatever the target kind
    service = 'Error from server (NotFound): services "api" not found'
    assert classify([service], 1, pod_target=False).failure is Failure.FATAL
