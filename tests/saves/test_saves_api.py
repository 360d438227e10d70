"""POST/GET/PUT/DELETE of /api/saves: RomM's parameters, fields and status codes (notes §1, §7)."""

from __future__ import annotations

import hashlib
import re

import sqlalchemy as sa
from factories import count
from saves_helpers import get_save, hide_rom

from romshelf.saves.models import Save, Screenshot

TAG = re.compile(r" \[\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}\]")


def test_upload_without_device(env):
    r = env.upload(b"\x01\x02\x03", "test.sav", emulator="mgba")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["device_syncs"] == [] and body["origin_device_id"] is None
    assert body["file_name"] == "test.sav" and body["emulator"] == "mgba" and body["slot"] is None
    assert body["content_hash"] == hashlib.md5(b"\x01\x02\x03").hexdigest()
    assert body["file_size_bytes"] == 3
    hexname = f"User:{env.alice.id}".encode().hex()  # RomM's per-user folder
    assert body["file_path"] == f"users/{hexname}/saves/gba/{env.rom.id}/mgba"
    assert body["full_path"] == body["file_path"] + "/test.sav"
    assert body["download_path"].startswith(f"/api/saves/{body['id']}/content?timestamp=")
    assert env.files() == [body["full_path"]]
    assert env.ctx.storages.assets.open(body["full_path"]).read() == b"\x01\x02\x03"
    # nothing left in staging
    assert list(env.ctx.storages.assets.list(".incoming")) == []


def test_upload_with_device(env):
    dev = env.device(name="Deck")
    r = env.upload(device_id=dev)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["origin_device_id"] == dev
    assert len(body["device_syncs"]) == 1
    sync = body["device_syncs"][0]
    assert sync["device_id"] == dev and sync["device_name"] == "Deck" and sync["is_current"] is True
    assert sync["last_synced_at"] == body["updated_at"]


def test_origin_device_unchanged_on_update(env):
    d1, d2 = env.device(name="one"), env.device(name="two")
    first = env.upload(b"a", device_id=d1).json()
    second = env.upload(b"b", device_id=d2).json()
    assert second["id"] == first["id"] and second["origin_device_id"] == d1
    third = env.upload(b"c").json()
    assert third["id"] == first["id"] and third["origin_device_id"] == d1


def test_reupload_with_other_emulator_moves_the_file(env):
    first = env.upload(b"one", emulator="emu1").json()
    second = env.upload(b"two!", emulator="emu2").json()
    assert second["id"] == first["id"]
    assert second["emulator"] == "emu2" and second["file_path"].endswith("/emu2")
    assert second["file_size_bytes"] == 4 and second["content_hash"] == hashlib.md5(b"two!").hexdigest()
    assert env.files() == [second["full_path"]]


def test_datetime_tag(env):
    plain = env.upload(b"x", "test.sav").json()
    assert plain["file_name"] == "test.sav"
    slotted = env.upload(b"y", "test.sav", slot="main").json()
    assert TAG.search(slotted["file_name"]) and slotted["file_name"].endswith(".sav")
    retag = env.upload(b"z", "test [2020-01-01_00-00-00].sav", slot="main").json()
    assert len(TAG.findall(retag["file_name"])) == 1 and "2020-01-01" not in retag["file_name"]
    assert retag["file_name_no_tags"] == "test"


def test_list_filters_and_ownership(env):
    rom2 = env.rom2()
    a1 = env.upload(b"1", "a.sav", slot="Slot 1").json()
    a2 = env.upload(b"2", "b.sav", slot="Slot 2").json()
    a3 = env.upload(b"3", "c.sav", rom_id=rom2.id).json()
    env.upload(b"4", "bob.sav", headers=env.b)
    ids = [x["id"] for x in env.client.get("/api/saves", headers=env.a).json()]
    assert ids == [a1["id"], a2["id"], a3["id"]]
    r = env.client.get("/api/saves", params={"rom_id": env.rom.id, "slot": "Slot 1"}, headers=env.a).json()
    assert [x["id"] for x in r] == [a1["id"]]
    assert env.client.get("/api/saves", params={"slot": "nope"}, headers=env.a).json() == []
    r = env.client.get("/api/saves", params={"rom_id": rom2.id}, headers=env.a).json()
    assert [x["id"] for x in r] == [a3["id"]]
    r = env.client.get("/api/saves", params={"rom_id": 0}, headers=env.a).json()
    assert len(r) == 3
    r = env.client.get("/api/saves", params={"platform_id": env.rom.platform_id}, headers=env.a).json()
    assert len(r) == 3
    assert env.client.get("/api/saves/identifiers", headers=env.a).json() == [a1["id"], a2["id"], a3["id"]]
    assert len(env.client.get("/api/saves/", headers=env.b).json()) == 1  # trailing slash too


