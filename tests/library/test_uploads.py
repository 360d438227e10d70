"""RomM's chunked upload protocol and the single-request upload, end to end over HTTP."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from factories import count, hashes, make_platform, make_rom, random_bytes
from library_carts import gb_rom

from romshelf.core.timeutil import utcnow
from romshelf.library import uploads
from romshelf.library.models import UploadChunk, UploadSession
from romshelf.roms.models import Rom, RomFile


@pytest.fixture
def editor(users):
    return users.headers(users.editor())


@pytest.fixture
def gb(ctx):
    return make_platform(ctx, "gb")


def start(client, headers, platform_id, name, size, chunks):
    return client.post(
        "/api/roms/upload/start",
        headers={
            **headers,
            "x-upload-platform": str(platform_id),
            "x-upload-filename": name,
            "x-upload-total-size": str(size),
            "x-upload-total-chunks": str(chunks),
        },
    )


def put(client, headers, upload_id, index, data):
    return client.put(
        f"/api/roms/upload/{upload_id}",
        headers={**headers, "x-chunk-index": str(index), "content-type": "application/octet-stream"},
        content=data,
    )


def leftovers(ctx):
    """Everything an upload may leave: chunk files, session rows, temporary files."""
    tmp = ctx.settings.tmp_path
    files = [p for p in tmp.rglob("*") if p.is_file()]
    lib_tmp = [p for p in ctx.settings.library_path.rglob(".romshelf-tmp-*")]
    return files + lib_tmp, count(ctx, UploadSession), count(ctx, UploadChunk)


def test_happy_path(client, ctx, editor, gb):
    r = start(client, editor, gb.id, "Tetris (World).gb", 11, 2)
    assert r.status_code == 201, r.text
    upload_id = r.json()["upload_id"]
    assert str(uuid.UUID(upload_id)) == upload_id
    r = put(client, editor, upload_id, 0, b"ABCDEF")
    assert r.status_code == 200 and r.json() == {"received": 1, "total": 2}
    r = put(client, editor, upload_id, 1, b"GHIJK")
    assert r.json() == {"received": 2, "total": 2}
    r = client.post(f"/api/roms/upload/{upload_id}/complete", headers=editor)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["fs_name"] == "Tetris (World).gb" and body["fs_path"] == "roms/gb"
    assert body["regions"] == ["World"] and body["name"] == "Tetris"
    assert body["md5_hash"] == hashes(b"ABCDEFGHIJK")["md5_hash"]
    path = ctx.settings.library_path / "roms/gb/Tetris (World).gb"
    assert path.read_bytes() == b"ABCDEFGHIJK"
    with ctx.db.read() as s:
        rom = s.scalars(sa.select(Rom)).one()
        f = s.scalars(sa.select(RomFile)).one()
    assert rom.id == body["id"] and rom.fs_size_bytes == 11 and rom.crc_hash == hashes(b"ABCDEFGHIJK")["crc_hash"]
    assert f.file_path == "roms/gb" and f.last_modified == pytest.approx(path.stat().st_mtime, abs=1e-5)
    assert leftovers(ctx) == ([], 0, 0)
    # the scan that follows finds it up to date
    from romshelf.library.scanner import scan

    stats = scan(ctx)
    assert stats.unchanged_roms == 1 and stats.new_roms == 0


def test_chunks_in_any_order_and_resent(client, ctx, editor, gb):
    data = random_bytes(1000, seed=3)
    upload_id = start(client, editor, gb.id, "Game.gb", 1000, 4).json()["upload_id"]
    for i in (3, 1, 0):
        assert put(client, editor, upload_id, i, data[i * 250 : (i + 1) * 250]).status_code == 200
    assert put(client, editor, upload_id, 2, b"x" * 250).status_code == 200
    assert put(client, editor, upload_id, 2, data[500:750]).json() == {"received": 4, "total": 4}  # replaces
    assert client.post(f"/api/roms/upload/{upload_id}/complete", headers=editor).status_code == 201
    assert (ctx.settings.library_path / "roms/gb/Game.gb").read_bytes() == data


def test_missing_chunk(client, ctx, editor, gb):
    upload_id = start(client, editor, gb.id, "Game.gb", 11, 3).json()["upload_id"]
    put(client, editor, upload_id, 0, b"ABCD")
    put(client, editor, upload_id, 2, b"IJK")
    r = client.post(f"/api/roms/upload/{upload_id}/complete", headers=editor)
    assert r.status_code == 400
    assert r.json()["detail"] == "Missing chunks: [1]"
    # the session stays usable
    put(client, editor, upload_id, 1, b"EFGH")
    assert client.post(f"/api/roms/upload/{upload_id}/complete", headers=editor).status_code == 201
    assert (ctx.settings.library_path / "roms/gb/Game.gb").read_bytes() == b"ABCDEFGHIJK"


def test_size_mismatch(client, ctx, editor, gb):
    upload_id = start(client, editor, gb.id, "Game.gb", 11, 2).json()["upload_id"]
    put(client, editor, upload_id, 0, b"ABCDEF")
    put(client, editor, upload_id, 1, b"GH")
    r = client.post(f"/api/roms/upload/{upload_id}/complete", headers=editor)
    assert r.status_code == 400 and "Size mismatch" in r.json()["detail"]
    assert not (ctx.settings.library_path / "roms/gb/Game.gb").exists()


def test_oversize_chunk(client, ctx, editor, gb):
    upload_id = start(client, editor, gb.id, "Game.gb", 11, 2).json()["upload_id"]
    r = put(client, editor, upload_id, 0, b"ABCDEFGHIJK")  # 11: leaves nothing for the other chunk
    assert r.status_code == 413
    assert r.json()["detail"] == "Chunk exceeds maximum allowed size"
    # without Content-Length (streamed), the limit holds while writing
    r = client.put(
        f"/api/roms/upload/{upload_id}",
        headers={**editor, "x-chunk-index": "0"},
        content=iter([b"ABCD", b"EFGH", b"IJK"]),
    )
    assert r.status_code == 413 and r.json()["detail"] == "Chunk exceeds maximum allowed size"
    ctx.settings.upload_max_chunk_bytes = 4
    r = put(client, editor, upload_id, 0, b"ABCDEF")
    assert r.status_code == 413 and r.json()["detail"] == "Chunk size exceeds server maximum"
    files, sessions, chunks = leftovers(ctx)
    assert files == [] and sessions == 1 and chunks == 0


def test_uneven_chunks_like_romm_web_ui(client, ctx, editor, gb):
    """RomM's web UI sends fixed-size chunks and a short last one: 10 + 10 + 5 in 3 chunks."""
    data = random_bytes(25, seed=9)
    upload_id = start(client, editor, gb.id, "Uneven.gb", 25, 3).json()["upload_id"]
    for i, part in enumerate((data[:10], data[10:20], data[20:])):
        assert put(client, editor, upload_id, i, part).status_code == 200
    assert client.post(f"/api/roms/upload/{upload_id}/complete", headers=editor).status_code == 201
    assert (ctx.settings.library_path / "roms/gb/Uneven.gb").read_bytes() == data


