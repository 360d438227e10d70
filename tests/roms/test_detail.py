"""ROM details and lookups: /api/roms/{id}, /simple, /files, /by-hash, /by-metadata-provider,
/filters, /random."""

from __future__ import annotations

import pytest
from factories import hashes

from romshelf.collections.models import Collection, CollectionRom, SmartCollection
from romshelf.roms.models import RomUser
from romshelf.roms.schemas import DetailedRomSchema, RomFileSchema, RomFiltersDict, SimpleRomSchema
from romshelf.saves.models import Save, Screenshot


def test_detail_shape_and_404s(client, auth, lib):
    rom = lib.rom("Metroid (USA).gb", igdb_id=5, igdb_metadata={"alternative_names": ["Metroid II", "Meteoroid"]})
    r = client.get(f"/api/roms/{rom.id}", headers=auth)
    assert r.status_code == 200
    body = r.json()
    DetailedRomSchema.model_validate(body)
    assert body["id"] == rom.id and body["igdb_id"] == 5
    assert body["alternative_names"] == ["Meteoroid", "Metroid II"]
    assert [f["file_name"] for f in body["files"]] == ["Metroid (USA).gb"]
    for key in ("user_saves", "user_states", "all_user_saves", "all_user_states", "user_screenshots"):
        assert body[key] == []
    assert body["user_collections"] == [] and body["all_user_notes"] == []
    missing = client.get("/api/roms/999999", headers=auth)
    assert missing.status_code == 404 and missing.json() == {"detail": "Rom with id '999999' not found"}
    assert client.get("/api/roms/0", headers=auth).status_code == 422
    assert client.get("/api/roms/abc", headers=auth).status_code == 422
    assert client.get(f"/api/roms/{rom.id}").status_code == 401


def test_simple_has_no_asset_lists(client, auth, lib):
    rom = lib.rom("Game.gb")
    body = client.get(f"/api/roms/{rom.id}/simple", headers=auth).json()
    SimpleRomSchema.model_validate(body)
    for key in ("user_saves", "user_states", "user_screenshots", "user_collections", "all_user_notes"):
        assert key not in body
    assert body["files"][0]["file_name"] == "Game.gb"
    assert client.get("/api/roms/999999/simple", headers=auth).status_code == 404


def test_user_hidden_rom_is_404_for_that_user_only(client, auth, lib, add, admin, users):
    rom = lib.rom("Secret.gb")
    add(RomUser(rom_id=rom.id, user_id=admin.id, hidden=True))
    for path in (f"/api/roms/{rom.id}", f"/api/roms/{rom.id}/simple"):
        assert client.get(path, headers=auth).status_code == 404
    assert client.get(f"/api/roms/by-hash?md5_hash={rom.md5_hash}", headers=auth).status_code == 404
    other = users.headers(users.viewer("other"))
    assert client.get(f"/api/roms/{rom.id}", headers=other).status_code == 200
    # the owner can still unhide it
    r = client.put(f"/api/roms/{rom.id}/props", json={"hidden": False}, headers=auth)
    assert r.status_code == 200
    assert client.get(f"/api/roms/{rom.id}", headers=auth).status_code == 200


