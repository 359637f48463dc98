"""The control protocol's codec: records survive the wire; bad requests are ProtocolErrors only."""

from __future__ import annotations

import contextlib
import json

import pytest

from kportforward.control import codec
from kportforward.control.codec import ProtocolError
from kportforward.core.models import ClusterStatus, ForwardSpec, ForwardStatus, Transition
from kportforward.core.states import ForwardState
from kportforward.supervisor.events import ClusterEvent, ConfigReloaded, ForwardEvent, NoticeEvent

SPEC = ForwardSpec(
    name="api", target="service/api", target_port="http", local_port=8080, namespace="default",
    type="rest", context="staging", kubeconfig="~/.kube/other", group="payments",
)  # fmt: skip
STATUS = ForwardStatus(
    spec=SPEC, state=ForwardState.RUNNING, reason="forwarding", local_port=8081,
    port_moved_reason="8080 busy", pid=1234, restarts=2, planned_restarts=1, pod="api-1",
    running_since=1700000000.5, connections=3, last_error="lost connection", rss=1000,
    cpu_percent=1.5, history=(Transition(1700000000.25, ForwardState.CONNECTING, "spawned"),),
    probe_latencies=(0.001, 0.002),
)  # fmt: skip


def test_status_round_trips_exactly() -> None:
    wire = json.loads(json.dumps(codec.status_to_json(STATUS)))
    assert codec.status_from_json(wire) == STATUS
    assert wire["url"] == "http://localhost:8081"


@pytest.mark.parametrize(
    "event",
    [
        ForwardEvent(1700000001.125, STATUS, ForwardState.CONNECTING, "probe passed"),
        ForwardEvent(1700000001.0, STATUS, None, "first"),
        ClusterEvent(1700000002.0, ClusterStatus("staging", "https://x", False, "refused"), "down"),
        NoticeEvent(1700000003.0, "warning", "port moved"),
        ConfigReloaded(1700000004.0, ("a",), ("b",), ("c",), ("unknown key",)),
    ],
)
def test_events_round_trip(event: object) -> None:
    wire = json.loads(codec.encode(codec.event_message(codec.event_to_json(event))))
    assert wire["v"] == codec.PROTOCOL_VERSION
    assert codec.event_from_json(wire["event"]) == event


def test_forward_event_keeps_the_run_json_fields() -> None:
    event = ForwardEvent(1700000001.0, STATUS, ForwardState.CONNECTING, "probe passed")
    out = codec.event_to_json(event)
    assert {"ts", "time", "event", "forward", "state", "localPort", "pid", "restarts",
            "reason"} <= set(out)  # fmt: skip
    assert out["state"] == "Running" and out["status"]["name"] == "api"


def test_a_valid_request_decodes() -> None:
    line = codec.encode(codec.request("status", 3, name="api"))
    assert codec.decode_request(line) == {"v": 1, "id": 3, "op": "status", "name": "api"}


# The malformed-request corpus: each line and the error code it must get.
CORPUS = [
    (b"", "bad_request"),
    (b"not json\n", "bad_request"),
    (b"\xff\xfe\n", "bad_request"),
    (b"[1,2,3]\n", "bad_request"),
    (b'"hello"\n', "bad_request"),
    (b"null\n", "bad_request"),
    (b"[" * 100_000 + b"\n", "too_large"),
    (b"[" * 20_000 + b"]" * 20_000, "bad_request"),
    (b'{"v":1,"op":"status"}', "bad_request"),
    (b'{"v":1,"op":"status","name":""}', "bad_request"),
    (b'{"v":1,"op":"status","name":42}', "bad_request"),
    (b'{"v":1,"op":"status","name":"' + b"x" * 300 + b'"}', "bad_request"),
    (b'{"v":1,"op":"start_group"}', "bad_request"),
    (b'{"v":2,"op":"hello"}', "unsupported_version"),
    (b'{"op":"hello"}', "unsupported_version"),
    (b'{"v":"1","op":"hello"}', "unsupported_version"),
    (b'{"v":1}', "unknown_op"),
    (b'{"v":1,"op":"rm -rf"}', "unknown_op"),
    (b'{"v":1,"op":["hello"]}', "unknown_op"),
    (b'{"v":1,"op":"__class__"}', "unknown_op"),
    (b'{"v":1,"id":{"a":1},"op":"hello"}', "bad_request"),
    (b'{"v":1,"id":true,"op":"hello"}', "bad_request"),
    (b'{"v":1,"id":1.5,"op":"hello"}', "bad_request"),
    (b'{"v":1,"op":"hello","v":1e999}', "unsupported_version"),
    (b'{"v":NaN,"op":"hello"}', "unsupported_version"),
    (b"x" * (codec.MAX_REQUEST_BYTES + 1), "too_large"),
]


@pytest.mark.parametrize(("line", "code"), CORPUS, ids=[f"case{i}" for i in range(len(CORPUS))])
def test_malformed_requests_are_protocol_errors(line: bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        codec.decode_request(line)
    assert info.value.code == code
    reply = codec.error_reply(info.value.request_id, info.value.code, info.value.message)
    assert json.loads(codec.encode(reply))["error"]["code"] == code


def test_the_request_id_comes_back_even_for_a_bad_op() -> None:
    with pytest.raises(ProtocolError) as info:
        codec.decode_request(b'{"v":1,"id":"abc","op":"nope"}')
    assert info.value.request_id == "abc"


hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=20,
)  # fmt: skip


@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.given(st.binary(max_size=2000))
def test_fuzz_bytes_never_escape_as_another_exception(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        codec.decode_request(data)


@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.given(
    st.dictionaries(
        st.sampled_from(["v", "id", "op", "name", "group", "x"]) | st.text(max_size=5),
        _json | st.sampled_from(list(codec.OPS)) | st.just(1),
        max_size=6,
    )
)
def test_fuzz_objects_decode_or_fail_cleanly(obj: dict[str, object]) -> None:
    try:
        line = json.dumps(obj).encode()
    except ValueError:
        return
    try:
        req = codec.decode_request(line)
    except ProtocolError:
        return
    assert req["op"] in codec.OPS and req["v"] == codec.PROTOCOL_VERSION
    for arg in codec.OPS[req["op"]]:
        assert isinstance(req[arg], str) and req[arg]