def test_chunk_plan_over_server_maximum(client, ctx, editor, gb):
    ctx.settings.upload_max_chunk_bytes = 4
    r = start(client, editor, gb.id, "Game.gb", 11, 2)
    assert r.status_code == 400 and "at least 3 chunks" in r.json()["detail"]
    r = start(client, editor, gb.id, "Game.gb", 2, 3)
    assert r.status_code == 400


def test_chunk_index_out_of_range_and_empty_chunk(client, ctx, editor, gb):
    upload_id = start(client, editor, gb.id, "Game.gb", 11, 2).json()["upload_id"]
    r = put(client, editor, upload_id, 2, b"AB")
    assert r.status_code == 400 and "out of range" in r.json()["detail"]
    assert put(client, editor, upload_id, -1, b"AB").status_code == 422
    r = put(client, editor, upload_id, 0, b"")
    assert r.status_code == 400 and r.json()["detail"] == "Empty chunk"
    assert leftovers(ctx)[0] == []


def test_expired_session(client, ctx, editor, gb):
    upload_id = start(client, editor, gb.id, "Game.gb", 11, 2).json()["upload_id"]
    put(client, editor, upload_id, 0, b"ABCDEF")
    with ctx.db.transaction() as s:
        s.get(UploadSession, upload_id).expires_at = utcnow() - dt.timedelta(seconds=1)
    r = put(client, editor, upload_id, 1, b"GHIJK")
    assert r.status_code == 404 and r.json()["detail"] == "Upload session not found or expired"
    assert leftovers(ctx) == ([], 0, 0)
    assert client.post(f"/api/roms/upload/{upload_id}/complete", headers=editor).status_code == 404


