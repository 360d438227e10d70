"""/api/collections: standard (ROM ids, favourites, public/private), smart and virtual."""

from __future__ import annotations

import json

from romshelf.collections import service
from romshelf.collections.schemas import CollectionSchema, SmartCollectionSchema, VirtualCollectionSchema
from romshelf.roms.models import RomUser
from romshelf.roms.query import encode_virtual_id

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40


def create(client, headers, name, **params):
    return client.post("/api/collections", data={"name": name}, params=params, headers=headers)


def test_create_list_get_update_delete(client, auth, lib, ctx, admin):
    a = lib.rom("A.gb")
    b = lib.rom("B.gb")
    r = create(client, auth, "Party Games", is_public="true")
    assert r.status_code == 200, r.text
    c = r.json()
    CollectionSchema.model_validate(c)
    assert c["name"] == "Party Games" and c["is_public"] is True and c["is_favorite"] is False
    assert c["rom_ids"] == [] and c["rom_count"] == 0 and c["owner_username"] == "admin"
    assert c["is_smart"] is False and c["is_virtual"] is False
    cid = c["id"]
    r = client.put(
        f"/api/collections/{cid}",
        data={"rom_ids": json.dumps([b.id, a.id]), "description": "for friends"},
        files={"artwork": ("c.png", PNG, "image/png")},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["rom_ids"] == [a.id, b.id] and c["rom_count"] == 2 and c["description"] == "for friends"
    assert c["path_cover_large"].startswith(f"/assets/romm/resources/collections/{cid}/cover/big.png")
    assert client.get(c["path_cover_large"], headers=auth).content == PNG
    assert [x["id"] for x in client.get("/api/collections", headers=auth).json()] == [cid]
    assert client.get("/api/collections/identifiers", headers=auth).json() == [cid]
    assert client.get(f"/api/collections/{cid}", headers=auth).json()["rom_ids"] == [a.id, b.id]
    # the list filter sees it
    assert client.get(f"/api/roms?collection_id={cid}", headers=auth).json()["rom_id_index"] == [a.id, b.id]
    # replacing the ROM list
    c = client.put(f"/api/collections/{cid}", data={"rom_ids": f"[{a.id}]"}, headers=auth).json()
    assert c["rom_ids"] == [a.id]
    # removing the cover
    c = client.put(f"/api/collections/{cid}", data={}, params={"remove_cover": "true"}, headers=auth).json()
    assert c["path_cover_large"] == "" and not ctx.storages.resources.exists(f"collections/{cid}/cover/big.png")
    r = client.delete(f"/api/collections/{cid}", headers=auth)
    assert r.status_code == 200 and "Party Games" in r.json()["msg"]
    assert client.get(f"/api/collections/{cid}", headers=auth).status_code == 404
    assert client.get("/api/roms", headers=auth).json()["total"] == 2  # ROMs stay


def test_add_and_remove_roms(client, auth, lib):
    a = lib.rom("A.gb")
    b = lib.rom("B.gb")
    cid = create(client, auth, "C").json()["id"]
    r = client.post(f"/api/collections/{cid}/roms", json={"rom_ids": [a.id, b.id, a.id]}, headers=auth)
    assert r.status_code == 200 and r.json()["rom_ids"] == [a.id, b.id]
    r = client.request("DELETE", f"/api/collections/{cid}/roms", json={"rom_ids": [a.id]}, headers=auth)
    assert r.status_code == 200 and r.json()["rom_ids"] == [b.id]
    r = client.post(f"/api/collections/{cid}/roms", json={"rom_ids": [99999]}, headers=auth)
    assert r.status_code == 404 and r.json() == {"detail": "Rom with id '99999' not found"}
    assert client.post(f"/api/collections/{cid}/roms", json={"rom_ids": "x"}, headers=auth).status_code == 422


def test_favourites_drive_the_favorite_filter(client, auth, lib):
    a = lib.rom("A.gb")
    lib.rom("B.gb")
    r = create(client, auth, "Favourites", is_favorite="true")
    assert r.json()["is_favorite"] is True
    fav = r.json()["id"]
    assert create(client, auth, "More Favourites", is_favorite="true").status_code == 409
    client.post(f"/api/collections/{fav}/roms", json={"rom_ids": [a.id]}, headers=auth)
    assert client.get("/api/roms?favorite=true", headers=auth).json()["rom_id_index"] == [a.id]


def test_visibility_and_ownership(client, auth, users, lib):
    other = users.headers(users.viewer("other"))
    private = create(client, auth, "Private").json()["id"]
    public = create(client, auth, "Public", is_public="true").json()["id"]
    assert [c["name"] for c in client.get("/api/collections", headers=other).json()] == ["Public"]
    assert client.get(f"/api/collections/{private}", headers=other).status_code == 404
    assert client.get(f"/api/collections/{public}", headers=other).status_code == 200
    r = client.put(f"/api/collections/{public}", data={"name": "Mine now"}, headers=other)
    assert r.status_code == 403
    assert client.put(f"/api/collections/{private}", data={"name": "x"}, headers=other).status_code == 404
    assert client.delete(f"/api/collections/{public}", headers=other).status_code == 403
    assert client.post(f"/api/collections/{public}/roms", json={"rom_ids": []}, headers=other).status_code == 403


def test_bad_input(client, auth, users):
    assert create(client, auth, "  ").status_code == 400
    cid = create(client, auth, "Dup").json()["id"]
    assert create(client, auth, "Dup").status_code == 409
    for bad in ("[1, 'x']", "{", "5", "[true]"):
        r = client.put(f"/api/collections/{cid}", data={"rom_ids": bad}, headers=auth)
        assert r.status_code == 400, bad
    r = client.put(f"/api/collections/{cid}", files={"artwork": ("x.png", b"not an image", "image/png")}, headers=auth)
    assert r.status_code == 400
    assert client.get("/api/collections/0", headers=auth).status_code == 422
    assert client.get("/api/collections/9999", headers=auth).status_code == 404


def test_scopes(client, users):
    viewer = users.viewer()
    read_only = users.headers(viewer, scopes=["collections.read"])
    assert client.get("/api/collections", headers=read_only).status_code == 200
    assert create(client, read_only, "x").status_code == 403
    assert client.get("/api/collections", headers=users.headers(viewer, scopes=["roms.read"])).status_code == 403
    assert client.get("/api/collections").status_code == 401
    assert create(client, users.headers(viewer), "Viewer's").status_code == 200  # viewers may curate


def test_smart_collections(client, auth, users, lib, add, admin):
    a = lib.rom("Alpha (USA).gb", igdb_id=1, igdb_metadata={"genres": ["Action"]})
    b = lib.rom("Beta (Europe).gb", igdb_id=2, igdb_metadata={"genres": ["Action"]})
    lib.rom("Gamma (USA).gb")
    criteria = {"genres": ["Action"], "regions": ["USA", "Europe"], "regions_logic": "any"}
    r = client.post(
        "/api/collections/smart",
        data={"name": "Action", "filter_criteria": json.dumps(criteria)},
        params={"is_public": "true"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    sc = r.json()
    SmartCollectionSchema.model_validate(sc)
    assert sc["is_smart"] is True and sc["rom_ids"] == [a.id, b.id] and sc["rom_count"] == 2
    assert sc["filter_criteria"] == {"genres": ["Action"], "regions": ["USA", "Europe"]}
    assert "genres (any): Action" in sc["filter_summary"]
    sid = sc["id"]
    # re-evaluated on read: a new matching ROM shows up
    c = lib.rom("Chi (USA).gb", igdb_id=3, igdb_metadata={"genres": ["Action"]})
    assert client.get(f"/api/collections/smart/{sid}", headers=auth).json()["rom_ids"] == [a.id, b.id, c.id]
    assert client.get(f"/api/roms?smart_collection_id={sid}", headers=auth).json()["rom_id_index"] == [
        a.id,
        b.id,
        c.id,
    ]
    # user-relative criteria are evaluated for the reader
    add(RomUser(rom_id=b.id, user_id=admin.id, hidden=True))
    assert client.get(f"/api/collections/smart/{sid}", headers=auth).json()["rom_ids"] == [a.id, c.id]
    other = users.headers(users.viewer("other"))
    assert client.get(f"/api/collections/smart/{sid}", headers=other).json()["rom_ids"] == [a.id, b.id, c.id]
    assert client.get("/api/collections/smart/identifiers", headers=auth).json() == [sid]
    r = client.put(f"/api/collections/smart/{sid}", data={"filter_criteria": '{"regions": ["Europe"]}'}, headers=auth)
    assert r.status_code == 200 and r.json()["rom_ids"] == []  # b is hidden for admin
    assert client.put(f"/api/collections/smart/{sid}", data={"name": "x"}, headers=other).status_code == 403
    assert [x["name"] for x in client.get("/api/collections/smart", headers=other).json()] == ["Action"]
    r = client.delete(f"/api/collections/smart/{sid}", headers=auth)
    assert r.status_code == 200
    assert client.get(f"/api/collections/smart/{sid}", headers=auth).status_code == 404


def test_smart_collection_criteria_validation(client, auth):
    for bad in ("{", "[]", '{"genres_logic": "maybe", "genres": ["x"]}', '{"order": 1, "statuses": ["bored"]}'):
        r = client.post("/api/collections/smart", data={"name": "S", "filter_criteria": bad}, headers=auth)
        assert r.status_code == 422, bad
        assert r.json()["detail"][0]["loc"][:2] == ["body", "filter_criteria"]
    r = client.post("/api/collections/smart", data={"name": "All"}, headers=auth)
    assert r.status_code == 200 and r.json()["filter_summary"] == "All ROMs"


def test_smart_collection_rom_ids_service(ctx, lib, add, admin, users):
    from romshelf.collections.models import SmartCollection
    from romshelf.core.errors import NotFound

    a = lib.rom("A (USA).gb")
    lib.rom("B (Japan).gb")
    sc = add(SmartCollection(user_id=admin.id, name="USA", filter_criteria={"regions": ["USA"]}))
    other = users.viewer("other")
    with ctx.db.read() as s:
        assert service.smart_collection_rom_ids(s, sc.id, admin.id) == [a.id]
        try:
            service.smart_collection_rom_ids(s, sc.id, other.id)
        except NotFound:
            pass
        else:
            raise AssertionError("a private smart collection is not visible to others")


def test_virtual_collections(client, auth, lib):
    a = lib.rom("A.gb", igdb_id=1, igdb_metadata={"genres": ["Action", "RPG"], "franchises": ["Saga"]})
    b = lib.rom("B.gb", igdb_id=2, igdb_metadata={"genres": ["Action"], "companies": ["Sega"]})
    r = client.get("/api/collections/virtual?type=genre", headers=auth)
    assert r.status_code == 200
    got = r.json()
    for c in got:
        VirtualCollectionSchema.model_validate(c)
    assert [(c["name"], c["rom_ids"]) for c in got] == [("Action", [a.id, b.id]), ("RPG", [a.id])]
    assert got[0]["id"] == encode_virtual_id("Action", "genre") and got[0]["type"] == "genre"
    assert client.get("/api/collections/virtual?type=genre&limit=1", headers=auth).json()[0]["name"] == "Action"
    everything = client.get("/api/collections/virtual?type=all", headers=auth).json()
    assert {(c["type"], c["name"]) for c in everything} == {
        ("genre", "Action"),
        ("genre", "RPG"),
        ("franchise", "Saga"),
        ("company", "Sega"),
    }
    ids = client.get("/api/collections/virtual/identifiers", headers=auth).json()
    assert sorted(ids) == sorted(c["id"] for c in everything)
    one = client.get(f"/api/collections/virtual/{encode_virtual_id('Saga', 'franchise')}", headers=auth)
    assert one.status_code == 200 and one.json()["rom_ids"] == [a.id]
    assert client.get(f"/api/collections/virtual/{encode_virtual_id('Nope', 'genre')}", headers=auth).status_code == 404
    assert client.get("/api/collections/virtual/garbage", headers=auth).status_code == 404
    assert client.get("/api/collections/virtual?type=bogus", headers=auth).status_code == 400


def test_updated_after(client, auth):
    create(client, auth, "Old")
    r = client.get("/api/collections?updated_after=2999-01-01T00:00:00Z", headers=auth)
    assert r.status_code == 200 and r.json() == []
    assert client.get("/api/collections?updated_after=bad", headers=auth).status_code == 422


def test_bulk_download_by_smart_and_virtual_collection(client, auth, lib, add, admin, users):
    import io
    import zipfile

    from romshelf.collections.models import SmartCollection

    usa = lib.rom("Hero (USA).gb", data=b"usa bytes", igdb_id=1, igdb_metadata={"genres": ["Action"]})
    lib.rom("Hero (Japan).gb", data=b"jpn bytes")
    smart = add(SmartCollection(user_id=admin.id, name="USA", filter_criteria={"regions": ["USA"]}))
    r = client.get(f"/api/roms/download?smart_collection_id={smart.id}", headers=auth)
    assert r.status_code == 200, r.text
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert any("Hero (USA).gb" in n for n in names) and not any("Japan" in n for n in names)
    other = users.headers(users.viewer("other"))
    assert client.get(f"/api/roms/download?smart_collection_id={smart.id}", headers=other).status_code == 404
    genre = encode_virtual_id("Action", "genre")
    r = client.get(f"/api/roms/download?virtual_collection_id={genre}", headers=auth)
    assert r.status_code == 200
    assert [n for n in zipfile.ZipFile(io.BytesIO(r.content)).namelist() if n.endswith(".gb")] == [
        n for n in names if n.endswith(".gb")
    ]
    assert usa.id