def test_detail_assets_and_collections(client, auth, lib, add, admin, users):
    other = users.viewer("other")
    rom = lib.rom("Game.gb")
    lib.rom("Other.gb")
    save = add(Save(rom_id=rom.id, user_id=admin.id, file_name="game.srm", file_path="a"))
    add(Save(rom_id=rom.id, user_id=other.id, file_name="pub.srm", file_path="b", is_public=True))
    add(Screenshot(rom_id=rom.id, user_id=admin.id, file_name="game.png", file_path="a"))
    mine = add(Collection(user_id=admin.id, name="Mine"))
    add(CollectionRom(collection_id=mine.id, rom_id=rom.id))
    theirs = add(Collection(user_id=other.id, name="Theirs"))
    add(CollectionRom(collection_id=theirs.id, rom_id=rom.id))
    smart = add(SmartCollection(user_id=admin.id, name="Smart G", filter_criteria={"search_term": "game"}))
    add(SmartCollection(user_id=admin.id, name="Smart O", filter_criteria={"search_term": "other"}))
    public_smart = add(SmartCollection(user_id=other.id, name="Pub", is_public=True, filter_criteria={}))
    add(SmartCollection(user_id=other.id, name="Priv", filter_criteria={}))
    body = client.get(f"/api/roms/{rom.id}", headers=auth).json()
    DetailedRomSchema.model_validate(body)
    assert [s["id"] for s in body["user_saves"]] == [save.id]
    assert sorted(s["file_name"] for s in body["all_user_saves"]) == ["game.srm", "pub.srm"]
    assert [s["file_name"] for s in body["user_screenshots"]] == ["game.png"]
    assert body["user_collections"] == [
        {"id": mine.id, "name": "Mine", "is_smart": False},
        {"id": public_smart.id, "name": "Pub", "is_smart": True},
        {"id": smart.id, "name": "Smart G", "is_smart": True},
    ]


def test_detail_etag(client, auth, lib):
    rom = lib.rom("Game.gb")
    r = client.get(f"/api/roms/{rom.id}", headers=auth)
    etag = r.headers["etag"]
    assert client.get(f"/api/roms/{rom.id}", headers={**auth, "If-None-Match": etag}).status_code == 304
    client.put(f"/api/roms/{rom.id}/props", json={"rating": 3}, headers=auth)
    r2 = client.get(f"/api/roms/{rom.id}", headers={**auth, "If-None-Match": etag})
    assert r2.status_code == 200 and r2.json()["rom_user"]["rating"] == 3


def test_rom_file(client, auth, lib):
    rom = lib.rom("Disc Game", files={"disc1.bin": b"1", "disc2.bin": b"2", "manual/m.pdf": b"%PDF"})
    detail = client.get(f"/api/roms/{rom.id}", headers=auth).json()
    assert detail["has_multiple_files"] is True and detail["has_simple_single_file"] is False
    files = {f["file_name"]: f for f in detail["files"]}
    assert files["disc1.bin"]["is_top_level"] is True and files["disc1.bin"]["category"] == "game"
    assert files["m.pdf"]["is_top_level"] is False and files["m.pdf"]["category"] == "manual"
    r = client.get(f"/api/roms/{files['disc2.bin']['id']}/files", headers=auth)
    assert r.status_code == 200
    RomFileSchema.model_validate(r.json())
    assert r.json()["full_path"] == "roms/gb/Disc Game/disc2.bin"
    assert r.json()["md5_hash"] == hashes(b"2")["md5_hash"]
    missing = client.get("/api/roms/99999/files", headers=auth)
    assert missing.status_code == 404 and missing.json() == {"detail": "File not found"}


def test_nested_single_file(client, auth, lib):
    rom = lib.rom("Folder Game", files={"game.bin": b"g"})
    body = client.get(f"/api/roms/{rom.id}", headers=auth).json()
    assert body["has_nested_single_file"] is True and body["has_simple_single_file"] is False


@pytest.mark.parametrize("which", ["crc_hash", "md5_hash", "sha1_hash"])
def test_by_hash(client, auth, lib, which):
    rom = lib.rom("Game.gb")
    other = lib.rom("Folder", files={"a.bin": b"file a", "b.bin": b"file b"})
    r = client.get(f"/api/roms/by-hash?{which}={getattr(rom, which)}", headers=auth)
    assert r.status_code == 200 and r.json()["id"] == rom.id
    DetailedRomSchema.model_validate(r.json())
    # a file's hash finds its ROM; case does not matter
    file_hash = hashes(b"file b")[which].upper()
    assert client.get(f"/api/roms/by-hash?{which}={file_hash}", headers=auth).json()["id"] == other.id
    missing = client.get(f"/api/roms/by-hash?{which}=00000000", headers=auth)
    assert missing.status_code == 404 and missing.json() == {"detail": "No ROM or file found with given hash values"}


