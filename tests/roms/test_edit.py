"""PUT /api/roms/{id}: fields, metadata, renames on disk, cover artwork and its URLs."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from romshelf.roms.models import Rom, RomFacet, RomFile
from romshelf.roms.naming import name_sort_key
from romshelf.roms.schemas import DetailedRomSchema

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x01" * 40
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + b"\x02" * 40
GIF = b"GIF89a" + b"\x03" * 40
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x04" * 40


def put(client, auth, rom_id, data=None, files=None, **params):
    return client.put(f"/api/roms/{rom_id}", data=data or {}, files=files, params=params, headers=auth)


def test_edit_fields_and_metadata(client, auth, lib, ctx):
    rom = lib.rom("Game (USA).gb")
    r = put(
        client,
        auth,
        rom.id,
        {
            "name": "Metroid Prime",
            "summary": "Samus again",
            "igdb_id": "1234",
            "ss_id": "",
            "flashpoint_id": "fp-9",
            "raw_igdb_metadata": json.dumps({"genres": ["Action"], "franchises": ["Metroid"], "total_rating": "80"}),
            "raw_moby_metadata": json.dumps({"genres": ["Ignored: no moby id"]}),
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    DetailedRomSchema.model_validate(body)
    assert body["name"] == "Metroid Prime" and body["summary"] == "Samus again"
    assert body["name_sort_key"] == name_sort_key("Metroid Prime")
    assert body["igdb_id"] == 1234 and body["ss_id"] is None and body["flashpoint_id"] == "fp-9"
    assert body["igdb_metadata"]["genres"] == ["Action"]
    assert body["moby_metadata"] == {}
    assert body["metadatum"]["genres"] == ["Action"] and body["metadatum"]["franchises"] == ["Metroid"]
    assert body["metadatum"]["average_rating"] == 80.0
    assert body["is_identified"] is True
    with ctx.db.read() as s:
        facets = set(s.execute(sa.select(RomFacet.kind, RomFacet.value).where(RomFacet.rom_id == rom.id)))
    assert ("genres", "Action") in facets and ("franchises", "Metroid") in facets
    # clearing an id clears its metadata
    body = put(client, auth, rom.id, {"igdb_id": ""}).json()
    assert body["igdb_id"] is None and body["igdb_metadata"] == {} and body["metadatum"]["genres"] == []


def test_manual_metadata_fields(client, auth, lib, get_list):
    rom = lib.rom("Game.gb")
    body = put(
        client,
        auth,
        rom.id,
        {
            "genres": '["Puzzle", "Arcade"]',
            "companies": "Taito, Namco",
            "age_ratings": "PEGI 3",
            "player_count": "1-2",
            "first_release_date": "1994-03-01",
            "franchises": "",
        },
    ).json()
    m = body["metadatum"]
    assert m["genres"] == ["Arcade", "Puzzle"] and m["companies"] == ["Namco", "Taito"]
    assert m["age_ratings"] == ["PEGI 3"] and m["player_count"] == "1-2"
    assert m["first_release_date"] == 762480000000
    assert body["manual_metadata"]["genres"] == ["Puzzle", "Arcade"]
    assert get_list(genres="Arcade", player_counts="1-2")["rom_id_index"] == [rom.id]
    # raw manual metadata (RomM's field) works too, and wins as a whole blob
    body = put(client, auth, rom.id, {"raw_manual_metadata": json.dumps({"genres": ["Sports"]})}).json()
    assert body["metadatum"]["genres"] == ["Sports"]


def test_bad_and_ignored_values(client, auth, lib):
    rom = lib.rom("Game.gb", igdb_id=1, igdb_metadata={"genres": ["Kept"]})
    r = put(client, auth, rom.id, {"igdb_id": "twelve"})
    assert r.status_code == 400 and "igdb_id" in r.json()["detail"]
    r = put(client, auth, rom.id, {"genres": '["unclosed"'})
    assert r.status_code == 400
    r = put(client, auth, rom.id, {"first_release_date": "someday"})
    assert r.status_code == 400
    # invalid or empty raw JSON is ignored, as RomM does (200, blob unchanged)
    for raw in ("{not json", "", "[1, 2]"):
        r = put(client, auth, rom.id, {"raw_igdb_metadata": raw})
        assert r.status_code == 200 and r.json()["igdb_metadata"] == {"genres": ["Kept"]}
    assert client.put("/api/roms/99999", data={"name": "x"}, headers=auth).status_code == 404
    r = client.put(f"/api/roms/{rom.id}", content=b"x", headers={**auth, "content-type": "text/plain"})
    assert r.status_code == 400


def test_name_sort_key_override(client, auth, lib):
    rom = lib.rom("Game.gb")
    body = put(client, auth, rom.id, {"name_sort_key": "Zzz Custom"}).json()
    assert body["name_sort_key"] == "zzz custom"
    body = put(client, auth, rom.id, {"name": "Another Name"}).json()
    assert body["name_sort_key"] == "zzz custom"  # a custom key survives a rename
    body = put(client, auth, rom.id, {"name_sort_key": ""}).json()
    assert body["name_sort_key"] == name_sort_key("Another Name")


def test_rename_file_on_disk_and_reparse_tags(client, auth, lib, ctx):
    rom = lib.rom("test_rom (USA).gb", data=b"rom bytes")
    lib_store = ctx.storages.library
    body = put(client, auth, rom.id, {"fs_name": "Patapon (Fr, En) (Rev 1).iso", "name": "Patapon"}).json()
    assert body["fs_name"] == "Patapon (Fr, En) (Rev 1).iso"
    assert body["languages"] == ["French", "English"] and body["regions"] == [] and body["revision"] == "1"
    assert body["tags"] == [] and body["fs_extension"] == "iso" and body["fs_name_no_tags"] == "Patapon"
    assert body["files"][0]["file_name"] == "Patapon (Fr, En) (Rev 1).iso"
    assert not lib_store.exists("roms/gb/test_rom (USA).gb")
    assert lib_store.open("roms/gb/Patapon (Fr, En) (Rev 1).iso").read() == b"rom bytes"
    body = put(client, auth, rom.id, {"fs_name": "test_rom (Europe).zip"}).json()
    assert body["regions"] == ["Europe"]


def test_rename_folder_rom_updates_every_file(client, auth, lib, ctx):
    rom = lib.rom("Old Folder", files={"disc1.bin": b"1", "manual/m.pdf": b"%PDF"})
    body = put(client, auth, rom.id, {"fs_name": "New Folder (Japan)"}).json()
    assert body["regions"] == ["Japan"]
    paths = sorted(f["full_path"] for f in body["files"])
    assert paths == ["roms/gb/New Folder (Japan)/disc1.bin", "roms/gb/New Folder (Japan)/manual/m.pdf"]
    assert ctx.storages.library.exists("roms/gb/New Folder (Japan)/manual/m.pdf")
    assert not ctx.storages.library.exists("roms/gb/Old Folder")


def test_rename_conflicts_and_bad_names(client, auth, lib, ctx):
    rom = lib.rom("A.gb", data=b"a")
    lib.rom("B.gb", data=b"b")
    ctx.storages.library.write("roms/gb/Stray.gb", b"not in the database")
    r = put(client, auth, rom.id, {"fs_name": "B.gb"})
    assert r.status_code == 409  # another ROM row has the name
    r = put(client, auth, rom.id, {"fs_name": "Stray.gb"})
    assert r.status_code == 409  # a file on disk has it: never overwritten
    assert ctx.storages.library.open("roms/gb/Stray.gb").read() == b"not in the database"
    for bad in ("../../etc/passwd", "sub/dir.gb", "..", ".hidden.gb", "a\x00b.gb"):
        r = put(client, auth, rom.id, {"fs_name": bad})
        assert r.status_code == 400, bad
    assert ctx.storages.library.open("roms/gb/A.gb").read() == b"a"
    with ctx.db.read() as s:
        assert s.get(Rom, rom.id).fs_name == "A.gb"
        assert s.scalar(sa.select(RomFile.file_name).where(RomFile.rom_id == rom.id)) == "A.gb"


def test_rename_of_a_missing_file_is_a_conflict(client, auth, lib, ctx):
    rom = lib.rom("Gone.gb")
    ctx.storages.library.delete("roms/gb/Gone.gb")
    r = put(client, auth, rom.id, {"fs_name": "Other.gb"})
    assert r.status_code == 409 and "missing" in r.json()["detail"]


@pytest.mark.parametrize(
    ("data", "ext", "mime"),
    [(PNG, "png", "image/png"), (JPEG, "jpg", "image/jpeg"), (GIF, "gif", "image/gif"), (WEBP, "webp", "image/webp")],
)
def test_cover_upload_is_served_back(client, auth, lib, ctx, data, ext, mime):
    rom = lib.rom("Game.gb")
    r = put(client, auth, rom.id, files={"artwork": ("whatever.bin", data, "application/octet-stream")})
    assert r.status_code == 200, r.text
    body = r.json()
    large, small = body["path_cover_large"], body["path_cover_small"]
    assert large.startswith(f"/assets/romm/resources/roms/{rom.platform_id}/{rom.id}/cover/big.{ext}?ts=")
    assert small.startswith(f"/assets/romm/resources/roms/{rom.platform_id}/{rom.id}/cover/small.{ext}?ts=")
    got = client.get(large, headers=auth)
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"].startswith(mime)
    assert got.headers["x-content-type-options"] == "nosniff"
    assert client.get(large, headers={**auth, "If-None-Match": got.headers["etag"]}).status_code == 304
    assert client.get(large).status_code == 401
    assert client.get(small, headers=auth).content == data
    # listed items carry the same URLs
    item = client.get("/api/roms", headers=auth).json()["items"][0]
    assert item["path_cover_large"] == large


def test_cover_replace_and_remove(client, auth, lib, ctx):
    rom = lib.rom("Game.gb")
    put(client, auth, rom.id, files={"artwork": ("a.png", PNG, "image/png")})
    body = put(client, auth, rom.id, files={"artwork": ("a.jpg", JPEG, "image/jpeg")}).json()
    folder = f"roms/{rom.platform_id}/{rom.id}/cover"
    res = ctx.storages.resources
    assert res.exists(f"{folder}/big.jpg") and not res.exists(f"{folder}/big.png")
    assert "big.jpg" in body["path_cover_large"]
    body = put(client, auth, rom.id, remove_cover="true").json()
    assert body["path_cover_large"] == "" and body["path_cover_small"] == "" and body["url_cover"] == ""
    assert not res.exists(f"{folder}/big.jpg")


def test_cover_must_be_an_image(client, auth, lib, ctx):
    rom = lib.rom("Game.gb")
    r = put(client, auth, rom.id, files={"artwork": ("cover.png", b"<svg>not really</svg>", "image/png")})
    assert r.status_code == 400 and "PNG, JPEG, WebP, or GIF" in r.json()["detail"]
    assert not ctx.storages.resources.exists(f"roms/{rom.platform_id}/{rom.id}/cover/big.png")


def test_cover_size_limit(client, auth, lib, ctx):
    ctx.settings.cover_max_bytes = 100
    rom = lib.rom("Game.gb")
    r = put(client, auth, rom.id, files={"artwork": ("a.png", PNG + b"\x00" * 200, "image/png")})
    assert r.status_code == 413


def test_resource_route_rejects_traversal(client, auth, ctx):
    ctx.storages.resources.write("roms/1/1/cover/big.png", PNG)
    assert client.get("/assets/romm/resources/roms/1/1/cover/big.png", headers=auth).status_code == 200
    for bad in ("roms/../../secret.key", "..%2F..%2Fsecret.key", "roms/1", "nothing.png"):
        assert client.get(f"/assets/romm/resources/{bad}", headers=auth).status_code == 404, bad


def test_unmatch_metadata(client, auth, lib):
    rom = lib.rom(
        "Game (USA).gb",
        igdb_id=1,
        ss_id=2,
        igdb_metadata={"genres": ["Action"]},
        ra_metadata={"achievements": []},
        summary="s",
        url_cover="http://x/c.png",
        slug="game",
    )
    put(client, auth, rom.id, files={"artwork": ("a.png", PNG, "image/png")})
    body = put(client, auth, rom.id, {"name": "Ignored"}, unmatch_metadata="true").json()
    assert body["igdb_id"] is None and body["ss_id"] is None
    assert body["name"] == "Game (USA).gb" and body["name_sort_key"] == name_sort_key("Game (USA).gb")
    assert body["summary"] == "" and body["url_cover"] == "" and body["slug"] == ""
    assert body["igdb_metadata"] == {} and body["merged_ra_metadata"] == {}
    assert body["path_cover_large"] == "" and body["metadatum"]["genres"] == []


def test_edit_needs_roms_write(client, users, lib):
    rom = lib.rom("Game.gb")
    viewer = users.viewer()
    r = client.put(f"/api/roms/{rom.id}", data={"name": "x"}, headers=users.headers(viewer))
    assert r.status_code == 403
    editor = users.editor()
    r = client.put(f"/api/roms/{rom.id}", data={"name": "x"}, headers=users.headers(editor))
    assert r.status_code == 200 and r.json()["name"] == "x"


def test_json_body_is_accepted_too(client, auth, lib):
    rom = lib.rom("Game.gb")
    r = client.put(
        f"/api/roms/{rom.id}",
        json={"name": "Json Name", "igdb_id": 77, "genres": ["Puzzle"], "raw_igdb_metadata": {"genres": ["Action"]}},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "Json Name" and body["igdb_id"] == 77
    assert body["igdb_metadata"] == {"genres": ["Action"]} and body["metadatum"]["genres"] == ["Puzzle"]
    bad = client.put(f"/api/roms/{rom.id}", content=b"[1]", headers={**auth, "content-type": "application/json"})
    assert bad.status_code == 400


def test_order_by_any_plain_column(lib, get_list, client, auth):
    a = lib.rom("A.gb", slug="zzz")
    b = lib.rom("B.gb", slug="aaa")
    assert get_list(order_by="slug")["rom_id_index"] == [b.id, a.id]
    assert get_list(order_by="md5_hash")["total"] == 2
    assert client.get("/api/roms?order_by=igdb_metadata", headers=auth).status_code == 422
