"""/api/devices: register (fingerprints, 200/201/409), list, get, update, delete, isolation, masking."""

from __future__ import annotations

import uuid

import pytest
from factories import count, make_rom

from romshelf.accounts.models import ClientToken
from romshelf.devices.models import Device
from romshelf.saves.models import DeviceSaveSync, Save

ALL_DEVICE_FIELDS = {
    "id",
    "user_id",
    "name",
    "platform",
    "client",
    "client_version",
    "ip_address",
    "mac_address",
    "hostname",
    "client_device_identifier",
    "sync_mode",
    "sync_enabled",
    "sync_config",
    "last_seen",
    "created_at",
    "updated_at",
}


@pytest.fixture
def alice(users):
    return users.viewer("alice")


@pytest.fixture
def auth(users, alice):
    return users.headers(alice)


def _register(http, auth, **body):
    return http.post("/api/devices", json=body, headers=auth)


def _add_sync(ctx, user_id: int, device_id: str) -> int:
    """A save of the user with a sync record for the device; returns the save id."""
    rom = make_rom(ctx, "gba", uuid.uuid4().bytes, fs_name=f"{uuid.uuid4().hex}.gba")
    with ctx.db.session() as s:
        save = Save(
            rom_id=rom.id,
            user_id=user_id,
            file_name="game.srm",
            file_path=f"users/{user_id}/saves",
            origin_device_id=device_id,
        )
        s.add(save)
        s.flush()
        from romshelf.core.timeutil import utcnow

        s.add(DeviceSaveSync(device_id=device_id, save_id=save.id, last_synced_at=utcnow()))
        s.commit()
        return save.id


# --- register -------------------------------------------------------------------------------


def test_register_returns_201_with_uuid4_id(client, auth, alice):
    r = _register(client, auth, name="Miyoo", platform="muOS", client="grout", client_version="1.2")
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"device_id", "name", "created_at"}
    assert uuid.UUID(body["device_id"]).version == 4
    assert body["name"] == "Miyoo"
    assert body["created_at"].endswith("+00:00")
    got = client.get(f"/api/devices/{body['device_id']}", headers=auth).json()
    assert set(got) == ALL_DEVICE_FIELDS
    assert got["user_id"] == alice.id
    assert got["sync_mode"] == "api" and got["sync_enabled"] is True
    assert got["last_seen"] is not None
    assert got["client"] == "grout" and got["client_version"] == "1.2" and got["platform"] == "muOS"


def test_register_empty_body_is_201_with_null_name(client, auth):
    r = client.post("/api/devices", headers=auth)
    assert r.status_code == 201, r.text
    assert r.json()["name"] is None
    r = _register(client, auth)
    assert r.status_code == 201
    assert r.json()["name"] is None


def test_two_empty_registrations_are_two_devices(client, auth):
    a = _register(client, auth).json()["device_id"]
    b = _register(client, auth).json()["device_id"]
    assert a != b


def test_duplicate_mac_returns_existing_with_200_and_only_bumps_last_seen(client, auth):
    first = _register(client, auth, name="One", mac_address="AA:BB:CC:DD:EE:FF", platform="android")
    assert first.status_code == 201
    device_id = first.json()["device_id"]
    before = client.get(f"/api/devices/{device_id}", headers=auth).json()
    again = _register(client, auth, name="Renamed", mac_address="aa:bb:cc:dd:ee:ff", platform="other")
    assert again.status_code == 200, again.text
    assert again.json() == first.json()  # same id, name and created_at: nothing else changed
    after = client.get(f"/api/devices/{device_id}", headers=auth).json()
    assert after["name"] == "One" and after["platform"] == "android"
    assert after["last_seen"] >= before["last_seen"]
    assert len(client.get("/api/devices", headers=auth).json()) == 1


def test_same_hostname_and_platform_returns_existing(client, auth):
    first = _register(client, auth, hostname="deck", platform="steamos").json()
    again = _register(client, auth, hostname="deck", platform="steamos", name="x")
    assert again.status_code == 200
    assert again.json()["device_id"] == first["device_id"]
    other_platform = _register(client, auth, hostname="deck", platform="windows")
    assert other_platform.status_code == 201


