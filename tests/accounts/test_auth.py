"""Authentication and authorisation: grants, refresh rotation, Basic, client tokens, scopes."""

from __future__ import annotations

import base64

import pytest
from factories import PASSWORD

ALL = [
    "me.read",
    "me.write",
    "roms.read",
    "roms.write",
    "roms.user.read",
    "roms.user.write",
    "platforms.read",
    "platforms.write",
    "assets.read",
    "assets.write",
    "devices.read",
    "devices.write",
    "firmware.read",
    "firmware.write",
    "collections.read",
    "collections.write",
    "playlists.read",
    "playlists.write",
    "users.read",
    "users.write",
    "tasks.run",
    "logs.read",
]


def password_grant(client, username="admin", password=PASSWORD, scope=None, **extra):
    data = {"grant_type": "password", "username": username, "password": password, **extra}
    if scope is not None:
        data["scope"] = scope
    return client.post("/api/token", data=data)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_no_credentials_is_401_with_romm_body(client):
    r = client.get("/api/users/me")
    assert r.status_code == 401
    assert r.json() == {"detail": "Not authenticated"}
    assert r.headers["www-authenticate"] == "Bearer"


def test_password_grant_issues_pair_limited_to_requested_scopes(client, users):
    users.admin()
    r = password_grant(client, scope="me.read roms.read")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires"] == 1800 and body["refresh_expires"] == 604800
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires", "refresh_expires"}
    me = client.get("/api/users/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.json()["username"] == "admin"
    # roms.read was granted, platforms.read was not: 403, not 401
    assert client.get("/api/platforms", headers=bearer(body["access_token"])).status_code == 403
    assert client.get("/api/platforms", headers=bearer(body["access_token"])).json() == {"detail": "Forbidden"}


def test_password_grant_without_scope_gets_all_user_scopes(client, users):
    users.viewer("vic")
    r = password_grant(client, "vic")
    assert r.status_code == 200
    assert client.get("/api/platforms", headers=bearer(r.json()["access_token"])).status_code == 200
    # a viewer's token never carries admin scopes
    assert client.get("/api/users", headers=bearer(r.json()["access_token"])).status_code == 403


def test_password_grant_excess_scope_is_403(client, users):
    users.viewer("vic")
    r = password_grant(client, "vic", scope="roms.read users.write")
    assert r.status_code == 403
    assert r.json() == {"detail": "Insufficient scope"}


def test_unknown_scope_is_400(client, users):
    users.admin()
    r = password_grant(client, scope="roms.read rockets.launch")
    assert r.status_code == 400
    assert "rockets.launch" in r.json()["detail"]


def test_wrong_password_and_unknown_user_are_401(client, users):
    users.admin()
    r = password_grant(client, password="nope")
    assert r.status_code == 401 and r.json() == {"detail": "Invalid username or password"}
    r = password_grant(client, username="ghost")
    assert r.status_code == 401 and r.json() == {"detail": "Invalid username or password"}


def test_missing_username_or_password_is_400(client, users):
    r = client.post("/api/token", data={"grant_type": "password", "username": "admin"})
    assert r.status_code == 400 and r.json() == {"detail": "Missing username or password"}


def test_disabled_user_is_refused(client, users):
    users.make("off", enabled=False)
    assert password_grant(client, "off").status_code == 403
    assert client.get("/api/users/me", headers=users.basic(users.make("on"))).status_code == 200


def test_refresh_rotation_and_reuse_detection(client, users):
    users.admin()
    first = password_grant(client, scope="me.read").json()
    r = client.post("/api/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert client.get("/api/users/me", headers=bearer(second["access_token"])).status_code == 200
    # the old refresh token is single-use
    again = client.post("/api/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert again.status_code == 401
    # ... and replaying it revoked the whole chain, including the new refresh token
    chained = client.post("/api/token", data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    assert chained.status_code == 401


def test_refresh_keeps_scopes_and_can_narrow(client, users):
    users.admin()
    first = password_grant(client, scope="me.read roms.read").json()
    r = client.post(
        "/api/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "scope": "me.read"}
    )
    assert r.status_code == 200
    token = r.json()["access_token"]
    assert client.get("/api/users/me", headers=bearer(token)).status_code == 200
    widened = password_grant(client, scope="me.read").json()
    r = client.post(
        "/api/token",
        data={"grant_type": "refresh_token", "refresh_token": widened["refresh_token"], "scope": "me.read users.write"},
    )
    assert r.status_code == 403


def test_refresh_token_errors(client, users):
    assert client.post("/api/token", data={"grant_type": "refresh_token"}).status_code == 400
    r = client.post("/api/token", data={"grant_type": "refresh_token", "refresh_token": "garbage"})
    assert r.status_code == 401
    users.admin()
    access = password_grant(client).json()["access_token"]
    # an access token is not a refresh token
    assert client.post("/api/token", data={"grant_type": "refresh_token", "refresh_token": access}).status_code == 401


def test_access_token_cannot_be_used_as_refresh_and_vice_versa(client, users):
    users.admin()
    pair = password_grant(client).json()
    assert client.get("/api/users/me", headers=bearer(pair["refresh_token"])).status_code == 401


def test_client_credentials_grant(client, users):
    admin = users.admin()
    created = client.post(
        "/api/client-tokens", headers=users.basic(admin), json={"name": "sync", "scopes": ["me.read", "assets.read"]}
    ).json()
    form = {"grant_type": "client_credentials", "client_id": str(created["id"]), "client_secret": created["raw_token"]}
    r = client.post("/api/token", data=form)
    assert r.status_code == 200, r.text
    body = r.json()
    assert "refresh_token" not in body and body["token_type"] == "bearer"
    assert client.get("/api/users/me", headers=bearer(body["access_token"])).status_code == 200
    assert client.get("/api/platforms", headers=bearer(body["access_token"])).status_code == 403
    # narrowing is allowed, widening beyond the token's scopes is not
    assert client.post("/api/token", data={**form, "scope": "me.read"}).status_code == 200
    assert client.post("/api/token", data={**form, "scope": "roms.read"}).status_code == 403
    # RFC 6749 §2.3.1: credentials as HTTP Basic
    basic = base64.b64encode(f"{created['id']}:{created['raw_token']}".encode()).decode()
    r = client.post(
        "/api/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
    )
    assert r.status_code == 200
    # wrong pairing of id and secret
    assert client.post("/api/token", data={**form, "client_id": "999"}).status_code == 401
    assert client.post("/api/token", data={"grant_type": "client_credentials"}).status_code == 400


def test_unknown_grant_is_400(client):
    r = client.post("/api/token", data={"grant_type": "implicit"})
    assert r.status_code == 400
    assert r.json() == {"detail": "Invalid or unsupported grant type"}


def test_basic_auth_on_any_request(client, users):
    admin = users.admin()
    assert client.get("/api/users/me", headers=users.basic(admin)).status_code == 200
    assert client.get("/api/platforms", headers=users.basic(admin)).status_code == 200
    r = client.get("/api/users/me", headers=users.basic(admin, "wrong"))
    assert r.status_code == 401 and r.json() == {"detail": "Invalid username or password"}


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"nocolon").decode(),
        "Digest abc",
        "Bearer",
        "Bearer nonsense",
        "Bearer a.b.c",
    ],
)
def test_malformed_authorization_is_401(client, users, header):
    users.admin()
    r = client.get("/api/users/me", headers={"Authorization": header})
    assert r.status_code == 401, r.text
    assert "detail" in r.json()


def test_client_token_lifecycle(client, users):
    admin = users.admin()
    r = client.post(
        "/api/client-tokens",
        headers=users.basic(admin),
        json={"name": "handheld", "scopes": ["me.read", "roms.read"], "expires_in": "30d"},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["raw_token"].startswith("rmm_") and len(created["raw_token"]) == 68
    assert created["scopes"] == ["me.read", "roms.read"] and created["expires_at"] is not None
    tok = bearer(created["raw_token"])
    assert client.get("/api/users/me", headers=tok).status_code == 200
    listed = client.get("/api/client-tokens", headers=tok).json()
    assert [t["name"] for t in listed] == ["handheld"] and "raw_token" not in listed[0]
    assert listed[0]["last_used_at"] is not None
    # regenerate: the old value stops working
    regen = client.put(f"/api/client-tokens/{created['id']}/regenerate", headers=users.basic(admin)).json()
    assert client.get("/api/users/me", headers=tok).status_code == 401
    assert client.get("/api/users/me", headers=bearer(regen["raw_token"])).status_code == 200
    # revoke
    assert client.delete(f"/api/client-tokens/{created['id']}", headers=users.basic(admin)).status_code == 204
    assert client.get("/api/users/me", headers=bearer(regen["raw_token"])).status_code == 401


def test_client_token_scopes_limited_to_user(client, users):
    viewer = users.viewer("vic")
    r = client.post("/api/client-tokens", headers=users.basic(viewer), json={"name": "x", "scopes": ["users.write"]})
    assert r.status_code == 403
    r = client.post("/api/client-tokens", headers=users.basic(viewer), json={"name": "x", "scopes": []})
    assert r.status_code == 422
    r = client.post(
        "/api/client-tokens",
        headers=users.basic(viewer),
        json={"name": "x", "scopes": ["me.read"], "expires_in": "forever"},
    )
    assert r.status_code == 400


def test_client_token_of_another_user_is_404(client, users):
    a, b = users.viewer("a"), users.viewer("b")
    created = client.post(
        "/api/client-tokens", headers=users.basic(a), json={"name": "x", "scopes": ["me.read"]}
    ).json()
    assert client.delete(f"/api/client-tokens/{created['id']}", headers=users.basic(b)).status_code == 404


def test_token_scopes_shrink_when_user_is_demoted(client, users):
    admin, ed = users.admin(), users.editor("ed")
    raw = users.token(ed, ["me.read", "roms.write"])
    assert client.get("/api/users/me", headers=bearer(raw)).status_code == 200
    r = client.put(f"/api/users/{ed.id}", headers=users.basic(admin), data={"role": "viewer"})
    assert r.status_code == 200 and r.json()["role"] == "viewer"
    # the token still names roms.write, but the user no longer has it
    assert client.get("/api/users/me", headers=bearer(raw)).status_code == 200
    assert "roms.write" not in client.get("/api/users/me", headers=bearer(raw)).json()["oauth_scopes"]


def test_login_session_cookie_and_csrf(client, users):
    admin = users.admin()
    r = client.post("/api/login", headers=users.basic(admin))
    assert r.status_code == 200 and r.json() == {"msg": "Successfully logged in"}
    assert "romshelf_session" in client.cookies and "romshelf_csrftoken" in client.cookies
    assert client.get("/api/users/me").status_code == 200
    # an unsafe request authenticated only by the cookie needs the CSRF header
    r = client.post("/api/client-tokens", json={"name": "x", "scopes": ["me.read"]})
    assert r.status_code == 403
    r = client.post(
        "/api/client-tokens",
        json={"name": "x", "scopes": ["me.read"]},
        headers={"x-csrftoken": client.cookies["romshelf_csrftoken"]},
    )
    assert r.status_code == 201
    assert client.post("/api/logout").json() == {"msg": "Successfully logged out"}
    client.cookies.clear()
    assert client.get("/api/users/me").status_code == 401


def test_login_with_form_fields_and_bad_credentials(client, users):
    users.admin()
    assert client.post("/api/login", data={"username": "admin", "password": PASSWORD}).status_code == 200
    client.cookies.clear()
    assert client.post("/api/login", data={"username": "admin", "password": "x"}).status_code == 401
    assert client.post("/api/login").status_code == 400


def test_all_22_scopes_for_admin(client, users):
    admin = users.admin()
    me = client.get("/api/users/me", headers=users.basic(admin)).json()
    assert sorted(me["oauth_scopes"]) == sorted(ALL) and len(ALL) == 22
