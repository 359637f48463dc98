"""A small gRPC client driven by server reflection: list services and methods, call a unary method
with a JSON body, and get the JSON reply or the status back.

It backs the dashboard's gRPC screen, and holds no Textual: everything here is testable on its own.
grpcio and grpcio-reflection are an optional extra (``pip install 'kportforward[grpc]'``); this
module imports without them, and :func:`grpc_available` / :data:`INSTALL_HINT` say what is missing.

The calls block (grpcio's reflection client is synchronous); the ``a``-prefixed methods run them in
a worker thread for asyncio callers. Every call carries a deadline, the reflection stream included,
so a hung server can never hang the caller.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

INSTALL_HINT = "pip install 'kportforward[grpc]'"
"""How to get grpcio and grpcio-reflection."""

DEFAULT_TIMEOUT = 10.0
"""Seconds allowed for one call, and for each reflection request."""

_TEMPLATE_DEPTH = 3  # nested messages expanded in a request template (recursive types stop here)


def grpc_available() -> bool:
    """Whether grpcio and grpcio-reflection are installed."""
    try:
        import grpc  # noqa: F401
        import grpc_reflection  # noqa: F401
    except ImportError:
        return False
    return True


class GrpcClientError(Exception):
    """The server could not be reached or described; the message is one line for a person."""


class GrpcNotInstalledError(GrpcClientError):
    """grpcio or grpcio-reflection is missing."""


class RequestBodyError(GrpcClientError):
    """The JSON body does not fit the method's request message."""


@dataclass(frozen=True, slots=True)
class MethodInfo:
    """One method of a service, as reflection describes it."""

    service: str
    name: str
    input_type: str
    """Full name of the request message, e.g. ``pkg.HelloRequest``."""
    output_type: str
    client_streaming: bool = False
    server_streaming: bool = False

    @property
    def path(self) -> str:
        """The HTTP/2 path the call goes to: ``/pkg.Service/Method``."""
        return f"/{self.service}/{self.name}"

    @property
    def unary(self) -> bool:
        """True for a plain request/response method (the only kind :meth:`GrpcClient.call` does)."""
        return not (self.client_streaming or self.server_streaming)

    @property
    def kind(self) -> str:
        """``unary``, ``server streaming``, ``client streaming`` or ``bidi streaming``."""
        if self.client_streaming and self.server_streaming:
            return "bidi streaming"
        if self.client_streaming:
            return "client streaming"
        return "server streaming" if self.server_streaming else "unary"


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """A service and its methods."""

    name: str
    methods: tuple[MethodInfo, ...]
    error: str = ""
    """Why the methods could not be read (reflection listed the name but not its file)."""


@dataclass(frozen=True, slots=True)
class CallResult:
    """How a call ended: the reply as JSON text, or the status code and its details."""

    ok: bool
    code: str
    """``OK`` or a gRPC status name such as ``INVALID_ARGUMENT``."""
    details: str = ""
    reply: str | None = None
    """The reply message as indented JSON (fields at their defaults included)."""
    elapsed: float = 0.0
    """Seconds from sending the request to the answer."""