def test_hostname_without_platform_does_not_dedup(client, auth):
    a = _register(client, auth, hostname="deck")
    b = _register(client, auth, hostname="deck")
    assert a.status_code == b.status_code == 201
    assert a.json()["device_id"] != b.json()["device_id"]


def test_mac_takes_precedence_over_hostname(client, auth):
    _register(client, auth, hostname="deck", platform="steamos", mac_address="00:11:22:33:44:55")
    # A different MAC with the same hostname+platform is a different device.
    r = _register(client, auth, hostname="deck", platform="steamos", mac_address="00:11:22:33:44:66")
    assert r.status_code == 201


def test_allow_existing_false_is_409_with_dict_detail(client, auth):
    device_id = _register(client, auth, mac_address="AA:BB:CC:DD:EE:01").json()["device_id"]
    r = _register(client, auth, mac_address="AA:BB:CC:DD:EE:01", allow_existing=False)
    assert r.status_code == 409
    assert r.json() == {
        "detail": {
            "error": "device_exists",
            "message": "A device with this fingerprint already exists",
            "device_id": device_id,
        }
    }


def test_allow_duplicate_creates_new_device(client, auth):
    first = _register(client, auth, mac_address="AA:BB:CC:DD:EE:02").json()
    r = _register(client, auth, mac_address="AA:BB:CC:DD:EE:02", allow_duplicate=True)
    assert r.status_code == 201
    assert r.json()["device_id"] != first["device_id"]
    # allow_duplicate wins over allow_existing=true and never answers 409.
    r = _register(client, auth, mac_address="AA:BB:CC:DD:EE:02", allow_duplicate=True, allow_existing=True)
    assert r.status_code == 201


def test_reset_syncs_clears_the_matched_devices_sync_rows(client, ctx, auth, alice):
    device_id = _register(client, auth, mac_address="AA:BB:CC:DD:EE:03").json()["device_id"]
    other_id = _register(client, auth, mac_address="AA:BB:CC:DD:EE:04").json()["device_id"]
    _add_sync(ctx, alice.id, device_id)
    _add_sync(ctx, alice.id, other_id)
    r = _register(client, auth, mac_address="AA:BB:CC:DD:EE:03")
    assert r.status_code == 200
    assert count(ctx, DeviceSaveSync, DeviceSaveSync.device_id == device_id) == 1  # no reset asked
    r = _register(client, auth, mac_address="AA:BB:CC:DD:EE:03", reset_syncs=True)
    assert r.status_code == 200
    assert count(ctx, DeviceSaveSync, DeviceSaveSync.device_id == device_id) == 0
    assert count(ctx, DeviceSaveSync, DeviceSaveSync.device_id == other_id) == 1
    assert count(ctx, Save) == 2  # only the records go, never saves


def test_fingerprint_is_per_user(client, users, auth):
    bob = users.viewer("bob")
    mine = _register(client, auth, mac_address="AA:BB:CC:DD:EE:05").json()["device_id"]
    r = client.post("/api/devices", json={"mac_address": "AA:BB:CC:DD:EE:05"}, headers=users.headers(bob))
    assert r.status_code == 201
    assert r.json()["device_id"] != mine


@pytest.mark.parametrize(
    "body",
    [
        {"sync_mode": "carrier_pigeon"},
        {"mac_address": "x" * 18},
        {"platform": "p" * 51},
        {"name": "n" * 256},
        {"sync_config": "not an object"},
        {"allow_existing": "maybe"},
    ],
)
def test_register_bad_input_is_422(client, auth, body):
    assert _register(client, auth, **body).status_code == 422


