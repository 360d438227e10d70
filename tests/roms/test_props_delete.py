"""PUT /api/roms/{id}/props and POST /api/roms/delete."""

from __future__ import annotations

import sqlalchemy as sa
from factories import count

from romshelf.collections.models import Collection, CollectionRom
from romshelf.roms.models import Rom, RomFacet, RomFile, RomUser
from romshelf.roms.schemas import RomUserSchema
from romshelf.saves.models import Save


def props(client, auth, rom_id, body=None, **params):
    return client.put(f"/api/roms/{rom_id}/props", json=body or {}, params=params, headers=auth)


def test_props_partial_updates(client, auth, lib, admin):
    rom = lib.rom("Game.gb")
    r = props(client, auth, rom.id, {"backlogged": True, "rating": 7})
    assert r.status_code == 200, r.text
    body = r.json()
    RomUserSchema.model_validate(body)
    assert body["backlogged"] is True and body["rating"] == 7
    assert body["rom_id"] == rom.id and body["user_id"] == admin.id and body["id"] > 0
    body = props(client, auth, rom.id, {"status": "finished", "completion": 100, "difficulty": 3}).json()
    assert (body["backlogged"], body["rating"], body["status"], body["completion"]) == (True, 7, "finished", 100)
    body = props(client, auth, rom.id, {"status": None}).json()
    assert body["status"] is None and body["rating"] == 7
    # RomM 4.x clients wrapped the fields in "data"
    assert props(client, auth, rom.id, {"data": {"now_playing": True}}).json()["now_playing"] is True
    detail = client.get(f"/api/roms/{rom.id}", headers=auth).json()
    assert detail["rom_user"]["rating"] == 7 and detail["rom_user"]["now_playing"] is True


def test_last_played(client, auth, lib):
    rom = lib.rom("Game.gb")
    body = props(client, auth, rom.id, update_last_played="true").json()
    assert body["last_played"] is not None and body["last_played"].endswith("+00:00")
    assert props(client, auth, rom.id, remove_last_played="true").json()["last_played"] is None
    r = props(client, auth, rom.id, update_last_played="true", remove_last_played="true")
    assert r.status_code == 400
    assert r.json() == {"detail": "update_last_played and remove_last_played are mutually exclusive."}


def test_props_validation(client, auth, lib):
    rom = lib.rom("Game.gb")
    for bad in ({"rating": 11}, {"rating": -1}, {"completion": 101}, {"status": "bored"}, {"unknown": 1}):
        r = props(client, auth, rom.id, bad)
        assert r.status_code == 422, bad
        assert r.json()["detail"][0]["loc"][0] == "body"
    assert props(client, auth, 99999, {"rating": 1}).status_code == 404
    r = client.put(
        f"/api/roms/{rom.id}/props", content=b"not json", headers={**auth, "content-type": "application/json"}
    )
    assert r.status_code == 422


def test_props_scope(client, users, lib):
    rom = lib.rom("Game.gb")
    viewer = users.viewer()
    assert props(client, users.headers(viewer), rom.id, {"rating": 5}).status_code == 200
    read_only = users.headers(viewer, scopes=["roms.read"])
    assert props(client, read_only, rom.id, {"rating": 5}).status_code == 403
    assert client.put(f"/api/roms/{rom.id}/props", json={"rating": 5}).status_code == 401


def test_main_sibling_is_exclusive(client, auth, lib, admin, ctx):
    a = lib.rom("Game (USA).gb", igdb_id=3)
    b = lib.rom("Game (Europe).gb", igdb_id=3)
    props(client, auth, a.id, {"is_main_sibling": True})
    props(client, auth, b.id, {"is_main_sibling": True})
    with ctx.db.read() as s:
        stmt = sa.select(RomUser.rom_id, RomUser.is_main_sibling).where(RomUser.user_id == admin.id)
        rows = {rid: main for rid, main in s.execute(stmt)}
    assert rows == {a.id: False, b.id: True}
    items = {i["id"]: i for i in client.get("/api/roms", headers=auth).json()["items"]}
    assert items[a.id]["sibling_roms"][0]["is_main_sibling"] is True