class GrpcClient:
    """A plaintext channel to ``target`` (``host:port``) plus a reflection-backed descriptor pool.

    Use as a context manager, or call :meth:`close`. Not thread-safe for concurrent calls from
    several threads; the asyncio wrappers serialise calls on a lock.
    """

    def __init__(self, target: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not grpc_available():
            raise GrpcNotInstalledError(f"the gRPC screen needs grpcio: {INSTALL_HINT}")
        import grpc
        from google.protobuf import descriptor_pool
        from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
            ProtoReflectionDescriptorDatabase,
        )

        self.target = target
        self.timeout = timeout
        self._grpc = grpc
        self._channel = grpc.insecure_channel(target)
        # The reflection client passes no deadline: an interceptor gives every call one.
        reflection_channel = grpc.intercept_channel(self._channel, _deadline_interceptor(timeout))
        self._db = ProtoReflectionDescriptorDatabase(reflection_channel)
        self._pool = descriptor_pool.DescriptorPool(self._db)
        self._methods: dict[str, MethodInfo] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> GrpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel (idempotent)."""
        self._channel.close()

    # -- reflection ------------------------------------------------------------------------------
    def list_services(self) -> tuple[ServiceInfo, ...]:
        """Every service the server's reflection lists, with its methods, sorted by name."""
        try:
            names = sorted(self._db.get_services())
            services = tuple(self._describe(name) for name in names)
        except self._grpc.RpcError as exc:
            raise GrpcClientError(self._reflection_failure(exc)) from None
        for service in services:
            for method in service.methods:
                self._methods[method.path] = method
        return services

    def _describe(self, name: str) -> ServiceInfo:
        try:
            desc = self._pool.FindServiceByName(name)
        except (KeyError, TypeError) as exc:
            # One service the server cannot describe must not hide the others.
            return ServiceInfo(name, (), error=f"reflection could not describe it: {exc}")
        methods = tuple(
            MethodInfo(
                service=desc.full_name,
                name=m.name,
                input_type=m.input_type.full_name,
                output_type=m.output_type.full_name,
                client_streaming=bool(m.client_streaming),
                server_streaming=bool(m.server_streaming),
            )
            for m in desc.methods
        )
        return ServiceInfo(desc.full_name, methods)

    def _reflection_failure(self, exc: Any) -> str:
        code = exc.code()
        if code == self._grpc.StatusCode.UNIMPLEMENTED:
            return (
                f"{self.target} does not offer server reflection (grpc.reflection.v1alpha); "
                "register the reflection service in the server to browse it here"
            )
        if code in (self._grpc.StatusCode.UNAVAILABLE, self._grpc.StatusCode.DEADLINE_EXCEEDED):
            return f"cannot reach a gRPC server at {self.target}: {code.name}: {exc.details()}"
        return f"reflection failed on {self.target}: {code.name}: {exc.details()}"

    def method(self, path: str) -> MethodInfo:
        """The method at ``/pkg.Service/Method`` (listing the services first if needed)."""
        if path not in self._methods:
            self.list_services()
        try:
            return self._methods[path]
        except KeyError:
            raise GrpcClientError(f"the server has no method {path}") from None

    def request_template(self, path: str) -> str:
        """A JSON skeleton of the method's request: every field at its zero value."""
        method = self.method(path)
        desc = self._pool.FindMessageTypeByName(method.input_type)
        return json.dumps(_skeleton(desc, _TEMPLATE_DEPTH), indent=2)

    # -- calls -----------------------------------------------------------------------------------
    def call(self, path: str, body: str, *, timeout: float | None = None) -> CallResult:
        """Call the unary method at ``path`` with the JSON ``body``; never raises for a status.

        Raises :class:`RequestBodyError` when the body does not parse into the request message,
        and :class:`GrpcClientError` for a streaming method or an unknown path.
        """
        from google.protobuf import json_format, message_factory

        method = self.method(path)
        if not method.unary:
            raise GrpcClientError(
                f"{method.name} is a {method.kind} method; only unary methods can be called here"
            )
        request_cls = message_factory.GetMessageClass(
            self._pool.FindMessageTypeByName(method.input_type)
        )
        reply_cls = message_factory.GetMessageClass(
            self._pool.FindMessageTypeByName(method.output_type)
        )
        try:
            request = json_format.Parse(body.strip() or "{}", request_cls())
        except json_format.ParseError as exc:
            reason = " ".join(str(exc).split())  # protobuf's message spans lines
            raise RequestBodyError(f"the body does not fit {method.input_type}: {reason}") from None
        stub = self._channel.unary_unary(
            path,
            request_serializer=request_cls.SerializeToString,
            response_deserializer=reply_cls.FromString,
        )
        started = time.monotonic()
        try:
            reply = stub(request, timeout=timeout or self.timeout)
        except self._grpc.RpcError as exc:
            return CallResult(
                ok=False,
                code=exc.code().name,
                details=exc.details() or "",
                elapsed=time.monotonic() - started,
            )
        return CallResult(
            ok=True, code="OK", reply=_to_json(reply), elapsed=time.monotonic() - started
        )

    # -- asyncio wrappers ------------------------------------------------------------------------
    async def alist_services(self) -> tuple[ServiceInfo, ...]:
        """:meth:`list_services` in a worker thread."""
        return await asyncio.to_thread(self._locked, self.list_services)

    async def arequest_template(self, path: str) -> str:
        """:meth:`request_template` in a worker thread (it may ask the server)."""
        return await asyncio.to_thread(self._locked, self.request_template, path)

    async def acall(self, path: str, body: str, *, timeout: float | None = None) -> CallResult:
        """:meth:`call` in a worker thread."""
        return await asyncio.to_thread(self._locked, self.call, path, body, timeout=timeout)

    def _locked(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return fn(*args, **kwargs)


def _to_json(message: Any) -> str:
    from google.protobuf import json_format

    try:  # protobuf >= 5.26 renamed the flag that prints fields at their defaults
        data = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    except TypeError:  # pragma: no cover - older protobuf
        data = json_format.MessageToDict(message, including_default_value_fields=True)
    return json.dumps(data, indent=2, ensure_ascii=False)


def _skeleton(desc: Any, depth: int) -> dict[str, Any]:
    """Zero values by field, as the JSON mapping writes them (camelCase names)."""
    from google.protobuf.descriptor import FieldDescriptor as F

    out: dict[str, Any] = {}
    for field in desc.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value: Any = {}
        elif field.type == F.TYPE_MESSAGE:
            value = _skeleton(field.message_type, depth - 1) if depth > 0 else {}
            if field.message_type.full_name.startswith("google.protobuf."):
                value = None  # well-known types have their own JSON forms; leave them unset
        elif field.type == F.TYPE_ENUM:
            value = field.enum_type.values[0].name
        elif field.type == F.TYPE_BOOL:
            value = False
        elif field.type in (F.TYPE_STRING, F.TYPE_BYTES):
            value = ""
        elif field.type in (F.TYPE_INT64, F.TYPE_UINT64, F.TYPE_SINT64, F.TYPE_FIXED64):
            value = "0"  # the JSON mapping writes 64-bit integers as strings
        else:
            value = 0
        if _is_repeated(field) and not isinstance(value, dict):
            value = []
        if value is not None:
            out[field.json_name] = value
    return out


def _is_repeated(field: Any) -> bool:
    from google.protobuf.descriptor import FieldDescriptor as F

    repeated = getattr(field, "is_repeated", None)  # newer protobuf; .label is deprecated
    if repeated is not None:
        return bool(repeated)
    return bool(field.label == F.LABEL_REPEATED)


def _deadline_interceptor(timeout: float) -> Any:
    """A client interceptor that gives calls without a deadline one of ``timeout`` seconds."""
    import grpc

    class _Details(grpc.ClientCallDetails):
        def __init__(self, details: Any) -> None:
            self.method = details.method
            self.timeout = timeout
            self.metadata = details.metadata
            self.credentials = details.credentials
            self.wait_for_ready = getattr(details, "wait_for_ready", None)
            self.compression = getattr(details, "compression", None)

    def with_deadline(details: Any) -> Any:
        return details if details.timeout is not None else _Details(details)

    class _Interceptor(
        grpc.UnaryUnaryClientInterceptor,
        grpc.StreamStreamClientInterceptor,
    ):
        def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            return continuation(with_deadline(details), request)

        def intercept_stream_stream(
            self, continuation: Any, details: Any, request_iterator: Any
        ) -> Any:
            return continuation(with_deadline(details), request_iterator)

    return _Interceptor()