def test_register_with_sync_mode_and_config(client, auth):
    r = _register(
        client,
        auth,
        name="NAS",
        sync_mode="file_transfer",
        sync_config={"ssh_host": "nas.local", "ssh_password": "hunter2", "ssh_key_path": "/k"},
    )
    assert r.status_code == 201
    got = client.get(f"/api/devices/{r.json()['device_id']}", headers=auth).json()
    assert got["sync_mode"] == "file_transfer"
    assert got["sync_config"] == {"ssh_host": "nas.local", "ssh_password": "********", "ssh_key_path": "********"}


# --- list / get -----------------------------------------------------------------------------


def test_list_shows_only_own_devices(client, users, auth):
    bob = users.viewer("bob")
    bob_auth = users.headers(bob)
    a1 = _register(client, auth, name="a1").json()["device_id"]
    a2 = _register(client, auth, name="a2").json()["device_id"]
    b1 = client.post("/api/devices", json={"name": "b1"}, headers=bob_auth).json()["device_id"]
    mine = client.get("/api/devices", headers=auth)
    assert mine.status_code == 200
    assert [d["id"] for d in mine.json()] == [a1, a2]
    assert [d["id"] for d in client.get("/api/devices/", headers=bob_auth).json()] == [b1]


def test_get_unknown_and_foreign_device_is_404(client, users, auth):
    bob = users.viewer("bob")
    b1 = client.post("/api/devices", json={"name": "b1"}, headers=users.headers(bob)).json()["device_id"]
    r = client.get(f"/api/devices/{b1}", headers=auth)
    assert r.status_code == 404
    assert r.json() == {"detail": f"Device with ID {b1} not found"}
    r = client.get("/api/devices/nope", headers=auth)
    assert r.json() == {"detail": "Device with ID nope not found"}


def test_admin_cannot_see_other_users_devices_either(client, users):
    bob = users.viewer("bob")
    admin = users.admin()
    b1 = client.post("/api/devices", json={"name": "b1"}, headers=users.headers(bob)).json()["device_id"]
    assert client.get(f"/api/devices/{b1}", headers=users.headers(admin)).status_code == 404
    assert client.get("/api/devices", headers=users.headers(admin)).json() == []


# --- update ---------------------------------------------------------------------------------


