"""/api/auth/device: pairing a device (RFC 8628 style) and using the device-bound token it gets."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from factories import count

from romshelf.accounts.dependencies import authenticate_bearer
from romshelf.accounts.models import ClientToken
from romshelf.accounts.security import sha256_hex
from romshelf.core.timeutil import to_utc, utcnow
from romshelf.devices.models import Device, DevicePairing
from romshelf.devices.pairing import USER_CODE_ALPHABET, normalize_user_code
from romshelf.devices.ratelimit import RateLimiter, TooManyRequests

SCOPES = ["me.read", "assets.read", "assets.write", "devices.read", "devices.write"]


@pytest.fixture
def alice(users):
    return users.viewer("alice")


@pytest.fixture
def auth(users, alice):
    return users.headers(alice)


def _init(http, **overrides):
    body = {
        "client_device_identifier": "argosy-1234",
        "name": "Retroid Pocket",
        "client": "argosy-launcher",
        "platform": "android",
        "client_version": "0.9.1",
        "requested_scopes": SCOPES,
        **overrides,
    }
    return http.post("/api/auth/device/init", json=body)


def _poll(http, device_code):
    return http.post("/api/auth/device/token", json={"device_code": device_code})


def _unthrottle(ctx, device_code):
    """Move the last poll back in time, as if the device had waited its interval."""
    with ctx.db.session() as s:
        s.execute(
            sa.update(DevicePairing)
            .where(DevicePairing.device_code_hash == sha256_hex(device_code))
            .values(last_polled_at=utcnow() - dt.timedelta(hours=1))
        )
        s.commit()


def _approve(http, auth, user_code, **overrides):
    body = {"user_code": user_code, "approved_scopes": SCOPES, **overrides}
    return http.post("/api/auth/device/approve", json=body, headers=auth)


def test_init_shape(client, ctx):
    r = _init(client)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {
        "device_code",
        "user_code",
        "verification_path",
        "verification_path_complete",
        "expires_in",
        "interval",
    }
    assert re.fullmatch(r"[0-9a-f]{64}", body["device_code"])
    assert len(body["user_code"]) == 8 and set(body["user_code"]) <= set(USER_CODE_ALPHABET)
    assert body["verification_path"] == "/pair/device"
    assert body["verification_path_complete"] == f"/pair/device?user_code={body['user_code']}"
    assert body["expires_in"] == 600 and body["interval"] == 5
    # Only a hash of the device code is stored.
    with ctx.db.read() as s:
        row = s.scalar(sa.select(DevicePairing))
        assert row.device_code_hash == sha256_hex(body["device_code"])
        assert body["device_code"] not in {str(v) for v in vars(row).values()}
    assert _init(client).json()["device_code"] != body["device_code"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"requested_scopes": []},
        {"requested_scopes": ["me.read", "root.everything"]},
        {"client_device_identifier": ""},
        {"name": "n" * 256},
        {"client": None},
    ],
)
def test_init_bad_input_is_422(client, overrides):
    assert _init(client, **overrides).status_code == 422


def test_full_flow_and_the_token_works(client, ctx, users, alice, auth):
    started = _init(client).json()
    code, user_code = started["device_code"], started["user_code"]

    r = _poll(client, code)
    assert r.status_code == 400 and r.json() == {"detail": "authorization_pending"}

    pending = client.get(f"/api/auth/device/pending/{user_code}", headers=auth)
    assert pending.status_code == 200, pending.text
    p = pending.json()
    assert p["client_device_identifier"] == "argosy-1234"
    assert p["name"] == "Retroid Pocket" and p["client"] == "argosy-launcher"
    assert p["platform"] == "android" and p["client_version"] == "0.9.1"
    assert p["requested_scopes"] == sorted(SCOPES)
    assert sorted(p["allowed_scopes"]) == sorted(SCOPES)
    assert p["expires_at"].endswith("+00:00")

    r = _approve(client, auth, user_code, device_name="My RP4", expires_in="30d")
    assert r.status_code == 200, r.text
    device_id = r.json()["device_id"]
    assert r.json() == {"device_id": device_id, "device_name": "My RP4"}

    r = _poll(client, code)
    assert r.status_code == 200, r.text
    issued = r.json()
    assert set(issued) == {"access_token", "device_id", "scopes", "expires_at"}
    assert issued["access_token"].startswith("rmm_")
    assert issued["device_id"] == device_id
    assert sorted(issued["scopes"]) == sorted(SCOPES)
    expires = dt.datetime.fromisoformat(issued["expires_at"])
    assert dt.timedelta(days=29) < expires - utcnow() <= dt.timedelta(days=30)

    # Returned once: the next poll is told the code is spent.
    r = _poll(client, code)
    assert r.status_code == 400 and r.json() == {"detail": "expired_token"}
    assert count(ctx, ClientToken, ClientToken.device_id == device_id) == 1

    # The device row was created from the request.
    token_headers = {"Authorization": f"Bearer {issued['access_token']}"}
    device = client.get(f"/api/devices/{device_id}", headers=token_headers)
    assert device.status_code == 200, device.text
    d = device.json()
    assert d["user_id"] == alice.id and d["name"] == "My RP4"
    assert d["client_device_identifier"] == "argosy-1234" and d["client"] == "argosy-launcher"
    assert d["platform"] == "android" and d["client_version"] == "0.9.1" and d["sync_mode"] == "api"

    # The token is bound to the device: /users/me reports it, and so does the auth layer.
    me = client.get("/api/users/me", headers=token_headers)
    assert me.status_code == 200
    assert me.json()["id"] == alice.id and me.json()["current_device_id"] == device_id
    principal = authenticate_bearer(ctx, issued["access_token"])
    assert principal is not None and principal.device_id == device_id and principal.method == "client_token"
    assert principal.scopes == frozenset(SCOPES)

    # It carries exactly the approved scopes: a devices write works, a scope it lacks is 403.
    r = client.put(f"/api/devices/{device_id}", json={"sync_enabled": False}, headers=token_headers)
    assert r.status_code == 200 and r.json()["sync_enabled"] is False
    assert client.get("/api/client-tokens", headers=token_headers).status_code == 200  # me.read
    assert client.post("/api/collections", json={"name": "x"}, headers=token_headers).status_code == 403

    # It shows in the user's token list, bound to the device.
    tokens = client.get("/api/client-tokens", headers=auth).json()
    bound = [t for t in tokens if t["device_id"] == device_id]
    assert len(bound) == 1 and bound[0]["name"] == "My RP4"


def test_approve_with_fewer_scopes_and_no_expiry(client, auth):
    started = _init(client).json()
    r = _approve(client, auth, started["user_code"], approved_scopes=["me.read"], expires_in="never")
    assert r.status_code == 200
    assert r.json()["device_name"] == "Retroid Pocket"  # the requested name when none is given
    issued = _poll(client, started["device_code"]).json()
    assert issued["scopes"] == ["me.read"] and issued["expires_at"] is None
    headers = {"Authorization": f"Bearer {issued['access_token']}"}
    assert client.get("/api/users/me", headers=headers).status_code == 200
    assert client.get("/api/devices", headers=headers).status_code == 403


@pytest.mark.parametrize(("expires_in", "days"), [(None, None), ("90d", 90), ("1y", 365)])
def test_approve_expiry_choices(client, auth, expires_in, days):
    started = _init(client).json()
    assert _approve(client, auth, started["user_code"], expires_in=expires_in).status_code == 200
    issued = _poll(client, started["device_code"]).json()
    if days is None:
        assert issued["expires_at"] is None
    else:
        left = dt.datetime.fromisoformat(issued["expires_at"]) - utcnow()
        assert dt.timedelta(days=days - 1) < left <= dt.timedelta(days=days)


def test_approve_bad_expiry_is_400_and_changes_nothing(client, ctx, auth):
    started = _init(client).json()
    r = _approve(client, auth, started["user_code"], expires_in="forever")
    assert r.status_code == 400
    assert count(ctx, Device) == 0
    assert _poll(client, started["device_code"]).json() == {"detail": "authorization_pending"}


def test_approve_scopes_beyond_request_or_approver_are_403(client, ctx, users, alice):
    started = _init(client, requested_scopes=["me.read", "devices.read", "users.write"]).json()
    narrow = users.headers(alice, ["me.read", "me.write", "devices.read"])
    pending = client.get(f"/api/auth/device/pending/{started['user_code']}", headers=narrow).json()
    # users.write is requested but alice (a viewer) does not hold it.
    assert pending["allowed_scopes"] == ["me.read", "devices.read"]
    for scopes in (["users.write"], ["me.read", "assets.read"], ["devices.read", "roms.write"]):
        r = _approve(client, narrow, started["user_code"], approved_scopes=scopes)
        assert r.status_code == 403, scopes
        assert r.json() == {"detail": "Approved scopes exceed what's allowed for this user"}
    assert count(ctx, Device) == 0
    r = _approve(client, narrow, started["user_code"], approved_scopes=["devices.read", "me.read"])
    assert r.status_code == 200
    assert sorted(_poll(client, started["device_code"]).json()["scopes"]) == ["devices.read", "me.read"]


def test_approver_token_scopes_limit_what_it_can_grant(client, users, alice):
    """A token with me.write but without devices.write cannot hand devices.write to a device."""
    started = _init(client).json()
    limited = users.headers(alice, ["me.read", "me.write"])
    assert _approve(client, limited, started["user_code"]).status_code == 403
    assert _approve(client, limited, started["user_code"], approved_scopes=["me.read"]).status_code == 200


def test_unknown_code_is_404(client, auth):
    for r in (
        client.get("/api/auth/device/pending/ZZZZZZZZ", headers=auth),
        _approve(client, auth, "ZZZZZZZZ"),
        client.post("/api/auth/device/deny", json={"user_code": "ZZZZZZZZ"}, headers=auth),
    ):
        assert r.status_code == 404
        assert r.json() == {"detail": "Unknown or expired code"}
    assert _poll(client, "0" * 64).json() == {"detail": "expired_token"}


def test_user_code_is_forgiving_about_case_and_dashes(client, auth):
    user_code = _init(client).json()["user_code"]
    typed = f"{user_code[:4].lower()}-{user_code[4:]}"
    assert normalize_user_code(typed) == user_code
    assert client.get(f"/api/auth/device/pending/{typed}", headers=auth).status_code == 200
    assert _approve(client, auth, f" {typed} ").status_code == 200


def test_decided_code_is_410(client, ctx, auth):
    approved = _init(client).json()
    assert _approve(client, auth, approved["user_code"]).status_code == 200
    for r in (
        client.get(f"/api/auth/device/pending/{approved['user_code']}", headers=auth),
        _approve(client, auth, approved["user_code"]),
        client.post("/api/auth/device/deny", json={"user_code": approved["user_code"]}, headers=auth),
    ):
        assert r.status_code == 410
        assert r.json() == {"detail": "Code already approved"}
    assert count(ctx, Device) == 1
    # Still "approved" (not a leak of internal states) after the token was collected.
    assert _poll(client, approved["device_code"]).status_code == 200
    r = client.get(f"/api/auth/device/pending/{approved['user_code']}", headers=auth)
    assert r.status_code == 410 and r.json() == {"detail": "Code already approved"}

    denied = _init(client, client_device_identifier="other").json()
    r = client.post("/api/auth/device/deny", json={"user_code": denied["user_code"]}, headers=auth)
    assert r.status_code == 200
    r = _approve(client, auth, denied["user_code"])
    assert r.status_code == 410 and r.json() == {"detail": "Code already denied"}


def test_deny_then_poll_is_access_denied(client, ctx, auth):
    started = _init(client).json()
    r = client.post("/api/auth/device/deny", json={"user_code": started["user_code"]}, headers=auth)
    assert r.status_code == 200
    for _ in range(2):
        r = _poll(client, started["device_code"])
        assert r.status_code == 400 and r.json() == {"detail": "access_denied"}
    assert count(ctx, Device) == 0 and count(ctx, ClientToken, ClientToken.device_id.is_not(None)) == 0


def test_polling_too_fast_is_slow_down(client, ctx):
    code = _init(client).json()["device_code"]
    assert _poll(client, code).json() == {"detail": "authorization_pending"}
    # Straight away again: well inside the 5 s interval.
    assert _poll(client, code).json() == {"detail": "slow_down"}
    _unthrottle(ctx, code)
    assert _poll(client, code).json() == {"detail": "authorization_pending"}


def test_expired_request(client, ctx, auth):
    started = _init(client).json()
    with ctx.db.session() as s:
        s.execute(sa.update(DevicePairing).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
        s.commit()
    assert _poll(client, started["device_code"]).json() == {"detail": "expired_token"}
    r = client.get(f"/api/auth/device/pending/{started['user_code']}", headers=auth)
    assert r.status_code == 404
    assert _approve(client, auth, started["user_code"]).status_code == 404
    # The next /init sweeps expired requests away.
    _init(client)
    assert count(ctx, DevicePairing) == 1


def test_approved_but_not_collected_in_time_expires(client, ctx, auth):
    started = _init(client).json()
    assert _approve(client, auth, started["user_code"]).status_code == 200
    with ctx.db.session() as s:
        s.execute(sa.update(DevicePairing).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
        s.commit()
    assert _poll(client, started["device_code"]).json() == {"detail": "expired_token"}
    assert count(ctx, ClientToken, ClientToken.device_id.is_not(None)) == 0


def test_device_deleted_before_collection_is_access_denied(client, ctx, auth):
    started = _init(client).json()
    device_id = _approve(client, auth, started["user_code"]).json()["device_id"]
    assert client.delete(f"/api/devices/{device_id}", headers=auth).status_code == 204
    assert _poll(client, started["device_code"]).json() == {"detail": "access_denied"}
    assert count(ctx, ClientToken, ClientToken.name == "Retroid Pocket") == 0


def test_approver_disabled_before_collection_is_access_denied(client, ctx, users, alice, auth):
    started = _init(client).json()
    assert _approve(client, auth, started["user_code"]).status_code == 200
    admin = users.admin()
    r = client.put(f"/api/users/{alice.id}", data={"enabled": "false"}, headers=users.headers(admin))
    assert r.status_code == 200, r.text
    assert _poll(client, started["device_code"]).json() == {"detail": "access_denied"}


def test_repairing_the_same_device_reuses_its_row(client, ctx, alice, auth):
    first = _init(client).json()
    device_id = _approve(client, auth, first["user_code"]).json()["device_id"]
    _poll(client, first["device_code"])
    second = _init(client, client_version="1.0.0", name="RP4 Pro").json()
    r = _approve(client, auth, second["user_code"])
    assert r.json() == {"device_id": device_id, "device_name": "RP4 Pro"}
    issued = _poll(client, second["device_code"]).json()
    assert issued["device_id"] == device_id
    assert count(ctx, Device) == 1
    with ctx.db.read() as s:
        device = s.get(Device, device_id)
        assert device.client_version == "1.0.0" and device.name == "RP4 Pro"
    assert count(ctx, ClientToken, ClientToken.device_id == device_id) == 2


def test_same_identifier_for_two_users_is_two_devices(client, ctx, users, auth):
    bob = users.viewer("bob")
    a = _init(client).json()
    b = _init(client).json()
    da = _approve(client, auth, a["user_code"]).json()["device_id"]
    db_ = _approve(client, users.headers(bob), b["user_code"]).json()["device_id"]
    assert da != db_
    bob_token = {"Authorization": f"Bearer {_poll(client, b['device_code']).json()['access_token']}"}
    assert client.get(f"/api/devices/{da}", headers=bob_token).status_code == 404
    assert client.get(f"/api/devices/{db_}", headers=bob_token).status_code == 200


def test_token_limit_is_checked_at_approval(client, ctx, users, alice, auth):
    ctx.settings.max_client_tokens_per_user = 1  # the `auth` token is alice's one token
    started = _init(client).json()
    r = _approve(client, auth, started["user_code"])
    assert r.status_code == 400
    assert "Maximum of 1 tokens" in r.json()["detail"]
    assert _poll(client, started["device_code"]).json() == {"detail": "authorization_pending"}


@pytest.mark.parametrize(
    ("method", "path", "body", "scope"),
    [
        ("GET", "/api/auth/device/pending/ABCDEFGH", None, "me.read"),
        ("POST", "/api/auth/device/approve", {"user_code": "ABCDEFGH", "approved_scopes": ["me.read"]}, "me.write"),
        ("POST", "/api/auth/device/deny", {"user_code": "ABCDEFGH"}, "me.write"),
    ],
)
def test_decision_endpoints_need_auth_and_scope(client, users, alice, method, path, body, scope):
    r = client.request(method, path, json=body)
    assert r.status_code == 401 and r.json() == {"detail": "Not authenticated"}
    without = [s for s in ["me.read", "me.write", "devices.read", "devices.write"] if s != scope]
    r = client.request(method, path, json=body, headers=users.headers(alice, without))
    assert r.status_code == 403 and r.json() == {"detail": "Forbidden"}


def test_bad_poll_bodies_are_422(client):
    assert client.post("/api/auth/device/token", json={}).status_code == 422
    assert client.post("/api/auth/device/token", json={"device_code": "x" * 129}).status_code == 422


# --- rate limits ----------------------------------------------------------------------------


def test_init_is_rate_limited_per_client(client, ctx):
    ctx.extras.pop("devices.pairing_limits", None)
    ctx.settings.device_pairing_init_per_minute = 3
    for _ in range(3):
        assert _init(client).status_code == 201
    r = _init(client)
    assert r.status_code == 429
    assert r.json() == {"detail": "Too many requests"}
    assert 1 <= int(r.headers["retry-after"]) <= 60


def test_token_polls_are_rate_limited_per_client(client, ctx):
    ctx.extras.pop("devices.pairing_limits", None)
    ctx.settings.device_pairing_poll_per_minute = 2
    code = _init(client).json()["device_code"]
    assert _poll(client, code).status_code == 400
    assert _poll(client, code).status_code == 400
    assert _poll(client, code).status_code == 429


def test_rate_limiter_window_slides():
    """Pure logic with explicit clock values (no sleeping, no wall-clock assertions)."""
    limiter = RateLimiter(2, window_seconds=60)
    limiter.hit("a", now=0)
    limiter.hit("a", now=10)
    limiter.hit("b", now=10)  # another client has its own budget
    with pytest.raises(TooManyRequests) as info:
        limiter.hit("a", now=20)
    assert info.value.headers == {"Retry-After": "40"}
    limiter.hit("a", now=60.5)  # the first hit has left the window
    unlimited = RateLimiter(0)
    for i in range(100):
        unlimited.hit("a", now=i)


def test_pending_row_keeps_no_secret(client, ctx, auth):
    started = _init(client).json()
    _approve(client, auth, started["user_code"])
    issued = _poll(client, started["device_code"]).json()
    with ctx.db.read() as s:
        row = s.scalar(sa.select(DevicePairing))
        values = {str(v) for v in vars(row).values()}
        assert issued["access_token"] not in values and started["device_code"] not in values
        assert row.status == "redeemed"
        assert to_utc(row.expires_at) > utcnow()


# --- exactly once, under concurrency --------------------------------------------------------


def _in_threads(n, fn):
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(fn, range(n)))


def test_concurrent_polls_get_the_token_once(client, ctx, auth):
    from romshelf.devices import pairing
    from romshelf.devices.pairing import PollError

    started = _init(client).json()
    assert _approve(client, auth, started["user_code"]).status_code == 200

    def poll(_n):
        with ctx.db.session() as s:
            try:
                return pairing.redeem(s, ctx.settings, started["device_code"]).access_token
            except PollError as exc:
                return exc.detail

    results = _in_threads(4, poll)
    tokens = [r for r in results if r.startswith("rmm_")]
    assert len(tokens) == 1, results
    assert sorted(r for r in results if not r.startswith("rmm_")) == ["expired_token"] * 3
    assert count(ctx, ClientToken, ClientToken.device_id.is_not(None)) == 1


def test_concurrent_approve_and_deny_decide_once(client, ctx, users, alice):
    from romshelf.core.errors import AppError
    from romshelf.devices import pairing
    from romshelf.devices.schemas import DeviceAuthApprovePayload

    started = _init(client).json()
    scopes = frozenset(SCOPES)
    body = DeviceAuthApprovePayload(user_code=started["user_code"], approved_scopes=SCOPES)

    def decide(n):  # odd threads deny, even ones approve
        with ctx.db.session() as s:
            try:
                if n % 2:
                    pairing.deny(s, alice.id, started["user_code"])
                    return "denied"
                pairing.approve(s, ctx.settings, alice.id, scopes, body)
                return "approved"
            except AppError as exc:
                return exc.status_code

    results = _in_threads(6, decide)
    winners = [r for r in results if r in ("approved", "denied")]
    assert len(winners) == 1, results
    assert sorted(r for r in results if r not in winners) == [410] * 5
    assert count(ctx, Device) == (1 if winners == ["approved"] else 0)
    expected = 200 if winners == ["approved"] else 400
    assert _poll(client, started["device_code"]).status_code == expected


def test_paired_token_as_client_credentials_keeps_the_device(client, ctx, auth):
    """A device-bound token exchanged for a short-lived access token (OAuth2 client
    credentials) still identifies its device."""
    started = _init(client).json()
    device_id = _approve(client, auth, started["user_code"]).json()["device_id"]
    raw = _poll(client, started["device_code"]).json()["access_token"]
    with ctx.db.read() as s:
        token_id = s.scalar(sa.select(ClientToken.id).where(ClientToken.device_id == device_id))
    r = client.post(
        "/api/token", data={"grant_type": "client_credentials", "client_id": str(token_id), "client_secret": raw}
    )
    assert r.status_code == 200, r.text
    jwt_headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert client.get("/api/users/me", headers=jwt_headers).json()["current_device_id"] == device_id
    assert client.get(f"/api/devices/{device_id}", headers=jwt_headers).status_code == 200


def test_device_bound_token_use_records_last_seen_with_a_debounce(client, ctx, auth):
    from romshelf.devices import service as devices_service

    started = _init(client).json()
    device_id = _approve(client, auth, started["user_code"]).json()["device_id"]
    token = _poll(client, started["device_code"]).json()["access_token"]
    long_ago = utcnow() - dt.timedelta(days=3)

    def set_last_seen(value):
        with ctx.db.session() as s:
            s.execute(sa.update(Device).where(Device.id == device_id).values(last_seen=value))
            s.commit()

    def last_seen():
        with ctx.db.session() as s:
            return to_utc(s.scalar(sa.select(Device.last_seen).where(Device.id == device_id)))

    devices_service._last_seen_written.pop(device_id, None)
    set_last_seen(long_ago)
    assert client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    seen = last_seen()
    assert seen > long_ago + dt.timedelta(days=2)

    # Within five minutes, further requests do not write again.
    set_last_seen(long_ago)
    assert client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert last_seen() == long_ago

    # A token without a device touches no device.
    set_last_seen(long_ago)
    devices_service._last_seen_written.clear()
    assert client.get("/api/users/me", headers=auth).status_code == 200
    assert last_seen() == long_ago
