"""Where a forward's API document lives, and how it is rewritten so "try it out" reaches it.

Pure functions, no I/O. The document is served to the browser from the Swagger UI server's own
origin, and its servers are pointed at that server's proxy route for the forward, so the browser
only ever talks to one origin: CORS never blocks the spec nor a request, whatever the API sends.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urljoin, urlsplit

import yaml

DEFAULT_API_PATH = "api"
"""The Go kportforward's default when ``apiPath`` is empty: the spec is ``/api/<swaggerPath>``."""

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class SpecError(ValueError):
    """The document is neither JSON nor YAML describing an OpenAPI/Swagger API."""


def spec_path(api_path: str | None, swagger_path: str) -> str:
    """The document's path on the forward: ``/<apiPath>/<swaggerPath>``, as the Go tool builds it.

    An empty ``apiPath`` means ``api`` (the Go tool's default); ``apiPath: /`` means the root.
    """
    api = DEFAULT_API_PATH if api_path is None or api_path == "" else api_path.strip("/")
    swagger = swagger_path.lstrip("/")
    return f"/{api}/{swagger}" if api else f"/{swagger}"


def parse_document(body: bytes) -> dict[str, Any]:
    """The API document from JSON or YAML bytes."""
    text = body.decode("utf-8-sig", errors="replace")
    try:
        doc = json.loads(text)
    except ValueError:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SpecError(f"the document is neither JSON nor YAML: {exc}") from None
    if not isinstance(doc, dict) or not ("openapi" in doc or "swagger" in doc):
        raise SpecError("the document has no 'openapi' or 'swagger' version field")
    return doc


def rewrite_document(
    doc: dict[str, Any], *, spec_url: str, proxy_prefix: str, ui_major: int
) -> dict[str, Any]:
    """A copy of ``doc`` whose servers point at ``proxy_prefix`` (e.g. ``/api-svc/proxy``).

    ``spec_url`` is where the document was fetched (relative server URLs resolve against it, as
    in the browser). An absolute server URL keeps only its path: the forward *is* that server.
    ``ui_major`` is the Swagger UI major version: 4.x cannot render OpenAPI 3.1 documents at all,
    so those are labelled 3.0.3 for it (most render well; a note in the description says so).
    """
    out = json.loads(json.dumps(doc))  # a deep copy with JSON types only
    if "swagger" in out:  # Swagger 2.0: host + basePath + schemes
        out.pop("host", None)  # no host: the UI uses the origin that served the document
        out["basePath"] = proxy_prefix + "/" + str(out.get("basePath") or "/").strip("/")
        out["basePath"] = out["basePath"].rstrip("/") or "/"
        out["schemes"] = ["http"]
        return out
    out["servers"] = _servers(out.get("servers"), spec_url, proxy_prefix)
    for item in (out.get("paths") or {}).values():
        if not isinstance(item, dict):
            continue
        if "servers" in item:
            item["servers"] = _servers(item["servers"], spec_url, proxy_prefix)
        for method in _METHODS:
            op = item.get(method)
            if isinstance(op, dict) and "servers" in op:
                op["servers"] = _servers(op["servers"], spec_url, proxy_prefix)
    version = str(out.get("openapi", ""))
    if ui_major and ui_major < 5 and version.startswith("3.1"):
        out["openapi"] = "3.0.3"
        info = out.setdefault("info", {})
        if isinstance(info, dict):
            note = (
                f"(kportforward: this is an OpenAPI {version} document shown by Swagger UI "
                f"{ui_major}.x, which reads only 3.0; install swagger-ui-bundle-v2 for Swagger "
                "UI 5.)"
            )
            info["description"] = f"{info.get('description') or ''}\n\n{note}".strip()
    return out


def _servers(servers: Any, spec_url: str, proxy_prefix: str) -> list[dict[str, Any]]:
    if not isinstance(servers, list) or not servers:
        servers = [{"url": "/"}]  # OpenAPI's default server
    out = []
    seen = set()
    for server in servers:
        if not isinstance(server, dict):
            continue
        raw = str(server.get("url") or "/")
        path = urlsplit(urljoin(spec_url, raw)).path if "{" not in raw else _template_path(raw)
        url = proxy_prefix + "/" + path.lstrip("/")
        url = url.rstrip("/") or "/"
        if url in seen:  # e.g. staging and production both become "the forward"
            continue
        seen.add(url)
        rewritten = {**server, "url": url}
        # Say where requests really go: the proxy path alone would puzzle people.
        where = f"forward {urlsplit(spec_url).netloc}{path.rstrip('/')}"
        description = server.get("description")
        rewritten["description"] = f"{where} ({description})" if description else where
        if "variables" in server and isinstance(server["variables"], dict):
            # Only variables still used in the path survive (those of the host went away).
            used = {k: v for k, v in server["variables"].items() if "{" + k + "}" in url}
            if used:
                rewritten["variables"] = used
            else:
                rewritten.pop("variables")
        out.append(rewritten)
    return out


def _template_path(raw: str) -> str:
    """The path of a server URL template such as ``https://{env}.example.com/{version}``."""
    if "://" not in raw:
        return raw
    rest = raw.split("://", 1)[1]
    return "/" + rest.split("/", 1)[1] if "/" in rest else "/"