def test_summary(env):
    ids = {}
    for i, slot in enumerate([None, None, None, "Slot A", "Slot A", "Slot B"]):
        ids[i] = env.upload(f"data {i}".encode(), f"s{i}.sav", slot=slot).json()["id"]
    r = env.client.get("/api/saves/summary", params={"rom_id": env.rom.id}, headers=env.a)
    assert r.status_code == 200
    body = r.json()
    assert body["total_count"] == 6
    slots = {g["slot"]: g for g in body["slots"]}
    assert set(slots) == {None, "Slot A", "Slot B"}
    assert slots["Slot A"]["count"] == 2 and slots["Slot A"]["latest"]["id"] == ids[4]
    assert slots[None]["count"] == 3 and slots[None]["latest"]["id"] == ids[2]
    assert [g["slot"] for g in body["slots"]] == ["Slot B", "Slot A", None]  # newest group first
    assert slots["Slot B"]["latest"]["device_syncs"] == []
    r = env.client.get("/api/saves/summary", headers=env.a)
    assert r.status_code == 422 and "rom_id" in str(r.json()["detail"])
    assert env.client.get("/api/saves/summary", params={"rom_id": 9999}, headers=env.a).json() == {
        "total_count": 0,
        "slots": [],
    }
    assert env.client.get("/api/saves/summary", params={"rom_id": env.rom.id}).status_code == 401


def test_get_one_is_owner_only(env):
    save = env.upload().json()
    assert env.client.get(f"/api/saves/{save['id']}", headers=env.a).json()["id"] == save["id"]
    env.client.put(f"/api/saves/{save['id']}/visibility", json={"is_public": True}, headers=env.a)
    r = env.client.get(f"/api/saves/{save['id']}", headers=env.b)
    assert r.status_code == 404 and r.json()["detail"] == f"Save with ID {save['id']} not found"
    assert env.client.get("/api/saves/999", headers=env.a).status_code == 404


