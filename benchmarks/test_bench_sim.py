"""Micro-benchmarks of the simulator's hot parts (run: .venv/bin/pytest benchmarks --benchmark-only
-k sim). End-to-end figures through the real kubectl come from benchmarks/e2e_sim.py."""

from __future__ import annotations

import json
import os
import urllib.request

import pytest

from kportforward.sim import Simulator, generated_world, spdy
from kportforward.sim.transport import WebSocketDeframer, unmask


def test_bench_header_block_round_trip(benchmark) -> None:
    out, back = spdy.HeaderCodec(), spdy.HeaderCodec()
    headers = {"streamtype": "data", "port": "8080", "requestid": "12"}
    assert benchmark(lambda: back.decode(out.encode(headers))) == headers


def test_bench_unmask_64k(benchmark) -> None:
    data, mask = os.urandom(64 * 1024), b"\x01\x02\x03\x04"
    assert unmask(benchmark(unmask, data, mask), mask) == data


def test_bench_websocket_deframe_1mb(benchmark) -> None:
    """1 MiB of SPDY bytes in masked 32 KiB client messages (kubectl's shape)."""
    mask = b"\x11\x22\x33\x44"
    payload = os.urandom(32 * 1024)
    frame = b"\x82\xfe" + len(payload).to_bytes(2, "big") + mask + unmask(payload, mask)
    wire = frame * 32

    def run() -> int:
        got: list[bytes] = []
        WebSocketDeframer(got.append, lambda _: None).feed(wire)
        return sum(map(len, got))

    assert benchmark(run) == 32 * len(payload)


@pytest.fixture(scope="module")
def big_sim():
    with Simulator(generated_world(1000)) as sim:
        yield sim


def test_bench_list_1000_pods(benchmark, big_sim) -> None:
    url = big_sim.url + "/api/v1/namespaces/default/pods?labelSelector=app%3Dsvc-500"

    def get() -> int:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return len(json.loads(resp.read())["items"])

    assert benchmark(get) == 1


def test_bench_get_one_pod(benchmark, big_sim) -> None:
    name = big_sim.pods("default", {"app": "svc-001"})[0]
    url = f"{big_sim.url}/api/v1/namespaces/default/pods/{name}"

    def get() -> str:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return str(json.loads(resp.read())["metadata"]["name"])

    assert benchmark(get) == name