def test_housekeeping_removes_expired_sessions_and_orphans(client, ctx, editor, gb):
    live = start(client, editor, gb.id, "Live.gb", 11, 2).json()["upload_id"]
    put(client, editor, live, 0, b"ABCDEF")
    old = start(client, editor, gb.id, "Old.gb", 11, 2).json()["upload_id"]
    put(client, editor, old, 0, b"ABCDEF")
    with ctx.db.transaction() as s:
        s.get(UploadSession, old).expires_at = utcnow() - dt.timedelta(hours=1)
    orphan = ctx.storages.tmp.write(f"uploads/{uuid.uuid4()}/00000", b"lost")
    import os

    past = (utcnow() - dt.timedelta(hours=2)).timestamp()
    os.utime(ctx.storages.tmp.path(orphan.key).parent, (past, past))
    assert uploads.cleanup_expired(ctx) == 1
    files, sessions, chunks = leftovers(ctx)
    assert [p.parent.name for p in files] == [live]
    assert sessions == 1 and chunks == 1


def test_cancel(client, ctx, editor, gb):
    upload_id = start(client, editor, gb.id, "Game.gb", 11, 2).json()["upload_id"]
    put(client, editor, upload_id, 0, b"ABCDEF")
    assert leftovers(ctx)[0] != []
    r = client.post(f"/api/roms/upload/{upload_id}/cancel", headers=editor)
    assert r.status_code == 204 and r.content == b""
    assert leftovers(ctx) == ([], 0, 0)
    assert client.post(f"/api/roms/upload/{upload_id}/complete", headers=editor).status_code == 404
    assert client.post(f"/api/roms/upload/{upload_id}/cancel", headers=editor).status_code == 204
    assert put(client, editor, upload_id, 1, b"GHIJK").status_code == 404


def test_name_collisions(client, ctx, editor, gb):
    make_rom(ctx, gb, b"existing", fs_name="Tetris (World).gb")
    r = start(client, editor, gb.id, "Tetris (World).gb", 11, 2)
    assert r.status_code == 400 and r.json()["detail"] == "File Tetris (World).gb already exists"
    ctx.storages.library.write("roms/gb/Folder Game/disc.bin", b"x")
    assert start(client, editor, gb.id, "Folder Game", 11, 2).status_code == 400
    # taken between start and complete: 400, the other file untouched, nothing left behind
    upload_id = start(client, editor, gb.id, "Race.gb", 11, 2).json()["upload_id"]
    put(client, editor, upload_id, 0, b"ABCDEF")
    put(client, editor, upload_id, 1, b"GHIJK")
    ctx.storages.library.write("roms/gb/Race.gb", b"the other one")
    r = client.post(f"/api/roms/upload/{upload_id}/complete", headers=editor)
    assert r.status_code == 400 and r.json()["detail"] == "File Race.gb already exists"
    assert (ctx.settings.library_path / "roms/gb/Race.gb").read_bytes() == b"the other one"
    assert leftovers(ctx) == ([], 0, 0)
    assert count(ctx, Rom) == 1


