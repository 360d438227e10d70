"""POST /v1/roms?add_to_library=true: the workspace ROM also becomes a Game Boy ROM of the /api
library, only when asked, and only for callers who may curate the library."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from factories import count, hashes, make_rom

from romshelf.pkmnapi.models import PkmnapiRom, PkmnapiRomData
from romshelf.platforms.models import Platform
from romshelf.roms.models import Rom, RomFile


def library_roms(ctx):
    with ctx.db.read() as s:
        return list(
            s.execute(
                sa.select(Rom, Platform.slug).join(Platform, Platform.id == Rom.platform_id).order_by(Rom.id)
            ).all()
        )


def test_default_upload_does_not_touch_the_library(v1, gameboygame):
    assert v1.post_rom(gameboygame, v1.auth(role="editor")).status_code == 201
    assert v1.post_rom(gameboygame, v1.auth(role="editor"), add_to_library="false").status_code == 201
    assert count(v1.ctx, Rom) == 0 and count(v1.ctx, Platform) == 0
    assert list(v1.ctx.storages.library.walk()) == []


def test_add_to_library_creates_a_game_boy_rom(v1, make_gb_rom):
    rom = make_gb_rom(b"POKEMON RED", 128 * 1024, seed=7)
    r = v1.post_rom(rom, v1.auth(role="editor"), add_to_library="true")
    assert r.status_code == 201, r.text
    # the /v1 body is unchanged; the library ROM's id comes in a romshelf header
    assert v1.masked(r) == v1.rom_body("POKEMON RED", hashlib.md5(rom).hexdigest(), False)
    [(lib, slug)] = library_roms(v1.ctx)
    assert r.headers["x-romshelf-library-rom-id"] == str(lib.id)
    assert slug == "gb" and lib.fs_path == "roms/gb" and lib.fs_name == "POKEMON RED.gb"
    assert lib.name == "POKEMON RED" and lib.fs_size_bytes == len(rom)
    h = hashes(rom)
    assert (lib.crc_hash, lib.md5_hash, lib.sha1_hash) == (h["crc_hash"], h["md5_hash"], h["sha1_hash"])
    with v1.ctx.db.read() as s:
        [f] = list(s.scalars(sa.select(RomFile).where(RomFile.rom_id == lib.id)))
        ws = s.scalar(sa.select(PkmnapiRom))
    assert (f.file_path, f.file_name, f.file_size_bytes) == ("roms/gb", "POKEMON RED.gb", len(rom))
    assert (f.crc_hash, f.md5_hash, f.sha1_hash) == (h["crc_hash"], h["md5_hash"], h["sha1_hash"])
    assert ws.library_rom_id == lib.id
    with v1.ctx.storages.library.open("roms/gb/POKEMON RED.gb") as fh:
        assert fh.read() == rom


def test_library_copy_outlives_the_workspace_rom(v1, gameboygame):
    headers = v1.auth(role="editor")
    r = v1.post_rom(gameboygame, headers, add_to_library="1")
    assert v1.delete_rom(headers, r.headers["etag"]).status_code == 204
    assert count(v1.ctx, Rom) == 1 and v1.ctx.storages.library.exists("roms/gb/GAMEBOYGAME.gb")
    assert v1.stored_files() == []


def test_same_bytes_reuse_the_library_rom(v1, gameboygame):
    a = v1.post_rom(gameboygame, v1.auth(role="editor"), add_to_library="true")
    b = v1.post_rom(gameboygame, v1.auth(role="admin"), add_to_library="true")
    assert a.headers["x-romshelf-library-rom-id"] == b.headers["x-romshelf-library-rom-id"]
    assert count(v1.ctx, Rom) == 1 and count(v1.ctx, RomFile) == 1


def test_rom_already_in_library_by_md5_is_reused(v1, gameboygame):
    existing = make_rom(v1.ctx, "gb", gameboygame, fs_name="Game Boy Game (World).gb")
    r = v1.post_rom(gameboygame, v1.auth(role="editor"), add_to_library="true")
    assert r.headers["x-romshelf-library-rom-id"] == str(existing.id)
    assert count(v1.ctx, Rom) == 1


def test_taken_file_name_gets_the_md5_prefix(v1, gameboygame, make_gb_rom):
    other = make_gb_rom(b"GAMEBOYGAME", 0x8000, seed=2)  # same title, other bytes
    make_rom(v1.ctx, "gb", other, fs_name="GAMEBOYGAME.gb")
    r = v1.post_rom(gameboygame, v1.auth(role="editor"), add_to_library="true")
    assert r.status_code == 201
    names = sorted(rom.fs_name for rom, _ in library_roms(v1.ctx))
    assert names == ["GAMEBOYGAME (b933af3d).gb", "GAMEBOYGAME.gb"]
    with v1.ctx.storages.library.open("roms/gb/GAMEBOYGAME.gb") as fh:
        assert fh.read() == other  # never overwritten


def test_unsafe_or_empty_titles_get_safe_names(v1, make_gb_rom):
    cases = [
        (b"../../etc", "-..-etc.gb"),
        (b"", None),
        (b"\x00\x00\x00", None),
        (b"A/B:C", "A-B-C.gb"),
        (b".HIDDEN", "HIDDEN.gb"),
    ]
    for title, expected in cases:
        rom = make_gb_rom(title, 0x8000, seed=len(title) + 40)
        md5 = hashlib.md5(rom).hexdigest()
        r = v1.post_rom(rom, v1.auth(role="editor"), add_to_library="true")
        assert r.status_code == 201, r.text
        with v1.ctx.db.read() as s:
            lib = s.get(Rom, int(r.headers["x-romshelf-library-rom-id"]))
        assert lib.fs_name == (expected or f"pkmnapi-{md5[:8]}.gb")
        assert v1.ctx.storages.library.exists(f"roms/gb/{lib.fs_name}")
    assert all(e.key.startswith("roms/gb/") for e in v1.ctx.storages.library.walk())


def test_viewer_cannot_add_to_library(v1, gameboygame):
    r = v1.post_rom(gameboygame, v1.auth(role="viewer"), add_to_library="true")
    assert r.status_code == 403
    assert r.json()["data"]["id"] == "error_roms_forbidden"
    assert "roms.write" in r.json()["data"]["attributes"]["message"]
    v1.assert_headers(r, {"Content-Type": "application/json"})
    assert count(v1.ctx, Rom) == 0 and count(v1.ctx, PkmnapiRomData) == 0 and v1.stored_files() == []


def test_editor_token_without_roms_write_scope_cannot_add(v1, gameboygame):
    r = v1.post_rom(gameboygame, v1.auth(role="editor", scopes=["me.read"]), add_to_library="true")
    assert r.status_code == 403 and r.json()["data"]["id"] == "error_roms_forbidden"


def test_refused_upload_adds_nothing_to_library(v1, gameboygame, make_gb_rom):
    headers = v1.auth(role="editor")
    assert v1.post_rom(gameboygame, headers).status_code == 201
    r = v1.post_rom(make_gb_rom(b"SECOND", 0x8000, seed=3), headers, add_to_library="true")
    v1.assert_error(r, 403, "error_roms_rom_exists", "ROM already exists")
    r = v1.post_rom(b"", v1.auth(role="editor"), add_to_library="true")
    v1.assert_error(r, 400, "error_roms_invalid_rom", "Invalid ROM provided")
    assert count(v1.ctx, Rom) == 0


def test_name_taken_by_a_row_without_file_is_skipped(v1, gameboygame, make_gb_rom):
    stale = make_rom(v1.ctx, "gb", make_gb_rom(b"X", 0x8000, seed=8), fs_name="GAMEBOYGAME.gb")
    v1.ctx.storages.library.delete("roms/gb/GAMEBOYGAME.gb")  # a row whose file went away
    r = v1.post_rom(gameboygame, v1.auth(role="editor"), add_to_library="true")
    assert r.status_code == 201, r.text
    assert r.headers["x-romshelf-library-rom-id"] != str(stale.id)
    assert v1.ctx.storages.library.exists("roms/gb/GAMEBOYGAME (b933af3d).gb")
    assert not v1.ctx.storages.library.exists("roms/gb/GAMEBOYGAME.gb")


def test_concurrent_adds_of_a_new_rom_make_one_library_rom(v1, users, gameboygame):
    import threading

    from romshelf.accounts.dependencies import authenticate_bearer
    from romshelf.pkmnapi import service

    principals = [authenticate_bearer(v1.ctx, users.token(users.make(f"ed{i}", role="editor"))) for i in range(3)]
    received = [service.receive_bytes(v1.ctx, gameboygame) for _ in principals]
    barrier = threading.Barrier(len(principals))
    ids: list[int | None] = []

    def upload(principal, item):
        barrier.wait()
        ids.append(service.store_rom(v1.ctx, principal, item, add_to_library=True).library_rom_id)

    threads = [threading.Thread(target=upload, args=pair) for pair in zip(principals, received, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 3 and len(set(ids)) == 1
    assert count(v1.ctx, Rom) == 1 and [e.name for e in v1.ctx.storages.library.walk()] == ["GAMEBOYGAME.gb"]


def test_add_to_library_uses_the_library_layout_and_reads_the_header(v1, make_gb_rom):
    # a library in RomM's layout B (<platform>/roms/...) gets the ROM there, not in roms/gb
    v1.ctx.storages.library.write("gb/roms/Other (USA).gb", make_gb_rom(b"OTHER", 32 * 1024, seed=1))
    rom = make_gb_rom(b"POKEMON BLUE", 64 * 1024, seed=3)
    r = v1.post_rom(rom, v1.auth(role="editor"), add_to_library="true")
    assert r.status_code == 201, r.text
    [(lib, _slug)] = library_roms(v1.ctx)
    assert (lib.fs_path, lib.fs_name) == ("gb/roms", "POKEMON BLUE.gb")
    with v1.ctx.db.read() as s:
        [f] = list(s.scalars(sa.select(RomFile).where(RomFile.rom_id == lib.id)))
    # the library's ingest parsed the cartridge header, as a scan would
    assert f.header is not None and f.header.get("title") == "POKEMON BLUE"
    assert v1.ctx.storages.library.exists("gb/roms/POKEMON BLUE.gb")
