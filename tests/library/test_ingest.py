"""library.service.ingest: any source into the library, rows created at once, nothing left on failure."""

from __future__ import annotations

import io
import zipfile

import pytest
import sqlalchemy as sa
from factories import count, hashes, make_platform, random_bytes

from romshelf.core.errors import AppError, BadRequest
from romshelf.library import service
from romshelf.library.scanner import scan
from romshelf.roms.models import Rom, RomFile


def test_ingest_bytes_creates_rows_and_platform(ctx):
    rom = service.ingest(ctx, "gba", b"advance" * 10, "Game (USA) (Rev 2).gba")
    assert rom.id and rom.fs_path == "roms/gba" and rom.revision == "2"
    assert rom.md5_hash == hashes(b"advance" * 10)["md5_hash"]
    assert [f.file_name for f in rom.files] == ["Game (USA) (Rev 2).gba"]
    assert (ctx.settings.library_path / "roms/gba/Game (USA) (Rev 2).gba").read_bytes() == b"advance" * 10
    assert scan(ctx).unchanged_roms == 1


def test_ingest_follows_layout_b(ctx):
    ctx.storages.library.write("snes/roms/Other.sfc", b"x")
    rom = service.ingest(ctx, "gb", b"gb", "Game.gb")
    assert rom.fs_path == "gb/roms"
    assert (ctx.settings.library_path / "gb/roms/Game.gb").exists()


def test_ingest_stream_without_known_size_and_path(ctx, tmp_path):
    data = random_bytes(10_000, seed=1)
    rom = service.ingest(ctx, "gb", iter([data[:3000], data[3000:]]), "Chunks.gb")
    assert rom.sha1_hash == hashes(data)["sha1_hash"]
    src = tmp_path / "local.gb"
    src.write_bytes(data[:500])
    rom = service.ingest(ctx, "gb", src, "Local.gb")
    assert rom.crc_hash == hashes(data[:500])["crc_hash"]
    rom = service.ingest(ctx, "gb", io.BytesIO(data[:700]), "FileObj.gb")
    assert rom.fs_size_bytes == 700


def test_ingest_folder_rom(ctx, tmp_path):
    rom = service.ingest(
        ctx,
        "psx",
        {"disc2.bin": b"two", "disc1.bin": b"one", "manual/manual.pdf": b"pdf"},
        "Final Fantasy VII (USA)",
    )
    assert rom.md5_hash == hashes(b"onetwo")["md5_hash"]
    assert sorted((f.file_name, f.category) for f in rom.files) == [
        ("disc1.bin", None),
        ("disc2.bin", None),
        ("manual.pdf", "manual"),
    ]
    folder = tmp_path / "Crash (USA)"
    (folder / "screenshots").mkdir(parents=True)
    (folder / "crash.bin").write_bytes(b"crash")
    (folder / "screenshots" / "shot.png").write_bytes(b"png")
    (folder / ".DS_Store").write_bytes(b"junk")
    rom = service.ingest(ctx, "psx", folder, "Crash (USA)")
    assert sorted(f.file_name for f in rom.files) == ["crash.bin", "shot.png"]
    assert scan(ctx).unchanged_roms == 2
    with pytest.raises(BadRequest):
        service.ingest(ctx, "psx", {"../evil.bin": b"x"}, "Evil")
    with pytest.raises(BadRequest):
        service.ingest(ctx, "psx", {}, "Empty")
    assert not list(ctx.settings.library_path.rglob(".romshelf-tmp-*"))
    assert not (ctx.settings.library_path / "roms/psx/Evil").exists()


def test_ingest_archive_hashes_members(ctx):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("game.gb", b"inside")
    rom = service.ingest(ctx, "gb", buf.getvalue(), "Zipped (USA).zip")
    assert rom.md5_hash == hashes(b"inside")["md5_hash"]
    assert rom.files[0].archive_members[0]["name"] == "game.gb"


def test_ingest_non_hashable_platform(ctx):
    rom = service.ingest(ctx, "switch", b"nsp" * 10, "Game.nsp")
    assert rom.md5_hash == "" and rom.fs_size_bytes == 30


def test_ingest_refusals_leave_nothing(ctx):
    make_platform(ctx, "gb")
    service.ingest(ctx, "gb", b"first", "Taken.gb")
    for name in ("Taken.gb", "../x.gb", "a/b.gb", "Thumbs.db", ".hidden", ""):
        with pytest.raises(AppError):
            service.ingest(ctx, "gb", b"second", name)
    with pytest.raises(AppError) as e:
        service.ingest(ctx, "gb", b"x" * 101, "Big.gb", max_bytes=100)
    assert e.value.status_code == 413
    with pytest.raises(AppError) as e:
        service.ingest(ctx, "gb", iter([b"x" * 60, b"x" * 60]), "Big.gb", max_bytes=100)
    assert e.value.status_code == 413
    with pytest.raises(BadRequest, match="Size mismatch"):
        service.ingest(ctx, "gb", io.BytesIO(b"short"), "Short.gb", size=10)
    assert (ctx.settings.library_path / "roms/gb/Taken.gb").read_bytes() == b"first"
    assert sorted(p.name for p in (ctx.settings.library_path / "roms/gb").iterdir()) == ["Taken.gb"]
    assert count(ctx, Rom) == 1 and count(ctx, RomFile) == 1


def test_ingest_after_a_concurrent_scan_created_the_row(ctx):
    # The row exists already (a scan found the file first): ingest updates it, same id.
    rom = service.ingest(ctx, "gb", b"v1", "Game.gb")
    ctx.storages.library.delete("roms/gb/Game.gb")
    again = service.ingest(ctx, "gb", b"v2", "Game.gb")
    assert again.id == rom.id and again.md5_hash == hashes(b"v2")["md5_hash"]
    with ctx.db.read() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(RomFile)) == 1
