"""Where the API document is found, and how its servers are pointed at the proxy route."""

from __future__ import annotations

import pytest

from kportforward.webui.assets import Assets, find_assets
from kportforward.webui.spec import SpecError, parse_document, rewrite_document, spec_path

SPEC_URL = "http://127.0.0.1:8080/api/openapi.json"
PREFIX = "/svc/proxy"


@pytest.mark.parametrize(
    "api_path,swagger_path,expected",
    [
        ("api", "openapi.json", "/api/openapi.json"),
        (None, "swagger.json", "/api/swagger.json"),  # the Go tool's default apiPath
        ("", "configuration/swagger", "/api/configuration/swagger"),
        ("/v1/", "/docs/swagger.yaml", "/v1/docs/swagger.yaml"),
        ("/", "openapi.json", "/openapi.json"),  # apiPath "/" means the root
    ],
)
def test_spec_path(api_path: str | None, swagger_path: str, expected: str) -> None:
    assert spec_path(api_path, swagger_path) == expected


def test_parse_json_and_yaml() -> None:
    assert parse_document(b'{"openapi": "3.0.0", "paths": {}}')["openapi"] == "3.0.0"
    assert parse_document(b"swagger: '2.0'\npaths: {}\n")["swagger"] == "2.0"
    with pytest.raises(SpecError, match="version field"):
        parse_document(b'{"hello": "world"}')
    with pytest.raises(SpecError, match="version field"):
        parse_document(b"<html>not found</html>")
    with pytest.raises(SpecError, match="neither JSON nor YAML"):
        parse_document(b"{: [")


def rewrite(doc: dict, major: int = 5) -> dict:
    return rewrite_document(doc, spec_url=SPEC_URL, proxy_prefix=PREFIX, ui_major=major)


@pytest.mark.parametrize(
    "servers,expected",
    [
        (None, ["/svc/proxy"]),  # no servers: "/" of the document's origin
        ([], ["/svc/proxy"]),
        ([{"url": "/api"}], ["/svc/proxy/api"]),
        ([{"url": "v2"}], ["/svc/proxy/api/v2"]),  # relative to the document's URL
        ([{"url": "https://prod.example.com/base/"}], ["/svc/proxy/base"]),
        (
            [{"url": "https://a.example.com/x"}, {"url": "https://b.example.com/x"}],
            ["/svc/proxy/x"],  # both are "the forward" now: one entry
        ),
        ([{"url": "https://{env}.example.com/{version}"}], ["/svc/proxy/{version}"]),
    ],
)
def test_openapi3_servers_point_at_the_proxy(servers: list | None, expected: list[str]) -> None:
    doc = {"openapi": "3.0.3", "paths": {}}
    if servers is not None:
        doc["servers"] = servers
    out = rewrite(doc)
    assert [s["url"] for s in out["servers"]] == expected
    assert all(s["description"].startswith("forward 127.0.0.1:8080/") or
               s["description"] == "forward 127.0.0.1:8080" for s in out["servers"])  # fmt: skip
    assert doc.get("servers") == servers  # the input is not modified


def test_server_variables_of_the_host_are_dropped() -> None:
    doc = {
        "openapi": "3.0.3",
        "servers": [
            {
                "url": "https://{env}.example.com/{version}",
                "variables": {"env": {"default": "prod"}, "version": {"default": "v1"}},
            }
        ],
    }
    (server,) = rewrite(doc)["servers"]
    assert server["variables"] == {"version": {"default": "v1"}}
    described = rewrite({"openapi": "3.0.3", "servers": [{"url": "/v1", "description": "prod"}]})
    assert described["servers"][0]["description"] == "forward 127.0.0.1:8080/v1 (prod)"


def test_path_and_operation_servers_are_rewritten_too() -> None:
    doc = {
        "openapi": "3.0.3",
        "paths": {
            "/a": {"servers": [{"url": "/other"}], "get": {"servers": [{"url": "/op"}]}},
            "/b": {"post": {"responses": {}}},
        },
    }
    out = rewrite(doc)
    assert out["paths"]["/a"]["servers"][0]["url"] == "/svc/proxy/other"
    assert out["paths"]["/a"]["get"]["servers"][0]["url"] == "/svc/proxy/op"
    assert "servers" not in out["paths"]["/b"]["post"]


def test_swagger2_host_and_base_path() -> None:
    doc = {"swagger": "2.0", "host": "api.example.com", "basePath": "/v1", "schemes": ["https"]}
    out = rewrite(doc)
    assert "host" not in out  # the UI then uses the origin that served the document
    assert out["basePath"] == "/svc/proxy/v1" and out["schemes"] == ["http"]
    assert rewrite({"swagger": "2.0"})["basePath"] == "/svc/proxy"


def test_openapi31_is_relabelled_only_for_swagger_ui_4() -> None:
    doc = {"openapi": "3.1.0", "info": {"title": "t", "description": "mine"}}
    old = rewrite(doc, major=4)
    assert old["openapi"] == "3.0.3"
    assert old["info"]["description"].startswith("mine")
    assert "OpenAPI 3.1.0" in old["info"]["description"]
    assert rewrite(doc, major=5)["openapi"] == "3.1.0"


def test_assets_refuse_paths_outside_the_folder(tmp_path) -> None:
    (tmp_path / "swagger-ui.css").write_text("body{}")
    (tmp_path / ".secret").write_text("x")
    assets = Assets(tmp_path, (5, 0, 0))
    assert assets.read("swagger-ui.css") == (b"body{}", "text/css; charset=utf-8")
    for name in ("../x", ".secret", "", "a/b", "a\\b", "missing.js"):
        assert assets.read(name) is None, name


def test_installed_assets_have_a_version() -> None:
    assets = find_assets()
    if assets is None:
        pytest.skip("the swaggerui extra is not installed")
    assert assets.major >= 4 and assets.read("swagger-ui-bundle.js") is not None