def test_by_hash_needs_a_value(client, auth):
    r = client.get("/api/roms/by-hash", headers=auth)
    assert r.status_code == 400 and r.json() == {"detail": "At least one metadata hash value must be provided"}
    assert client.get("/api/roms/by-hash?crc_hash=", headers=auth).status_code == 400


def test_by_hash_ra_and_any_of_several(client, auth, lib):
    rom = lib.rom("Game.gb", ra_hash="f" * 32)
    r = client.get(f"/api/roms/by-hash?ra_hash={'F' * 32}", headers=auth)
    assert r.json()["id"] == rom.id
    r = client.get(f"/api/roms/by-hash?crc_hash=deadbeef&md5_hash={rom.md5_hash}", headers=auth)
    assert r.json()["id"] == rom.id


def test_by_metadata_provider(client, auth, lib):
    a = lib.rom("A.gb", igdb_id=100)
    b = lib.rom("B.gb", flashpoint_id="fp-1", moby_id=7)
    assert client.get("/api/roms/by-metadata-provider?igdb_id=100", headers=auth).json()["id"] == a.id
    assert client.get("/api/roms/by-metadata-provider?flashpoint_id=fp-1", headers=auth).json()["id"] == b.id
    r = client.get("/api/roms/by-metadata-provider?igdb_id=5&moby_id=7", headers=auth)
    assert r.json()["id"] == b.id  # any id matches
    r = client.get("/api/roms/by-metadata-provider", headers=auth)
    assert r.status_code == 400 and r.json() == {"detail": "At least one metadata ID must be provided"}
    r = client.get("/api/roms/by-metadata-provider?ss_id=1", headers=auth)
    assert r.status_code == 404 and r.json() == {"detail": "ROM not found with given metadata IDs"}
    assert client.get("/api/roms/by-metadata-provider?igdb_id=x", headers=auth).status_code == 422


def test_filters_endpoint(client, auth, lib):
    a = lib.rom("A (USA) [Proto].gb", igdb_id=1, igdb_metadata={"genres": ["Action"]})
    b = lib.rom("B (Japan).gbc", platform="gbc")
    r = client.get("/api/roms/filters", headers=auth)
    assert r.status_code == 200
    body = RomFiltersDict.model_validate(r.json())
    assert body.genres == ["Action"] and body.regions == ["Japan", "USA"] and body.tags == ["Proto"]
    assert body.platforms == sorted([a.platform_id, b.platform_id])
    assert client.get("/api/roms/filters", headers={**auth, "If-None-Match": r.headers["etag"]}).status_code == 304


def test_random(client, auth, lib):
    assert client.get("/api/roms/random", headers=auth).json() is None
    a = lib.rom("A.gb")
    b = lib.rom("B.gbc", platform="gbc")
    got = {client.get("/api/roms/random", headers=auth).json()["id"] for _ in range(12)}
    assert got <= {a.id, b.id}
    r = client.get(f"/api/roms/random?platform_ids={b.platform_id}", headers=auth)
    assert r.json()["id"] == b.id and r.json()["platform_slug"] == "gbc"
    assert client.get("/api/roms/random").status_code == 401


def test_headerless_hashes_find_the_rom(client, auth, lib, ctx, get_list):
    import sqlalchemy as sa

    from romshelf.roms.models import RomFile

    rom = lib.rom("Zelda (USA).nes", platform="nes")
    headerless = hashes(b"prg and chr without the iNES header")
    with ctx.db.transaction() as s:
        s.execute(
            sa.update(RomFile)
            .where(RomFile.rom_id == rom.id)
            .values(**{f"headerless_{k}": v for k, v in headerless.items()})
        )
    for key, value in headerless.items():
        r = client.get(f"/api/roms/by-hash?{key}={value}", headers=auth)
        assert r.status_code == 200 and r.json()["id"] == rom.id, key
        assert get_list(search_term=value)["rom_id_index"] == [rom.id]