@pytest.mark.parametrize(
    "name",
    ["../evil.gb", "a/b.gb", "a\\b.gb", "..", ".", "%2e%2e%2fevil.gb", "x%00y.gb", ".hidden.gb", "Thumbs.db", "  "],
)
def test_path_traversal_and_bad_names(client, ctx, editor, gb, name):
    r = start(client, editor, gb.id, name, 11, 2)
    assert r.status_code == 400, (name, r.text)
    assert "Invalid file name" in r.json()["detail"]
    assert count(ctx, UploadSession) == 0
    assert not any((ctx.settings.library_path).rglob("evil.gb"))


def test_unicode_names_arrive_intact(client, ctx, editor, gb):
    raw = "Pokémon Rot (Deutschland).gb"
    r = start(client, editor, gb.id, "Pok%C3%A9mon%20Rot%20(Deutschland).gb", 3, 1)
    assert r.status_code == 201
    upload_id = r.json()["upload_id"]
    put(client, editor, upload_id, 0, b"abc")
    assert client.post(f"/api/roms/upload/{upload_id}/complete", headers=editor).json()["fs_name"] == raw
    # raw UTF-8 bytes in the header (sent as Latin-1 by HTTP) too
    r = client.post(
        "/api/roms/upload/start",
        headers=[
            *editor.items(),
            ("x-upload-platform", str(gb.id)),
            ("x-upload-filename", "Pokémon Blau.gb".encode()),
            ("x-upload-total-size", "3"),
            ("x-upload-total-chunks", "1"),
        ],
    )
    upload_id = r.json()["upload_id"]
    put(client, editor, upload_id, 0, b"abc")
    assert client.post(f"/api/roms/upload/{upload_id}/complete", headers=editor).json()["fs_name"] == "Pokémon Blau.gb"


def test_auth_and_ownership(client, ctx, users, editor, gb):
    viewer = users.headers(users.viewer())
    assert start(client, viewer, gb.id, "Game.gb", 11, 2).status_code == 403
    assert start(client, {}, gb.id, "Game.gb", 11, 2).status_code == 401
    upload_id = start(client, editor, gb.id, "Game.gb", 11, 2).json()["upload_id"]
    other = users.headers(users.editor("editor2"))
    r = put(client, other, upload_id, 0, b"ABCDEF")
    assert r.status_code == 403 and r.json()["detail"] == "Forbidden"
    assert client.post(f"/api/roms/upload/{upload_id}/complete", headers=other).status_code == 403
    assert client.post(f"/api/roms/upload/{upload_id}/cancel", headers=other).status_code == 403
    r = put(client, editor, "not-a-uuid", 0, b"A")
    assert r.status_code == 400 and r.json()["detail"] == "Invalid upload ID"
    assert client.post("/api/roms/upload/nope/complete", headers=editor).json()["detail"] == "Invalid upload ID"
    r = put(client, editor, str(uuid.uuid4()), 0, b"A")
    assert r.status_code == 404 and r.json()["detail"] == "Upload session not found or expired"
    assert start(client, editor, 9999, "Game.gb", 11, 2).json()["detail"] == "Platform not found"
    r = client.post("/api/roms/upload/start", headers={**editor, "x-upload-platform": str(gb.id)})
    assert r.status_code == 422


def test_complete_twice(client, ctx, editor, gb):
    upload_id = start(client, editor, gb.id, "Game.gb", 3, 1).json()["upload_id"]
    put(client, editor, upload_id, 0, b"abc")
    assert client.post(f"/api/roms/upload/{upload_id}/complete", headers=editor).status_code == 201
    assert client.post(f"/api/roms/upload/{upload_id}/complete", headers=editor).status_code == 404


