"""The ``openapi`` backend's answers: an OpenAPI 3.0 document and the few endpoints it describes.

It plays a typical REST service behind ``type: rest`` forwards with ``apiPath: api`` and
``swaggerPath: openapi.json`` (the Go kportforward loads ``/<apiPath>/<swaggerPath>``): the spec is
served at ``/api/openapi.json`` (and ``/openapi.json``, ``/api/swagger.json``), and the operations
answer under ``/api``, each naming the pod that served it, so a test can see a request went through
the tunnel to the pod.
"""

from __future__ import annotations

from typing import Any

from kportforward.sim.http import Request, json_response

SPEC_PATHS = ("/api/openapi.json", "/openapi.json", "/api/swagger.json")
"""Where the document is served."""


def openapi_document(pod: str, namespace: str) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document; ``servers`` is relative, as most services write it."""
    pod_info = {
        "type": "object",
        "properties": {
            "pod": {"type": "string"},
            "namespace": {"type": "string"},
            "port": {"type": "integer"},
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Simulated pod API",
            "version": "1.0.0",
            "description": f"Served by pod {namespace}/{pod} of the kportforward simulator.",
        },
        "servers": [{"url": "/api"}],
        "paths": {
            "/whoami": {
                "get": {
                    "operationId": "whoami",
                    "summary": "Which pod answered",
                    "responses": {
                        "200": {
                            "description": "the pod",
                            "content": {"application/json": {"schema": pod_info}},
                        }
                    },
                }
            },
            "/echo": {
                "post": {
                    "operationId": "echo",
                    "summary": "Echo a JSON body back, with the pod's name",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"type": "object"},
                                "example": {"hello": "world"},
                            }
                        },
                    },
                    "responses": {
                        "200": {"description": "the body and the pod"},
                        "400": {"description": "the body is not JSON"},
                    },
                }
            },
            "/status/{code}": {
                "get": {
                    "operationId": "status",
                    "summary": "Answer with the given HTTP status",
                    "parameters": [
                        {
                            "name": "code",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 200, "maximum": 599},
                        }
                    ],
                    "responses": {"default": {"description": "that status"}},
                }
            },
        },
    }


def answer(request: Request, pod: str, namespace: str, container_port: int) -> bytes:
    """The complete response to one request (keep-alive unless the client asked to close)."""
    keep = request.keep_alive
    me = {"pod": pod, "namespace": namespace, "port": container_port}
    path = request.path.rstrip("/") or "/"
    if request.method in ("GET", "HEAD") and path in SPEC_PATHS:
        return json_response(200, openapi_document(pod, namespace), keep_alive=keep)
    if path == "/api/whoami" and request.method == "GET":
        return json_response(200, me, keep_alive=keep)
    if path == "/api/echo" and request.method == "POST":
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            return json_response(400, {"error": "the body is not JSON", **me}, keep_alive=keep)
        return json_response(200, {"echo": body, **me}, keep_alive=keep)
    if path.startswith("/api/status/") and request.method == "GET":
        code = path.rsplit("/", 1)[1]
        if code.isdigit() and 200 <= int(code) <= 599:
            return json_response(int(code), {"status": int(code), **me}, keep_alive=keep)
        return json_response(400, {"error": f"not a status code: {code}", **me}, keep_alive=keep)
    return json_response(
        404, {"error": f"no route for {request.method} {request.path}", **me}, keep_alive=keep
    )
