"""Device sync records, 409 conflicts, track/untrack/downloaded, scopes (notes §2, §7 1-16, 22-23)."""

from __future__ import annotations

import datetime as dt

import pytest
from saves_helpers import device_last_seen, get_save, parse, set_sync, set_updated, sync_row

HOUR = dt.timedelta(hours=1)


# --- device_syncs in responses ---------------------------------------------------------------------
def test_list_without_device_has_no_syncs(env):
    dev = env.device()
    env.upload(device_id=dev)
    assert env.client.get("/api/saves", headers=env.a).json()[0]["device_syncs"] == []


def test_synthetic_entry_then_current(env):
    dev = env.device(name="Phone")
    save = env.upload().json()
    r = env.client.get("/api/saves", params={"device_id": dev}, headers=env.a).json()
    (entry,) = r[0]["device_syncs"]
    assert entry == {
        "device_id": dev,
        "device_name": "Phone",
        "last_synced_at": save["updated_at"],
        "is_untracked": False,
        "is_current": False,
    }
    set_sync(env.ctx, dev, save["id"], dt.datetime.now(dt.UTC))
    r = env.client.get(f"/api/saves/{save['id']}", params={"device_id": dev}, headers=env.a).json()
    assert r["device_syncs"][0]["is_current"] is True


def test_several_devices_caller_first(env):
    creator, caller, other = env.device(name="creator"), env.device(name="caller"), env.device(name="other")
    save = env.upload(device_id=creator).json()
    updated = parse(save["updated_at"])
    set_sync(env.ctx, caller, save["id"], updated - dt.timedelta(days=1))
    set_sync(env.ctx, other, save["id"], updated, untracked=True)
    r = env.client.get(f"/api/saves/{save['id']}", params={"device_id": caller}, headers=env.a).json()
    syncs = r["device_syncs"]
    assert syncs[0]["device_id"] == caller
    by = {s["device_id"]: s for s in syncs}
    assert set(by) == {creator, caller, other}
    assert by[creator]["is_current"] is True and by[creator]["device_name"] == "creator"
    assert by[caller]["is_current"] is False
    assert by[other]["is_untracked"] is True and by[creator]["is_untracked"] is False


@pytest.mark.parametrize("where", ["list", "get", "upload", "content"])
def test_unknown_or_foreign_device_is_404(env, where):
    save = env.upload().json()
    foreign = env.device(env.bob)
    for dev in ("no-such-device", foreign):
        if where == "list":
            r = env.client.get("/api/saves", params={"device_id": dev}, headers=env.a)
        elif where == "get":
            r = env.client.get(f"/api/saves/{save['id']}", params={"device_id": dev}, headers=env.a)
        elif where == "upload":
            r = env.upload(device_id=dev)
        else:
            r = env.client.get(f"/api/saves/{save['id']}/content", params={"device_id": dev}, headers=env.a)
        assert r.status_code == 404 and r.json()["detail"] == f"Device with ID {dev} not found"


def test_device_id_needs_the_devices_scope(env):
    dev = env.device()
    save = env.upload().json()
    h = env.users.headers(env.alice, scopes=["assets.read", "assets.write"])
    assert env.client.get("/api/saves", params={"device_id": dev}, headers=h).status_code == 403
    assert env.client.get(f"/api/saves/{save['id']}", params={"device_id": dev}, headers=h).status_code == 403
    assert env.upload(device_id=dev, headers=h).status_code == 403
    assert env.client.get(f"/api/saves/{save['id']}/content", params={"device_id": dev}, headers=h).status_code == 403
    for action in ("track", "untrack", "downloaded"):
        r = env.client.post(f"/api/saves/{save['id']}/{action}", json={"device_id": dev}, headers=h)
        assert r.status_code == 403 and r.json() == {"detail": "Forbidden"}
    # devices.read is not enough to upload with a device
    h2 = env.users.headers(env.alice, scopes=["assets.read", "assets.write", "devices.read"])
    assert env.upload(device_id=dev, headers=h2).status_code == 403
    assert env.client.get("/api/saves", params={"device_id": dev}, headers=h2).status_code == 200
    # no assets scope at all
    h3 = env.users.headers(env.alice, scopes=["devices.read"])
    assert env.client.get("/api/saves", headers=h3).status_code == 403
    assert env.client.get("/api/saves").status_code == 401


# --- track / untrack -------------------------------------------------------------------------------
def test_track_untrack_state_machine(env):
    dev = env.device()
    save = env.upload().json()
    r = env.client.post(f"/api/saves/{save['id']}/track", json={"device_id": dev}, headers=env.a)
    assert r.status_code == 200
    assert r.json()["device_syncs"][0]["is_untracked"] is False
    assert sync_row(env.ctx, dev, save["id"]) is None  # tracking a never-synced save creates nothing
    r = env.client.post(f"/api/saves/{save['id']}/untrack", json={"device_id": dev}, headers=env.a)
    assert r.json()["device_syncs"][0]["is_untracked"] is True
    assert sync_row(env.ctx, dev, save["id"]).is_untracked is True
    r = env.client.post(f"/api/saves/{save['id']}/track", json={"device_id": dev}, headers=env.a)
    assert r.json()["device_syncs"][0]["is_untracked"] is False
    # untrack again, then an upload re-tracks
    env.client.post(f"/api/saves/{save['id']}/untrack", json={"device_id": dev}, headers=env.a)
    env.client.post(f"/api/saves/{save['id']}/downloaded", json={"device_id": dev}, headers=env.a)
    assert sync_row(env.ctx, dev, save["id"]).is_untracked is False


