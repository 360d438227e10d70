"""The /v1 surface as a whole: pkmnapi's error shape for unknown routes, wrong methods,
validation and crashes; the Server header; /status; the /api surface is untouched."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

NOT_FOUND = "The requested resource could not be found"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1"),
        ("GET", "/v1/"),
        ("GET", "/v1/nothing"),
        ("GET", "/v1/roms/1337"),
        ("GET", "/v1/pokemon/names/1"),
        ("PUT", "/v1/roms"),  # Rocket has no 405: a wrong method is "not found" too
        ("PATCH", "/v1/roms"),
        ("GET", "/v1/access_tokens"),
    ],
)
def test_unknown_route_or_method_is_pkmnapis_404(v1, method, path):
    r = v1.client.request(method, path, headers=v1.auth())
    v1.assert_error(r, 404, "error_not_found", NOT_FOUND)


def test_api_errors_keep_their_own_shape(client):
    assert client.get("/api/nothing-here").json() == {"detail": "Not Found"}
    assert client.delete("/api/heartbeat").status_code == 405


def test_bad_query_value_is_a_roms_400(v1, gameboygame):
    r = v1.post_rom(gameboygame, v1.auth(role="editor"), add_to_library="maybe")
    v1.assert_error(r, 400, "error_roms_invalid", "Invalid value for add_to_library: 'maybe' (use true or false)")
    assert v1.stored_files() == []


def test_crash_is_pkmnapis_500_with_server_header(app, v1):
    def boom() -> None:
        raise RuntimeError("kaboom")

    app.add_api_route("/v1/test-crash", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/v1/test-crash")
    v1.assert_error(r, 500, "error_internal_server", "An unknown error has occurred")


def test_renderer_is_registered_once(app, ctx):
    from romshelf.app import create_app
    from romshelf.core import errors

    create_app(ctx=ctx)
    create_app(ctx=ctx)
    assert sum(1 for prefix, _ in errors._renderers if prefix == "/v1") == 1


def test_status(client, v1):
    r = client.get("/status")
    assert r.status_code == 200 and r.text == "OK"
    v1.assert_headers(r, {"Content-Type": "text/plain; charset=utf-8"})


def test_v1_routes_are_documented(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"post", "get", "delete"} <= set(paths["/v1/roms"])
    assert "post" in paths["/v1/access_tokens"]
    assert "application/octet-stream" in paths["/v1/roms"]["post"]["requestBody"]["content"]


def test_head_answers_like_get_without_a_body(v1, gameboygame):
    headers = v1.auth()
    posted = v1.post_rom(gameboygame, headers)
    r = v1.client.head("/v1/roms", headers=headers)
    assert r.status_code == 200 and r.headers["etag"] == posted.headers["etag"]
    assert v1.client.head("/status").status_code == 200


def test_links_use_the_request_host_without_public_url(v1, gameboygame):
    v1.ctx.settings.public_url = None
    r = v1.client.post("/v1/roms", content=gameboygame, headers={**v1.auth(), "Host": "games.example:8080"})
    assert r.status_code == 201
    assert r.headers["location"] == "http://games.example:8080/v1/roms"
    assert r.json()["links"]["self"] == r.json()["data"]["links"]["self"] == "http://games.example:8080/v1/roms"


def test_cli_sweep(ctx, settings, monkeypatch):
    from typer.testing import CliRunner

    from romshelf.cli import app as cli_app

    ctx.storages.assets.write("pkmnapi/rom_data/" + "e" * 64, b"orphan")
    monkeypatch.setenv("ROMSHELF_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ROMSHELF_DATABASE_URL", settings.db_url)
    monkeypatch.setenv("ROMSHELF_SECRET_KEY", settings.secret_key)
    result = CliRunner().invoke(cli_app, ["pkmnapi", "sweep"])
    assert result.exit_code == 0, result.output
    assert "0 unused ROM data rows, 1 files" in result.output
    assert not ctx.storages.assets.exists("pkmnapi/rom_data/" + "e" * 64)


def test_cors_only_for_browsers_on_v1(v1, gameboygame):
    headers = v1.auth()
    origin = {"Origin": "https://pkmn.example"}
    r = v1.post_rom(gameboygame, {**headers, **origin})
    assert r.status_code == 201 and r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-expose-headers"] == "ETag, Location"  # pkmnapi exposed none
    r = v1.client.get("/v1/nothing", headers=origin)
    assert r.status_code == 404 and r.headers["access-control-allow-origin"] == "*"
    pre = v1.client.options(
        "/v1/roms",
        headers={**origin, "Access-Control-Request-Method": "DELETE", "Access-Control-Request-Headers": "if-match"},
    )
    assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == "*"
    assert "DELETE" in pre.headers["access-control-allow-methods"]
    assert {"Authorization", "If-Match"} <= set(pre.headers["access-control-allow-headers"].split(", "))
    # no Origin: pkmnapi's exact header set; /api is not touched
    v1.assert_headers(v1.get_rom(headers), {"Content-Type": "application/json", "ETag": ""})
    assert "access-control-allow-origin" not in v1.client.get("/api/heartbeat", headers=origin).headers
