"""The ``grpc`` backend: a real gRPC server with server reflection and the standard health service.

Needs grpcio and grpcio-reflection (``pip install 'kportforward[grpc]'``); nothing else in the
simulator imports this module, so the simulator works without them. The messages are built at run
time from descriptors (no generated code, no protoc), in a private descriptor pool, so an installed
grpcio-health-checking cannot clash with our copy of ``grpc.health.v1``.

Services:

- ``kportforward.sim.v1.Pods``: ``Hello(HelloRequest{name}) -> HelloReply{message, pod, namespace,
  port}`` (unary; an empty name fails with INVALID_ARGUMENT, for testing error display) and
  ``Count(CountRequest{up_to}) -> stream CountReply{n, pod}`` (server streaming).
- ``grpc.health.v1.Health``: ``Check`` answers SERVING for "" and the Pods service, NOT_FOUND for
  any other name (as the reference implementation does).
- ``grpc.reflection.v1alpha.ServerReflection``.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection, reflection_pb2

PODS_SERVICE = "kportforward.sim.v1.Pods"
HEALTH_SERVICE = "grpc.health.v1.Health"
_F = descriptor_pb2.FieldDescriptorProto


def _message(
    file: descriptor_pb2.FileDescriptorProto, name: str, fields: list[tuple[str, int, str | int]]
) -> None:
    """Add a proto3 message; a field's type is a scalar code or a type name (``.pkg.Type``)."""
    msg = file.message_type.add(name=name)
    for field_name, number, kind in fields:
        f = msg.field.add(name=field_name, number=number, label=_F.LABEL_OPTIONAL)
        f.json_name = field_name
        if isinstance(kind, int):
            f.type = kind
        else:
            f.type = _F.TYPE_ENUM
            f.type_name = kind


def _pods_file() -> descriptor_pb2.FileDescriptorProto:
    f = descriptor_pb2.FileDescriptorProto(
        name="kportforward/sim/v1/pods.proto", package="kportforward.sim.v1", syntax="proto3"
    )
    _message(f, "HelloRequest", [("name", 1, _F.TYPE_STRING)])
    _message(
        f,
        "HelloReply",
        [
            ("message", 1, _F.TYPE_STRING),
            ("pod", 2, _F.TYPE_STRING),
            ("namespace", 3, _F.TYPE_STRING),
            ("port", 4, _F.TYPE_INT32),
        ],
    )
    _message(f, "CountRequest", [("up_to", 1, _F.TYPE_INT32)])
    f.message_type[-1].field[0].json_name = "upTo"
    _message(f, "CountReply", [("n", 1, _F.TYPE_INT32), ("pod", 2, _F.TYPE_STRING)])
    svc = f.service.add(name="Pods")
    svc.method.add(
        name="Hello",
        input_type=".kportforward.sim.v1.HelloRequest",
        output_type=".kportforward.sim.v1.HelloReply",
    )
    svc.method.add(
        name="Count",
        input_type=".kportforward.sim.v1.CountRequest",
        output_type=".kportforward.sim.v1.CountReply",
        server_streaming=True,
    )
    return f


def _health_file() -> descriptor_pb2.FileDescriptorProto:
    f = descriptor_pb2.FileDescriptorProto(
        name="grpc/health/v1/health.proto", package="grpc.health.v1", syntax="proto3"
    )
    _message(f, "HealthCheckRequest", [("service", 1, _F.TYPE_STRING)])
    _message(
        f,
        "HealthCheckResponse",
        [("status", 1, ".grpc.health.v1.HealthCheckResponse.ServingStatus")],
    )
    enum = f.message_type[-1].enum_type.add(name="ServingStatus")
    for number, name in enumerate(("UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")):
        enum.value.add(name=name, number=number)
    svc = f.service.add(name="Health")
    svc.method.add(
        name="Check",
        input_type=".grpc.health.v1.HealthCheckRequest",
        output_type=".grpc.health.v1.HealthCheckResponse",
    )
    return f


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_pods_file())
_POOL.Add(_health_file())
# Reflection describes itself too (grpcurl/grpcui ask for it), from the same pool.
_POOL.Add(descriptor_pb2.FileDescriptorProto.FromString(reflection_pb2.DESCRIPTOR.serialized_pb))


def _cls(name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(name))


HelloRequest = _cls("kportforward.sim.v1.HelloRequest")
HelloReply = _cls("kportforward.sim.v1.HelloReply")
CountRequest = _cls("kportforward.sim.v1.CountRequest")
CountReply = _cls("kportforward.sim.v1.CountReply")
HealthCheckRequest = _cls("grpc.health.v1.HealthCheckRequest")
HealthCheckResponse = _cls("grpc.health.v1.HealthCheckResponse")


class GrpcServer:
    """A started gRPC server on 127.0.0.1 (an ephemeral port) speaking for one pod's port."""

    def __init__(self, pod: str, namespace: str, container_port: int) -> None:
        self.pod, self.namespace, self.container_port = pod, namespace, container_port
        # Each open reflection stream holds a worker thread; a few clients at a time is plenty.
        self._server = grpc.server(ThreadPoolExecutor(max_workers=8, thread_name_prefix="sim-grpc"))
        self._server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    PODS_SERVICE,
                    {
                        "Hello": grpc.unary_unary_rpc_method_handler(
                            self._hello,
                            request_deserializer=HelloRequest.FromString,
                            response_serializer=HelloReply.SerializeToString,
                        ),
                        "Count": grpc.unary_stream_rpc_method_handler(
                            self._count,
                            request_deserializer=CountRequest.FromString,
                            response_serializer=CountReply.SerializeToString,
                        ),
                    },
                ),
                grpc.method_handlers_generic_handler(
                    HEALTH_SERVICE,
                    {
                        "Check": grpc.unary_unary_rpc_method_handler(
                            self._check,
                            request_deserializer=HealthCheckRequest.FromString,
                            response_serializer=HealthCheckResponse.SerializeToString,
                        )
                    },
                ),
            )
        )
        reflection.enable_server_reflection(
            (PODS_SERVICE, HEALTH_SERVICE, reflection.SERVICE_NAME), self._server, pool=_POOL
        )
        self.port: int = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    def stop(self) -> None:
        """Stop at once: in-flight calls are cancelled (the pod is gone)."""
        self._server.stop(grace=None)

    def _hello(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not request.name:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name must not be empty")
        return HelloReply(
            message=f"hello {request.name}",
            pod=self.pod,
            namespace=self.namespace,
            port=self.container_port,
        )

    def _count(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        for n in range(1, max(0, min(request.up_to, 1000)) + 1):
            yield CountReply(n=n, pod=self.pod)

    def _check(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.service not in ("", PODS_SERVICE):
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return HealthCheckResponse(status=1)  # SERVING