def test_put_replaces_content_in_place(env):
    dev = env.device()
    save = env.upload(b"old", "game.srm", slot="main").json()
    r = env.client.put(
        f"/api/saves/{save['id']}",
        params={"device_id": dev},
        files={"saveFile": ("whatever.srm", b"new content", "application/octet-stream")},
        headers=env.a,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == save["id"] and body["file_name"] == save["file_name"]
    assert body["file_size_bytes"] == 11 and body["content_hash"] == hashlib.md5(b"new content").hexdigest()
    assert body["updated_at"] > save["updated_at"]
    assert body["device_syncs"][0]["device_id"] == dev and body["device_syncs"][0]["is_current"]
    assert env.ctx.storages.assets.open(body["full_path"]).read() == b"new content"
    # a screenshot only: the save's updated_at stays
    r = env.client.put(
        f"/api/saves/{save['id']}", files={"screenshotFile": ("s.png", b"png", "image/png")}, headers=env.a
    )
    assert r.status_code == 200
    assert r.json()["screenshot"] is not None and r.json()["updated_at"] == body["updated_at"]
    assert env.client.put(f"/api/saves/{save['id']}", files={"saveFile": ("x", b"x")}, headers=env.b).status_code == 404


def test_visibility_mirrors_onto_the_screenshot(env):
    save = env.upload(b"x", "test_save.sav", screenshot=("test_save.png", b"png")).json()
    assert save["screenshot"]["file_name"] == "test_save.png" and save["screenshot"]["is_public"] is False
    r = env.client.put(f"/api/saves/{save['id']}/visibility", json={"is_public": True}, headers=env.a)
    assert r.status_code == 200 and r.json()["is_public"] is True and r.json()["screenshot"]["is_public"] is True
    assert r.json()["device_syncs"] == []
    r = env.client.put(f"/api/saves/{save['id']}/visibility", json={"is_public": False}, headers=env.a)
    assert r.json()["is_public"] is False and r.json()["screenshot"]["is_public"] is False
    assert (
        env.client.put(f"/api/saves/{save['id']}/visibility", json={"is_public": True}, headers=env.b).status_code
        == 404
    )
    assert env.client.put(f"/api/saves/{save['id']}/visibility", json={}, headers=env.a).status_code == 422


def test_delete(env):
    s1 = env.upload(b"1", "one.sav", screenshot=("one.png", b"png")).json()
    s2 = env.upload(b"2", "two.sav").json()
    bob = env.upload(b"3", "bob.sav", headers=env.b).json()
    r = env.client.post("/api/saves/delete", json={"saves": []}, headers=env.a)
    assert r.status_code == 400 and r.json()["detail"] == "No saves were provided"
    # a foreign id: 404, and nothing at all is deleted
    r = env.client.post("/api/saves/delete", json={"saves": [s1["id"], bob["id"]]}, headers=env.a)
    assert r.status_code == 404 and r.json()["detail"] == f"Save with ID {bob['id']} not found"
    assert get_save(env.ctx, s1["id"]) is not None
    r = env.client.post("/api/saves/delete", json={"saves": [s1["id"], s2["id"]]}, headers=env.a)
    assert r.status_code == 200 and r.json() == [s1["id"], s2["id"]]
    assert count(env.ctx, Save, Save.user_id == env.alice.id) == 0
    assert count(env.ctx, Screenshot) == 0
    assert env.files() == [bob["full_path"]]


def test_delete_tolerates_a_missing_file(env):
    s1 = env.upload().json()
    env.ctx.storages.assets.delete(s1["full_path"])
    assert env.client.post("/api/saves/delete", json={"saves": [s1["id"]]}, headers=env.a).status_code == 200


def test_upload_onto_hidden_rom_is_allowed_like_romm(env):
    hide_rom(env.ctx, env.alice.id, env.rom.id)
    assert env.upload().status_code == 200


def test_rom_detail_and_has_saves_filter(env):
    rom2 = env.rom2()
    mine = env.upload(b"mine", "mine.sav").json()
    bob_public = env.upload(b"bob", "bob.sav", headers=env.b).json()
    env.client.put(f"/api/saves/{bob_public['id']}/visibility", json={"is_public": True}, headers=env.b)
    env.upload(b"bob2", "private.sav", headers=env.b)
    env.upload_state(b"st", "x.state")
    detail = env.client.get(f"/api/roms/{env.rom.id}", headers=env.a).json()
    assert [x["id"] for x in detail["user_saves"]] == [mine["id"]]
    assert sorted(x["id"] for x in detail["all_user_saves"]) == sorted([mine["id"], bob_public["id"]])
    assert [x["file_name"] for x in detail["user_states"]] == ["x.state"]
    r = env.client.get("/api/roms", params={"has_saves": True}, headers=env.a).json()
    assert [x["id"] for x in r["items"]] == [env.rom.id]
    r = env.client.get("/api/roms", params={"has_saves": False}, headers=env.a).json()
    assert [x["id"] for x in r["items"]] == [rom2.id]
    r = env.client.get("/api/roms", params={"has_states": True}, headers=env.a).json()
    assert [x["id"] for x in r["items"]] == [env.rom.id]
    r = env.client.get("/api/roms", params={"has_states": True}, headers=env.b).json()
    assert r["items"] == []


def test_last_played_is_set(env):
    from romshelf.roms.models import RomUser

    env.upload()
    with env.ctx.db.read() as s:
        ru = s.scalar(sa.select(RomUser).where(RomUser.rom_id == env.rom.id, RomUser.user_id == env.alice.id))
        assert ru is not None and ru.last_played is not None


def test_slotless_upload_over_named_slot_file_refreshes_that_row(env):
    slotted = env.upload(b"one", "game.srm", slot="main").json()
    again = env.upload(b"two", slotted["file_name"]).json()
    assert again["id"] == slotted["id"] and again["slot"] == "main"
    assert again["content_hash"] != slotted["content_hash"]
    assert env.ctx.storages.assets.open(slotted["full_path"]).read() == b"two"
    assert env.files() == [slotted["full_path"]]
