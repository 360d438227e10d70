"""Users: first-user bootstrap, user management, bad input, the CLI."""

from __future__ import annotations

import threading

import pytest
from factories import PASSWORD
from typer.testing import CliRunner


def test_first_user_bootstrap_is_open_once(client, users):
    r = client.post("/api/users", json={"username": "first", "password": "pw1", "email": "a@b.co", "role": "viewer"})
    assert r.status_code == 201, r.text
    assert r.json()["role"] == "admin"  # the first user is always the admin
    # the door is now closed
    r = client.post("/api/users", json={"username": "second", "password": "pw2", "role": "admin"})
    assert r.status_code == 401
    basic = users.basic(type("U", (), {"username": "first", "password": "pw1"})())
    r = client.post("/api/users", headers=basic, json={"username": "second", "password": "pw2", "role": "editor"})
    assert r.status_code == 201 and r.json()["role"] == "editor"
    viewer = users.viewer("vic")
    r = client.post("/api/users", headers=users.basic(viewer), json={"username": "third", "password": "p"})
    assert r.status_code == 403


def test_concurrent_bootstrap_creates_one_admin(client, ctx):
    results: list[int] = []

    def attempt(i: int) -> None:
        r = client.post("/api/users", json={"username": f"racer{i}", "password": "pw"})
        results.append(r.status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [201] + [401] * 5


def test_duplicate_username_is_409(client, users):
    admin = users.admin()
    r = client.post("/api/users", headers=users.basic(admin), json={"username": "admin", "password": "x"})
    assert r.status_code == 409


@pytest.mark.parametrize(
    "payload, status",
    [
        ({"username": "", "password": "x"}, 422),
        ({"username": "a/b", "password": "x"}, 400),
        ({"username": "x" * 256, "password": "x"}, 422),
        ({"username": "ok", "password": "x" * 2000}, 422),
        ({"username": "ok", "password": "x", "role": "emperor"}, 400),
        ({"username": "ok", "password": "x", "email": "not-an-email"}, 400),
        ({"username": 5, "password": ["x"]}, 422),
    ],
)
def test_bad_user_input_is_4xx(client, users, payload, status):
    admin = users.admin()
    r = client.post("/api/users", headers=users.basic(admin), json=payload)
    assert r.status_code == status, r.text
    assert "detail" in r.json()


def test_malformed_json_is_422_not_500(client, users):
    admin = users.admin()
    r = client.post(
        "/api/users", headers={**users.basic(admin), "Content-Type": "application/json"}, content=b'{"username": "x", '
    )
    assert r.status_code == 422
    r = client.post(
        "/api/client-tokens",
        headers={**users.basic(admin), "Content-Type": "application/json"},
        content=b"\xff\xfe not json",
    )
    assert r.status_code in (400, 422) and r.json()["detail"]


def test_oversized_form_field_is_422(client):
    r = client.post("/api/token", data={"grant_type": "password", "username": "u" * 5000, "password": "p"})
    assert r.status_code == 422


def test_user_edits_self_but_not_role(client, users):
    vic = users.viewer("vic")
    r = client.put(f"/api/users/{vic.id}", headers=users.basic(vic), data={"email": "vic@example.org"})
    assert r.status_code == 200 and r.json()["email"] == "vic@example.org"
    assert client.put(f"/api/users/{vic.id}", headers=users.basic(vic), data={"role": "admin"}).status_code == 403
    other = users.viewer("other")
    assert client.put(f"/api/users/{other.id}", headers=users.basic(vic), data={"email": "x@y.zz"}).status_code == 403


def test_password_change_invalidates_old_password(client, users):
    vic = users.viewer("vic")
    r = client.put(f"/api/users/{vic.id}", headers=users.basic(vic), data={"password": "new-secret"})
    assert r.status_code == 200
    assert client.get("/api/users/me", headers=users.basic(vic)).status_code == 401
    assert client.get("/api/users/me", headers=users.basic(vic, "new-secret")).status_code == 200


def test_ui_settings_must_be_json_object(client, users):
    vic = users.viewer("vic")
    r = client.put(f"/api/users/{vic.id}", headers=users.basic(vic), data={"ui_settings": "[1,2"})
    assert r.status_code == 400
    r = client.put(f"/api/users/{vic.id}", headers=users.basic(vic), data={"ui_settings": '{"theme": "dark"}'})
    assert r.json()["ui_settings"] == {"theme": "dark"}


def test_admin_lists_gets_and_deletes_users(client, users):
    admin, vic = users.admin(), users.viewer("vic")
    assert [u["username"] for u in client.get("/api/users", headers=users.basic(admin)).json()] == ["admin", "vic"]
    assert client.get("/api/users/identifiers", headers=users.basic(admin)).json() == [admin.id, vic.id]
    assert client.get(f"/api/users/{vic.id}", headers=users.basic(admin)).json()["username"] == "vic"
    assert client.get("/api/users/999999", headers=users.basic(admin)).status_code == 404
    assert client.delete(f"/api/users/{admin.id}", headers=users.basic(admin)).status_code == 400
    assert client.delete(f"/api/users/{vic.id}", headers=users.basic(admin)).status_code == 200
    assert client.get("/api/users/me", headers=users.basic(vic)).status_code == 401
    assert client.get("/api/users", headers=users.basic(users.viewer("v2"))).status_code == 403


def test_cli_user_add_with_password_stdin(ctx, settings, monkeypatch):
    from romshelf.cli import app

    monkeypatch.setenv("ROMSHELF_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ROMSHELF_DATABASE_URL", settings.db_url)
    monkeypatch.setenv("ROMSHELF_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("ROMSHELF_ARGON2_MEMORY_COST_KIB", "64")
    runner = CliRunner()
    r = runner.invoke(app, ["user", "add", "--admin", "root", "--password-stdin"], input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["user", "add", "root", "--password-stdin"], input="x\n")
    assert r.exit_code == 1 and "already exists" in r.output
    r = runner.invoke(app, ["token", "create", "root", "--scopes", "me.read"])
    assert r.exit_code == 0 and r.output.strip().startswith("rmm_")
    r = runner.invoke(app, ["user", "list"])
    assert "root" in r.output and "admin" in r.output