def test_update_is_partial(client, auth):
    device_id = _register(client, auth, name="Old", platform="android", hostname="phone").json()["device_id"]
    r = client.put(f"/api/devices/{device_id}", json={"name": "New", "sync_enabled": False}, headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "New" and body["sync_enabled"] is False
    assert body["platform"] == "android" and body["hostname"] == "phone"  # not sent: unchanged
    assert set(body) == ALL_DEVICE_FIELDS
    r = client.put(f"/api/devices/{device_id}", json={"sync_mode": "push_pull", "hostname": None}, headers=auth)
    assert r.json()["sync_mode"] == "push_pull" and r.json()["hostname"] is None
    assert r.json()["name"] == "New" and r.json()["sync_enabled"] is False
    r = client.put(f"/api/devices/{device_id}", json={}, headers=auth)
    assert r.status_code == 200 and r.json()["sync_mode"] == "push_pull"


def test_update_null_for_required_fields_changes_nothing(client, auth):
    device_id = _register(client, auth).json()["device_id"]
    r = client.put(f"/api/devices/{device_id}", json={"sync_mode": None, "sync_enabled": None}, headers=auth)
    assert r.status_code == 200
    assert r.json()["sync_mode"] == "api" and r.json()["sync_enabled"] is True


@pytest.mark.parametrize("body", [{"sync_mode": "ftp"}, {"sync_enabled": "sometimes"}, {"ip_address": "1" * 46}])
def test_update_bad_input_is_422(client, auth, body):
    device_id = _register(client, auth).json()["device_id"]
    assert client.put(f"/api/devices/{device_id}", json=body, headers=auth).status_code == 422


def test_update_foreign_device_is_404_and_unchanged(client, users, auth):
    bob = users.viewer("bob")
    bob_auth = users.headers(bob)
    b1 = client.post("/api/devices", json={"name": "b1"}, headers=bob_auth).json()["device_id"]
    r = client.put(f"/api/devices/{b1}", json={"name": "mine now"}, headers=auth)
    assert r.status_code == 404
    assert r.json() == {"detail": f"Device with ID {b1} not found"}
    assert client.get(f"/api/devices/{b1}", headers=bob_auth).json()["name"] == "b1"


def test_ssh_secrets_are_masked_and_a_sent_back_mask_keeps_them(client, ctx, auth):
    secret_config = {"ssh_host": "h", "ssh_port": 22, "ssh_password": "s3cret", "ssh_key_path": "/id_ed25519"}
    device_id = _register(client, auth, sync_config=secret_config).json()["device_id"]
    shown = client.get(f"/api/devices/{device_id}", headers=auth).json()["sync_config"]
    assert shown == {"ssh_host": "h", "ssh_port": 22, "ssh_password": "********", "ssh_key_path": "********"}
    listed = client.get("/api/devices", headers=auth).json()[0]["sync_config"]
    assert listed == shown
    # The client edits one field and sends back what it was shown.
    r = client.put(f"/api/devices/{device_id}", json={"sync_config": {**shown, "ssh_host": "h2"}}, headers=auth)
    assert r.status_code == 200
    assert r.json()["sync_config"]["ssh_password"] == "********"
    with ctx.db.read() as s:
        stored = s.get(Device, device_id).sync_config
    assert stored == {**secret_config, "ssh_host": "h2"}
    # A new secret replaces the old one; leaving a key out removes it.
    client.put(
        f"/api/devices/{device_id}", json={"sync_config": {"ssh_host": "h2", "ssh_password": "new"}}, headers=auth
    )
    with ctx.db.read() as s:
        assert s.get(Device, device_id).sync_config == {"ssh_host": "h2", "ssh_password": "new"}
    # A mask for a secret that was never stored is not stored as the secret.
    client.put(f"/api/devices/{device_id}", json={"sync_config": {"ssh_key_path": "********"}}, headers=auth)
    with ctx.db.read() as s:
        assert s.get(Device, device_id).sync_config == {}
    client.put(f"/api/devices/{device_id}", json={"sync_config": None}, headers=auth)
    with ctx.db.read() as s:
        assert s.get(Device, device_id).sync_config is None


def test_masking_never_changes_other_values(client, auth):
    config = {"path": "/saves", "nested": {"ssh_password": "kept: only top-level keys are secrets"}}
    device_id = _register(client, auth, sync_config=config).json()["device_id"]
    assert client.get(f"/api/devices/{device_id}", headers=auth).json()["sync_config"] == config


# --- delete ---------------------------------------------------------------------------------


def test_delete_returns_204_and_device_is_gone(client, auth):
    device_id = _register(client, auth, name="gone").json()["device_id"]
    r = client.delete(f"/api/devices/{device_id}", headers=auth)
    assert r.status_code == 204
    assert r.content == b""
    assert client.get(f"/api/devices/{device_id}", headers=auth).status_code == 404
    r = client.delete(f"/api/devices/{device_id}", headers=auth)
    assert r.status_code == 404
    assert r.json() == {"detail": f"Device with ID {device_id} not found"}


def test_delete_foreign_device_is_404_and_it_survives(client, users, auth):
    bob = users.viewer("bob")
    bob_auth = users.headers(bob)
    b1 = client.post("/api/devices", json={}, headers=bob_auth).json()["device_id"]
    assert client.delete(f"/api/devices/{b1}", headers=auth).status_code == 404
    assert client.get(f"/api/devices/{b1}", headers=bob_auth).status_code == 200


def test_delete_cascades_in_the_database(client, ctx, users, auth, alice):
    """Sync rows go; saves stay with origin_device_id NULL; bound client tokens stay, unbound.
    Runs on every engine the suite is run on (SQLite enforces foreign keys: PRAGMA on connect)."""
    device_id = _register(client, auth, name="doomed").json()["device_id"]
    keep_id = _register(client, auth, name="kept").json()["device_id"]
    save_id = _add_sync(ctx, alice.id, device_id)
    kept_save = _add_sync(ctx, alice.id, keep_id)
    with ctx.db.session() as s:
        from romshelf.accounts import service as accounts
        from romshelf.accounts.models import User

        user = s.get(User, alice.id)
        token, raw = accounts.create_client_token(
            s, ctx.settings, user, name="bound", scopes=["me.read"], expires_in=None, device_id=device_id
        )
        token_id = token.id
    r = client.delete(f"/api/devices/{device_id}", headers=auth)
    assert r.status_code == 204
    assert count(ctx, DeviceSaveSync, DeviceSaveSync.device_id == device_id) == 0
    assert count(ctx, DeviceSaveSync, DeviceSaveSync.device_id == keep_id) == 1
    with ctx.db.read() as s:
        save = s.get(Save, save_id)
        assert save is not None and save.origin_device_id is None
        assert s.get(Save, kept_save).origin_device_id == keep_id
        token = s.get(ClientToken, token_id)
        assert token is not None and token.device_id is None
    # The unbound token still authenticates, now without a device.
    me = client.get("/api/users/me", headers={"Authorization": f"Bearer {raw}"})
    assert me.status_code == 200 and me.json()["current_device_id"] is None


def test_deleting_the_user_deletes_their_devices(client, ctx, users):
    admin = users.admin()
    bob = users.viewer("bob")
    client.post("/api/devices", json={}, headers=users.headers(bob))
    assert count(ctx, Device) == 1
    assert client.delete(f"/api/users/{bob.id}", headers=users.headers(admin)).status_code == 200
    assert count(ctx, Device) == 0


# --- auth and scopes ------------------------------------------------------------------------


ROUTES = [
    ("post", "/api/devices", "devices.write"),
    ("get", "/api/devices", "devices.read"),
    ("get", "/api/devices/x", "devices.read"),
    ("put", "/api/devices/x", "devices.write"),
    ("delete", "/api/devices/x", "devices.write"),
]


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES)
def test_no_credentials_is_401(client, method, path, scope):
    kwargs = {"json": {}} if method in ("post", "put") else {}
    r = client.request(method.upper(), path, **kwargs)
    assert r.status_code == 401
    assert r.json() == {"detail": "Not authenticated"}
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES)
def test_missing_scope_is_403(client, users, alice, method, path, scope):
    others = ["me.read", "assets.read", "assets.write", "devices.read", "devices.write"]
    headers = users.headers(alice, [s for s in others if s != scope])
    kwargs = {"json": {}} if method in ("post", "put") else {}
    r = client.request(method.upper(), path, headers=headers, **kwargs)
    assert r.status_code == 403
    assert r.json() == {"detail": "Forbidden"}


def test_read_scope_alone_reads_but_cannot_write(client, users, alice, auth):
    device_id = _register(client, auth).json()["device_id"]
    read_only = users.headers(alice, ["devices.read"])
    assert client.get("/api/devices", headers=read_only).status_code == 200
    assert client.get(f"/api/devices/{device_id}", headers=read_only).status_code == 200
    assert client.put(f"/api/devices/{device_id}", json={"name": "x"}, headers=read_only).status_code == 403
    assert client.delete(f"/api/devices/{device_id}", headers=read_only).status_code == 403


def test_trailing_slash_and_basic_auth(client, users, alice):
    r = client.post("/api/devices/", json={"name": "slash"}, headers=users.basic(alice))
    assert r.status_code == 201
    assert len(client.get("/api/devices/", headers=users.basic(alice)).json()) == 1


def test_concurrent_registrations_of_one_device_make_one_row(client, ctx, auth):
    import concurrent.futures

    def register(_i):
        return client.post("/api/devices", json={"mac_address": "AA:BB:CC:00:00:01"}, headers=auth)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(register, range(4)))
    assert sorted(r.status_code for r in results) == [200, 200, 200, 201]
    assert len({r.json()["device_id"] for r in results}) == 1
    assert count(ctx, Device) == 1