def test_track_404s(env):
    dev = env.device()
    save = env.upload().json()
    for action in ("track", "untrack", "downloaded"):
        r = env.client.post(f"/api/saves/999/{action}", json={"device_id": dev}, headers=env.a)
        assert r.status_code == 404 and r.json()["detail"] == "Save with ID 999 not found"
        r = env.client.post(f"/api/saves/{save['id']}/{action}", json={"device_id": "nope"}, headers=env.a)
        assert r.status_code == 404 and r.json()["detail"] == "Device with ID nope not found"
        # someone else's save
        r = env.client.post(f"/api/saves/{save['id']}/{action}", json={"device_id": dev}, headers=env.b)
        assert r.status_code == 404
        r = env.client.post(f"/api/saves/{save['id']}/{action}", json={}, headers=env.a)
        assert r.status_code == 422


def test_downloaded(env):
    dev = env.device()
    save = env.upload().json()
    assert device_last_seen(env.ctx, dev) is None
    r = env.client.post(f"/api/saves/{save['id']}/downloaded", json={"device_id": dev}, headers=env.a)
    assert r.status_code == 200
    row = sync_row(env.ctx, dev, save["id"])
    assert row.last_synced_at == parse(save["updated_at"])
    assert r.json()["device_syncs"][0]["is_current"] is True
    assert device_last_seen(env.ctx, dev) is not None
    # again after an older sync: updated to the save's updated_at
    set_sync(env.ctx, dev, save["id"], parse(save["updated_at"]) - HOUR)
    env.client.post(f"/api/saves/{save['id']}/downloaded", json={"device_id": dev}, headers=env.a)
    assert sync_row(env.ctx, dev, save["id"]).last_synced_at == parse(save["updated_at"])


# --- 409 conflicts ---------------------------------------------------------------------------------
def test_slotless_conflicts(env):
    a, b = env.device(name="A"), env.device(name="B")
    first = env.upload(b"v1", device_id=a)  # first upload from a device, no sync row: fine
    assert first.status_code == 200
    save = first.json()
    assert env.upload(b"v2", device_id=a).status_code == 200  # sync == updated_at: fine
    save = get_save(env.ctx, save["id"])
    set_sync(env.ctx, b, save.id, save.updated_at - 2 * HOUR)  # B is 2 h behind
    r = env.upload(b"v3", device_id=b)
    assert r.status_code == 409 and "since your last sync" in r.json()["detail"]
    assert env.ctx.storages.assets.open(save.full_path).read() == b"v2"  # nothing written
    assert env.upload(b"v3", device_id=b, overwrite="true").status_code == 200
    assert env.upload(b"v4").status_code == 200  # without a device never a 409
    # the web UI updated it after A's sync: A is behind now
    r = env.upload(b"v5", device_id=a)
    assert r.status_code == 409


def test_slot_conflicts(env):
    a, b = env.device(name="A"), env.device(name="B")
    assert env.upload(b"s1", slot="main", device_id=a).status_code == 200  # empty slot
    r = env.upload(b"s2", slot="main", device_id=b)  # B never synced the newest save of the slot
    assert r.status_code == 409 and "newer save since your last sync" in r.json()["detail"]
    latest = env.client.get("/api/saves", params={"slot": "main"}, headers=env.a).json()[-1]
    set_sync(env.ctx, b, latest["id"], parse(latest["updated_at"]) - HOUR)
    assert env.upload(b"s2", slot="main", device_id=b).status_code == 409
    set_sync(env.ctx, b, latest["id"], parse(latest["updated_at"]))  # equal: no conflict
    r = env.upload(b"s2", slot="main", device_id=b)
    assert r.status_code == 200
    # A is now behind B's save; overwrite bypasses
    assert env.upload(b"s3", slot="main", device_id=a).status_code == 409
    assert env.upload(b"s3", slot="main", device_id=a, overwrite=True).status_code == 200
    # another slot is independent
    assert env.upload(b"s4", slot="other", device_id=b).status_code == 200


def test_untracked_flag_does_not_bypass_the_slot_check(env):
    a, b = env.device(), env.device()
    save = env.upload(b"s1", slot="main", device_id=a).json()
    set_sync(env.ctx, b, save["id"], parse(save["updated_at"]) - HOUR, untracked=True)
    assert env.upload(b"s2", slot="main", device_id=b).status_code == 409


def test_conflict_on_an_updated_row(env):
    a = env.device()
    save = env.upload(b"v1", device_id=a).json()
    set_updated(env.ctx, save["id"], parse(save["updated_at"]) + HOUR)  # changed elsewhere
    assert env.upload(b"v2", device_id=a).status_code == 409


def test_put_from_a_device_that_is_behind_is_409(env):
    a, b = env.device(), env.device()
    save = env.upload(b"v1", device_id=a).json()
    put = {"saveFile": ("x.sav", b"v2")}
    assert (
        env.client.put(f"/api/saves/{save['id']}", params={"device_id": a}, files=put, headers=env.a).status_code == 200
    )
    # B synced the version before A's PUT: 409
    set_sync(env.ctx, b, save["id"], parse(save["updated_at"]))
    r = env.client.put(f"/api/saves/{save['id']}", params={"device_id": b}, files=put, headers=env.a)
    assert r.status_code == 409 and "since your last sync" in r.json()["detail"]
    assert env.ctx.storages.assets.open(save["full_path"]).read() == b"v2"
    r = env.client.put(f"/api/saves/{save['id']}", params={"device_id": b, "overwrite": True}, files=put, headers=env.a)
    assert r.status_code == 200
    # a screenshot alone never conflicts
    shot = {"screenshotFile": ("s.png", b"png")}
    assert (
        env.client.put(f"/api/saves/{save['id']}", params={"device_id": a}, files=shot, headers=env.a).status_code
        == 200
    )