def test_hiding_drops_the_rom_from_lists(client, auth, lib, get_list):
    a = lib.rom("A.gb")
    b = lib.rom("B.gb")
    assert get_list()["rom_id_index"] == [a.id, b.id]
    props(client, auth, a.id, {"hidden": True})
    assert get_list()["rom_id_index"] == [b.id]
    assert get_list(statuses="hidden")["rom_id_index"] == [a.id]
    props(client, auth, a.id, {"hidden": False})
    assert get_list()["rom_id_index"] == [a.id, b.id]


def delete(client, auth, roms, from_fs=None):
    body = {"roms": roms}
    if from_fs is not None:
        body["delete_from_fs"] = from_fs
    return client.post("/api/roms/delete", json=body, headers=auth)


def test_delete_database_only(client, auth, lib, ctx, admin, add):
    rom = lib.rom("Game (USA).gb")
    add(RomUser(rom_id=rom.id, user_id=admin.id, rating=3))
    coll = add(Collection(user_id=admin.id, name="C"))
    add(CollectionRom(collection_id=coll.id, rom_id=rom.id))
    add(Save(rom_id=rom.id, user_id=admin.id, file_name="s.srm", file_path="x"))
    r = delete(client, auth, [rom.id])
    assert r.status_code == 200
    assert r.json() == {"successful_items": 1, "failed_items": 0, "failed_ids": [], "errors": []}
    assert ctx.storages.library.exists("roms/gb/Game (USA).gb")  # not asked to touch the disk
    for model in (Rom, RomFile, RomUser, CollectionRom, RomFacet, Save):
        assert count(ctx, model) == 0, model
    assert client.get(f"/api/roms/{rom.id}", headers=auth).status_code == 404
    assert client.get("/api/roms", headers=auth).json()["total"] == 0


def test_delete_from_disk(client, auth, lib, ctx):
    flat = lib.rom("Flat.gb", platform="gba")
    folder = lib.rom("Folder", platform="gb", files={"a.bin": b"a", "sub/b.bin": b"b"})
    keep = lib.rom("Keep.gb", platform="gb")
    ctx.storages.resources.write(f"roms/{flat.platform_id}/{flat.id}/cover/big.png", b"img")
    r = delete(client, auth, [flat.id, folder.id], from_fs=[flat.id, folder.id])
    assert r.json()["successful_items"] == 2 and r.json()["errors"] == []
    lib_store = ctx.storages.library
    assert not lib_store.exists("roms/gba/Flat.gb")
    assert not lib_store.exists("roms/gba")  # the emptied platform folder goes too (as RomM)
    assert lib_store.exists("roms")
    assert not lib_store.exists("roms/gb/Folder")
    assert lib_store.exists("roms/gb/Keep.gb")
    assert not ctx.storages.resources.exists(f"roms/{flat.platform_id}/{flat.id}")
    assert [i["id"] for i in client.get("/api/roms", headers=auth).json()["items"]] == [keep.id]


def test_delete_reports_unknown_ids_and_missing_files(client, auth, lib, ctx):
    gone = lib.rom("Gone.gb")
    ctx.storages.library.delete("roms/gb/Gone.gb")
    r = delete(client, auth, [gone.id, 424242], from_fs=[gone.id])
    assert r.status_code == 200
    assert r.json() == {
        "successful_items": 1,
        "failed_items": 1,
        "failed_ids": [424242],
        "errors": ["ROM with ID 424242 not found"],
    }
    assert count(ctx, Rom) == 0


def test_delete_needs_roms_write(client, users, lib):
    rom = lib.rom("Game.gb")
    viewer = users.viewer()
    assert delete(client, users.headers(viewer), [rom.id]).status_code == 403
    assert client.post("/api/roms/delete", json={"roms": [rom.id]}).status_code == 401
    editor = users.headers(users.editor())
    assert delete(client, editor, [rom.id]).json()["successful_items"] == 1
    assert client.post("/api/roms/delete", json={"roms": "x"}, headers=editor).status_code == 422
    assert client.post("/api/roms/delete", json={}, headers=editor).status_code == 422
