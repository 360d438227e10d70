"""POST /v1/access_tokens: pkmnapi's access_tokens.rs cases, and romshelf's open sign-up rules."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from factories import count

from romshelf.accounts.models import ClientToken, User
from romshelf.pkmnapi.models import PkmnapiSignup

FORBIDDEN = "Authorization header must not be set"


def body(email: object, type_: str = "access_tokens") -> dict:
    return {"data": {"type": type_, "attributes": {"email_address": email}}}


@pytest.fixture
def signup(v1):
    v1.ctx.settings.v1_open_signup = True
    return v1


def post(v1, payload, headers=None):
    return v1.client.post("/v1/access_tokens", json=payload, headers=headers or {})


def test_disabled_by_default(v1):
    r = post(v1, body("foo@bar.com"))
    assert r.status_code == 403
    assert r.json()["data"]["id"] == "error_access_tokens_forbidden"
    assert "ROMSHELF_V1_OPEN_SIGNUP" in r.json()["data"]["attributes"]["message"]
    v1.assert_headers(r, {"Content-Type": "application/json"})
    assert count(v1.ctx, User) == 0


def test_post_access_token_201(signup, gameboygame):
    v1 = signup
    r = post(v1, body("foo@bar.com"))
    assert r.status_code == 201, r.text
    assert len(r.content) == 66  # a quoted 64-character token, as pkmnapi's tests slice it
    v1.assert_headers(r, {"Content-Type": "application/json", "Location": "http://testserver/v1/access_tokens"})
    token = r.content[1:65].decode()
    assert r.json() == token and re.fullmatch(r"rmm_[A-Za-z0-9]{60}", token)
    # the token works on /v1 ...
    headers = {"Authorization": f"Bearer {token}"}
    assert v1.post_rom(gameboygame, headers).status_code == 201
    assert v1.get_rom(headers).status_code == 200
    # ... and is an ordinary romshelf client token of a viewer account with a minimal scope
    with v1.ctx.db.read() as s:
        user = s.scalar(sa.select(User).where(User.email == "foo@bar.com"))
        assert user is not None and user.username == "foo@bar.com" and user.role == "viewer"
        tokens = list(s.scalars(sa.select(ClientToken).where(ClientToken.user_id == user.id)))
        assert [t.scopes for t in tokens] == ["me.read"]
    me = v1.client.get("/api/users/me", headers=headers)
    assert me.status_code == 200 and me.json()["username"] == "foo@bar.com"


def test_post_access_token_400_invalid_email(signup):
    r = post(signup, body("foo"))
    signup.assert_error(r, 400, "error_access_tokens_invalid", "Invalid email address: foo")


@pytest.mark.parametrize("email", ["", "foo@", "@bar.com", "foo@bar", "a b@c.com", "a/b@c.com", "x@-bad.com"])
def test_more_invalid_emails(signup, email):
    r = post(signup, body(email))
    signup.assert_error(r, 400, "error_access_tokens_invalid", f"Invalid email address: {email}")


def test_post_access_token_403_authorization(signup):
    r = post(signup, body("foo@bar.com"), {"Authorization": "Bearer foo"})
    signup.assert_error(r, 403, "error_access_tokens_forbidden", FORBIDDEN)
    assert count(signup.ctx, User) == 0


def test_authorization_rule_applies_even_when_signup_is_off(v1):
    r = post(v1, body("foo@bar.com"), {"Authorization": "Bearer foo"})
    v1.assert_error(r, 403, "error_access_tokens_forbidden", FORBIDDEN)


def test_post_access_token_403_timeout(signup):
    assert post(signup, body("foo@bar.com")).status_code == 201
    r = post(signup, body("foo@bar.com"))
    assert r.status_code == 403
    assert r.json()["data"]["id"] == "error_access_tokens_timeout"
    m = re.fullmatch(r"Please try again in (\d+) seconds", r.json()["data"]["attributes"]["message"])
    assert m and 0 < int(m.group(1)) <= 600
    signup.assert_headers(r, {"Content-Type": "application/json"})
    # the address is compared without case
    assert post(signup, body("FOO@Bar.com")).status_code == 403


def test_reissue_after_cooldown_revokes_the_old_token_and_keeps_the_rom(signup, gameboygame):
    v1 = signup
    first = post(v1, body("foo@bar.com")).json()
    old = {"Authorization": f"Bearer {first}"}
    rom = v1.post_rom(gameboygame, old)
    with v1.ctx.db.transaction() as s:
        s.execute(sa.update(PkmnapiSignup).values(reissue_after=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    second = post(v1, body("foo@bar.com"))
    assert second.status_code == 201
    new = {"Authorization": f"Bearer {second.json()}"}
    v1.assert_error(v1.get_rom(old), 400, "error_access_tokens_invalid", "Invalid access token")
    assert v1.get_rom(new).content == rom.content
    assert count(v1.ctx, User) == 1 and count(v1.ctx, ClientToken) == 1


def test_existing_romshelf_account_is_not_handed_out(signup, users):
    users.make("alice", email="alice@example.org")
    users.make("bob@example.org")
    for email in ("alice@example.org", "ALICE@example.org", "bob@example.org"):
        r = post(signup, body(email))
        assert r.status_code == 403, r.text
        assert r.json()["data"]["id"] == "error_access_tokens_forbidden"
        assert "already exists" in r.json()["data"]["attributes"]["message"]
    assert count(signup.ctx, ClientToken) == 0


def test_disabled_signup_account_gets_no_new_token(signup, client, users):
    first = post(signup, body("foo@bar.com"))
    assert first.status_code == 201
    admin = users.admin()
    with signup.ctx.db.read() as s:
        uid = s.scalar(sa.select(User.id).where(User.username == "foo@bar.com"))
    assert client.put(f"/api/users/{uid}", headers=users.basic(admin), data={"enabled": "false"}).status_code == 200
    with signup.ctx.db.transaction() as s:
        s.execute(sa.update(PkmnapiSignup).values(reissue_after=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    r = post(signup, body("foo@bar.com"))
    signup.assert_error(r, 403, "error_access_tokens_forbidden", "This account is disabled")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "Invalid JSON body"),
        (b"{not json", "Invalid JSON body"),
        (b"[]", "Missing field: data"),
        (b'{"data":{"type":"roms","attributes":{"email_address":"foo@bar.com"}}}', "Invalid field data.type"),
        (b'{"data":{"type":"access_tokens"}}', "Missing field: data.attributes"),
        (b'{"data":{"type":"access_tokens","attributes":{}}}', "Missing field: data.attributes.email_address"),
        (b'{"data":{"type":"access_tokens","attributes":{"email_address":7}}}', "Missing field"),
        (b"\xff\xfe", "Invalid JSON body"),
    ],
)
def test_malformed_requests_are_400(signup, raw, message):
    r = signup.client.post("/v1/access_tokens", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["data"]["id"] == "error_access_tokens_invalid"
    assert r.json()["data"]["attributes"]["message"].startswith(message)
    assert count(signup.ctx, User) == 0


def test_oversized_body_is_400(signup):
    r = signup.client.post("/v1/access_tokens", content=b" " * (65 * 1024) + b"{}")
    assert r.status_code == 400 and r.json()["data"]["id"] == "error_access_tokens_invalid"


# --- account deletion: POST /v1/access_tokens/delete, DELETE /v1/access_tokens ----------------------


def delete_body(email: object, code: object = "1337") -> dict:
    return {"data": {"type": "access_tokens", "attributes": {"code": code, "email_address": email}}}


def request_code(v1, email, headers=None):
    return v1.client.post("/v1/access_tokens/delete", json=body(email), headers=headers or {})


def delete_account(v1, email, code="1337", headers=None):
    return v1.client.request("DELETE", "/v1/access_tokens", json=delete_body(email, code), headers=headers or {})


def past_cooldown(v1):
    with v1.ctx.db.transaction() as s:
        s.execute(sa.update(PkmnapiSignup).values(reissue_after=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))


def test_post_access_token_delete_201(signup):
    r = request_code(signup, "foo@bar.com")  # no such account
    assert r.status_code == 201 and r.content == b'""'
    signup.assert_headers(r, {"Content-Type": "application/json", "Location": "http://testserver/v1/access_tokens"})


def test_post_access_token_delete_400(signup):
    signup.assert_error(request_code(signup, "foo"), 400, "error_access_tokens_invalid", "Invalid email address: foo")


def test_post_access_token_delete_403_authorization(signup):
    r = request_code(signup, "foo@bar.com", {"Authorization": "Bearer foo"})
    signup.assert_error(r, 403, "error_access_tokens_forbidden", FORBIDDEN)


def test_delete_access_token_204(signup):
    r = delete_account(signup, "foo@bar.com", "1337")
    assert r.status_code == 204 and r.content == b""
    signup.assert_headers(r, {})


def test_delete_access_token_400(signup):
    signup.assert_error(delete_account(signup, "foo"), 400, "error_access_tokens_invalid", "Invalid email address: foo")
    r = signup.client.request("DELETE", "/v1/access_tokens", json=body("foo@bar.com"))  # no code
    signup.assert_error(r, 400, "error_access_tokens_invalid", "Missing field: data.attributes.code (a string)")


def test_delete_access_token_403_authorization(signup):
    r = delete_account(signup, "foo@bar.com", headers={"Authorization": "Bearer foo"})
    signup.assert_error(r, 403, "error_access_tokens_forbidden", FORBIDDEN)


def test_account_deletion_flow(signup, gameboygame):
    v1 = signup
    token = post(v1, body("foo@bar.com")).json()
    headers = {"Authorization": f"Bearer {token}"}
    assert v1.post_rom(gameboygame, headers).status_code == 201
    # the cooldown of a fresh token applies to deletion codes too
    assert request_code(v1, "foo@bar.com").json()["data"]["id"] == "error_access_tokens_timeout"
    past_cooldown(v1)
    code = request_code(v1, "foo@bar.com").json()
    assert re.fullmatch(r"[A-Za-z0-9]{64}", code)
    # a wrong code is a 204 that deletes nothing
    assert delete_account(v1, "foo@bar.com", "1337").status_code == 204
    assert v1.get_rom(headers).status_code == 200 and count(v1.ctx, User) == 1
    assert delete_account(v1, "FOO@bar.com", code).status_code == 204
    assert count(v1.ctx, User) == 0 and count(v1.ctx, ClientToken) == 0 and count(v1.ctx, PkmnapiSignup) == 0
    v1.assert_error(v1.get_rom(headers), 400, "error_access_tokens_invalid", "Invalid access token")
    assert v1.stored_files() == []
    # the address can sign up again
    assert post(v1, body("foo@bar.com")).status_code == 201


def test_deletion_code_is_single_use_and_expires(signup):
    v1 = signup
    assert post(v1, body("foo@bar.com")).status_code == 201
    past_cooldown(v1)
    code = request_code(v1, "foo@bar.com").json()
    with v1.ctx.db.transaction() as s:
        s.execute(
            sa.update(PkmnapiSignup).values(delete_code_expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    assert delete_account(v1, "foo@bar.com", code).status_code == 204
    assert count(v1.ctx, User) == 1
    newer = request_code(v1, "foo@bar.com").json()
    assert newer != code
    assert delete_account(v1, "foo@bar.com", code).status_code == 204  # the old code is dead
    assert count(v1.ctx, User) == 1
    assert delete_account(v1, "foo@bar.com", newer).status_code == 204
    assert count(v1.ctx, User) == 0


def test_romshelf_accounts_cannot_be_deleted_through_v1(signup, users):
    users.make("alice", email="alice@example.org")
    r = request_code(signup, "alice@example.org")
    assert r.status_code == 201 and r.json() == ""
    assert delete_account(signup, "alice@example.org", "").status_code == 204
    assert count(signup.ctx, User) == 1


def test_deletion_routes_are_off_without_open_signup(v1):
    for r in (request_code(v1, "foo@bar.com"), delete_account(v1, "foo@bar.com")):
        assert r.status_code == 403 and r.json()["data"]["id"] == "error_access_tokens_forbidden"