def test_uploaded_cartridge_gets_its_header(client, ctx, editor, gb):
    data = gb_rom(b"UPLOADED", size_code=1)
    upload_id = start(client, editor, gb.id, "Uploaded (USA).gb", len(data), 3).json()["upload_id"]
    step = -(-len(data) // 3)
    for i in range(3):
        put(client, editor, upload_id, i, data[i * step : (i + 1) * step])
    body = client.post(f"/api/roms/upload/{upload_id}/complete", headers=editor).json()
    [f] = body["files"]
    assert f["header"]["title"] == "UPLOADED" and f["header_valid"] is True
    assert f["md5_hash"] == hashes(data)["md5_hash"]


def test_upload_restores_a_missing_rom(client, ctx, editor, gb):
    rom = make_rom(ctx, gb, b"old bytes", fs_name="Game.gb")
    ctx.storages.library.delete("roms/gb/Game.gb")
    with ctx.db.transaction() as s:
        s.get(Rom, rom.id).missing_from_fs = True
    upload_id = start(client, editor, gb.id, "Game.gb", 3, 1).json()["upload_id"]
    put(client, editor, upload_id, 0, b"new")
    body = client.post(f"/api/roms/upload/{upload_id}/complete", headers=editor).json()
    assert body["id"] == rom.id
    with ctx.db.read() as s:
        again = s.get(Rom, rom.id)
        assert again.missing_from_fs is False and again.md5_hash == hashes(b"new")["md5_hash"]
        assert s.scalar(sa.select(sa.func.count()).select_from(RomFile)) == 1


# --- single-request upload ------------------------------------------------------------------------
def test_single_upload_raw_body(client, ctx, editor, gb):
    data = random_bytes(5000, seed=5)
    r = client.post(
        "/api/roms/upload",
        headers={**editor, "x-upload-platform": str(gb.id), "x-upload-filename": "Single (Europe).gb"},
        content=data,
    )
    assert r.status_code == 201, r.text
    assert r.json()["sha1_hash"] == hashes(data)["sha1_hash"] and r.json()["regions"] == ["Europe"]
    assert (ctx.settings.library_path / "roms/gb/Single (Europe).gb").read_bytes() == data


def test_single_upload_multipart(client, ctx, editor, gb):
    data = random_bytes(70_000, seed=6)
    r = client.post(
        "/api/roms/upload",
        headers={**editor, "x-upload-platform": str(gb.id)},
        data={"note": "ignored"},
        files={"file": ("Multi Part (Japan).gb", data, "application/octet-stream")},
    )
    assert r.status_code == 201, r.text
    assert r.json()["fs_name"] == "Multi Part (Japan).gb"
    assert r.json()["md5_hash"] == hashes(data)["md5_hash"]
    assert (ctx.settings.library_path / "roms/gb/Multi Part (Japan).gb").read_bytes() == data


def test_single_upload_limits_and_errors(client, ctx, editor, gb):
    ctx.settings.single_upload_max_bytes = 100
    h = {**editor, "x-upload-platform": str(gb.id), "x-upload-filename": "Big.gb"}
    r = client.post("/api/roms/upload", headers=h, content=b"x" * 101)
    assert r.status_code == 413
    r = client.post("/api/roms/upload", headers=h, content=iter([b"x" * 60, b"y" * 60]))  # no Content-Length
    assert r.status_code == 413
    r = client.post("/api/roms/upload", headers=h, files={"f": ("Big.gb", b"z" * 101)})
    assert r.status_code == 413
    assert not (ctx.settings.library_path / "roms/gb/Big.gb").exists()
    assert leftovers(ctx)[0] == []
    r = client.post("/api/roms/upload", headers={**h, "x-upload-filename": "../x.gb"}, content=b"x")
    assert r.status_code == 400
    r = client.post("/api/roms/upload", headers={**editor, "x-upload-platform": str(gb.id)}, content=b"x")
    assert r.status_code == 400 and "file name" in r.json()["detail"]
    r = client.post("/api/roms/upload", headers=h, content=b"")
    assert r.status_code == 400 and r.json()["detail"] == "Empty file"
    client.post("/api/roms/upload", headers={**h, "x-upload-filename": "Taken.gb"}, content=b"x")
    r = client.post("/api/roms/upload", headers={**h, "x-upload-filename": "Taken.gb"}, content=b"y")
    assert r.status_code == 400 and r.json()["detail"] == "File Taken.gb already exists"
    assert (ctx.settings.library_path / "roms/gb/Taken.gb").read_bytes() == b"x"
    r = client.post("/api/roms/upload", headers={**h, "x-upload-platform": "999"}, content=b"x")
    assert r.status_code == 400 and r.json()["detail"] == "Platform not found"
