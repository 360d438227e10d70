"""Scanning synthetic libraries: both layouts, multi-file ROMs, archives, headers, and rescans
after add / rename / delete / modify."""

from __future__ import annotations

import io
import os
import time
import zipfile

import pytest
import sqlalchemy as sa
from factories import count, hashes, random_bytes
from library_carts import gb_rom, ines_rom

from romshelf.core.errors import NotFound
from romshelf.library.scanner import SCAN_LOCK, ScanBusy
from romshelf.platforms.models import Platform
from romshelf.roms.models import Rom, RomFile
from romshelf.roms.naming import name_sort_key


def roms(ctx, *where):
    with ctx.db.read() as s:
        return {r.fs_name: r for r in s.scalars(sa.select(Rom).where(*where).order_by(Rom.id))}


def files(ctx, rom_id):
    with ctx.db.read() as s:
        return list(
            s.scalars(sa.select(RomFile).where(RomFile.rom_id == rom_id).order_by(RomFile.file_path, RomFile.file_name))
        )


def test_layout_a_single_file_roms(ctx, library, scan_now):
    data = random_bytes(3000, seed=1)
    path = library.add("gba", "The Legend of Zelda (USA, Europe) (Rev 1) [!].gba", data)
    library.add("gba", "Metroid Fusion (Japan) (En,Ja) (v1.1).gba", b"mf" * 100)
    library.add("gba", "Thumbs.db", b"x")
    library.add("gba", ".hidden.gba", b"x")
    stats = scan_now()
    assert stats.total_platforms == 1 and stats.new_platforms == 1
    assert stats.new_roms == 2 and stats.total_roms == 2
    found = roms(ctx)
    assert set(found) == {
        "The Legend of Zelda (USA, Europe) (Rev 1) [!].gba",
        "Metroid Fusion (Japan) (En,Ja) (v1.1).gba",
    }
    zelda = found["The Legend of Zelda (USA, Europe) (Rev 1) [!].gba"]
    assert zelda.fs_path == "roms/gba"
    assert zelda.full_path == "roms/gba/The Legend of Zelda (USA, Europe) (Rev 1) [!].gba"
    assert zelda.fs_name_no_tags == "The Legend of Zelda"
    assert zelda.fs_name_no_ext == "The Legend of Zelda (USA, Europe) (Rev 1) [!]"
    assert zelda.fs_extension == "gba"
    assert zelda.name == "The Legend of Zelda"
    assert zelda.name_sort_key == name_sort_key("The Legend of Zelda") == "legend of zelda, the"
    assert zelda.regions == ["USA", "Europe"]
    assert zelda.revision == "1"
    assert zelda.tags == ["!"]
    assert zelda.fs_size_bytes == 3000
    assert (zelda.crc_hash, zelda.md5_hash, zelda.sha1_hash) == tuple(hashes(data).values())
    assert zelda.missing_from_fs is False
    metroid = found["Metroid Fusion (Japan) (En,Ja) (v1.1).gba"]
    assert metroid.languages == ["English", "Japanese"] and metroid.version == "1.1"
    [f] = files(ctx, zelda.id)
    assert (f.file_name, f.file_path, f.file_size_bytes, f.category) == (zelda.fs_name, "roms/gba", 3000, None)
    assert f.last_modified == pytest.approx(os.stat(path).st_mtime, abs=1e-5)
    assert (f.crc_hash, f.md5_hash, f.sha1_hash) == tuple(hashes(data).values())
    with ctx.db.read() as s:
        platform = s.scalars(sa.select(Platform)).one()
    assert (platform.fs_slug, platform.slug, platform.name) == ("gba", "gba", "Game Boy Advance")


def test_layout_b(ctx, library, scan_now):
    library.layout = "B"
    library.add("n64", "Paper Mario (USA).z64", b"pm" * 50)
    library.add("snes", "Super Mario World (USA).sfc", b"smw" * 50)
    stats = scan_now()
    assert stats.new_roms == 2 and stats.total_platforms == 2
    found = roms(ctx)
    assert found["Paper Mario (USA).z64"].fs_path == "n64/roms"
    assert found["Super Mario World (USA).sfc"].fs_path == "snes/roms"
    assert files(ctx, found["Paper Mario (USA).z64"].id)[0].file_path == "n64/roms"


def test_multi_file_rom_categories_and_sorted_hash(ctx, library, scan_now):
    d1, d2, tr, man = b"disc-one" * 10, b"disc-two" * 20, b"translation!", b"%PDF manual"
    # written in reverse order: the ROM hash must not depend on directory order
    library.add("psx", "Final Fantasy VII (USA)/FF7 (Disc 2).bin", d2)
    library.add("psx", "Final Fantasy VII (USA)/FF7 (Disc 1).bin", d1)
    library.add("psx", "Final Fantasy VII (USA)/translation/FF7 [T-En].bin", tr)
    library.add("psx", "Final Fantasy VII (USA)/manual/manual.pdf", man)
    library.add("psx", "Final Fantasy VII (USA)/.DS_Store", b"junk")
    library.add("psx", "Final Fantasy VII (USA)/@eaDir/thumb.jpg", b"junk")
    scan_now()
    rom = roms(ctx)["Final Fantasy VII (USA)"]
    assert rom.fs_extension == "" and rom.name == "Final Fantasy VII" and rom.regions == ["USA"]
    assert rom.fs_size_bytes == len(d1) + len(d2) + len(tr) + len(man)
    assert (rom.crc_hash, rom.md5_hash, rom.sha1_hash) == tuple(hashes(d1 + d2).values())
    got = {(f.file_path, f.file_name): f for f in files(ctx, rom.id)}
    base = "roms/psx/Final Fantasy VII (USA)"
    assert set(got) == {
        (base, "FF7 (Disc 1).bin"),
        (base, "FF7 (Disc 2).bin"),
        (f"{base}/translation", "FF7 [T-En].bin"),
        (f"{base}/manual", "manual.pdf"),
    }
    assert got[(base, "FF7 (Disc 1).bin")].category is None  # top level: "game" by default in the API
    assert got[(f"{base}/translation", "FF7 [T-En].bin")].category == "translation"
    assert got[(f"{base}/manual", "manual.pdf")].category == "manual"
    assert got[(f"{base}/translation", "FF7 [T-En].bin")].md5_hash == hashes(tr)["md5_hash"]


def test_zip_rom_hashes_members(ctx, library, scan_now):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("b.gb", b"second")
        zf.writestr("a.gb", b"first")
    library.add("gb", "Pack (USA).zip", buf.getvalue())
    scan_now()
    rom = roms(ctx)["Pack (USA).zip"]
    assert rom.md5_hash == hashes(b"firstsecond")["md5_hash"]
    [f] = files(ctx, rom.id)
    assert f.md5_hash == rom.md5_hash
    assert [m["name"] for m in f.archive_members] == ["a.gb", "b.gb"]
    assert f.file_size_bytes == len(buf.getvalue())


def test_headers_and_headerless_hashes_are_stored(ctx, library, scan_now):
    nes = ines_rom()
    library.add("nes", "Game (USA).nes", nes)
    library.add("gb", "Red (USA).gb", gb_rom(b"POKEMON RED", size_code=1))
    library.add("gb", "Broken (USA).gb", gb_rom(b"BROKEN", bad_global=True))
    scan_now()
    found = roms(ctx)
    [nf] = files(ctx, found["Game (USA).nes"].id)
    assert nf.header["format"] == "nes" and nf.header_valid is True
    assert (nf.headerless_crc_hash, nf.headerless_md5_hash, nf.headerless_sha1_hash) == tuple(hashes(nes[16:]).values())
    assert nf.md5_hash == hashes(nes)["md5_hash"]
    [red] = files(ctx, found["Red (USA).gb"].id)
    assert red.header["title"] == "POKEMON RED" and red.header_valid is True
    assert red.headerless_md5_hash == ""
    [broken] = files(ctx, found["Broken (USA).gb"].id)
    assert broken.header["global_checksum_ok"] is False and broken.header_valid is False


def test_rescan_unchanged_writes_nothing(ctx, library, scan_now):
    for i in range(20):
        library.add("gb", f"Game {i} (USA).gb", random_bytes(500, seed=i))
    scan_now()
    before = {r.id: r.updated_at for r in roms(ctx).values()}
    stats = scan_now()
    assert stats.unchanged_roms == 20
    assert stats.new_roms == stats.changed_roms == stats.files_done == stats.bytes_done == 0
    assert {r.id: r.updated_at for r in roms(ctx).values()} == before


def test_rescan_after_add(ctx, library, scan_now):
    library.add("gb", "Tetris (World).gb", b"tetris" * 10)
    scan_now()
    library.add("gb", "Dr. Mario (World).gb", b"drmario" * 10)
    stats = scan_now()
    assert stats.new_roms == 1 and stats.unchanged_roms == 1
    assert stats.files_done == 1
    assert set(roms(ctx)) == {"Tetris (World).gb", "Dr. Mario (World).gb"}


def test_rescan_after_rename_keeps_the_row(ctx, library, scan_now):
    library.add("gb", "Tetris (USA).gb", b"tetris" * 10)
    scan_now()
    old = roms(ctx)["Tetris (USA).gb"]
    old_file = files(ctx, old.id)[0]
    library.rename("gb", "Tetris (USA).gb", "Tetris (World) (Rev 1).gb")
    stats = scan_now()
    assert stats.renamed_roms == 1 and stats.new_roms == 0 and stats.missing_roms == 0
    found = roms(ctx)
    assert set(found) == {"Tetris (World) (Rev 1).gb"}
    new = found["Tetris (World) (Rev 1).gb"]
    assert new.id == old.id
    assert new.regions == ["World"] and new.revision == "1"
    assert new.fs_name_no_ext == "Tetris (World) (Rev 1)"
    [f] = files(ctx, new.id)
    assert f.id == old_file.id and f.file_name == "Tetris (World) (Rev 1).gb"


def test_rename_keeps_a_custom_name(ctx, library, scan_now):
    library.add("gb", "tetris.gb", b"tetris" * 10)
    scan_now()
    rom = roms(ctx)["tetris.gb"]
    with ctx.db.transaction() as s:
        s.get(Rom, rom.id).name = "Tetris DX Deluxe"
    library.rename("gb", "tetris.gb", "Tetris (World).gb")
    scan_now()
    renamed = roms(ctx)["Tetris (World).gb"]
    assert renamed.id == rom.id and renamed.name == "Tetris DX Deluxe"


def test_rename_with_ambiguous_content_creates_a_new_rom(ctx, library, scan_now):
    library.add("gb", "a.gb", b"same" * 10)
    library.add("gb", "b.gb", b"same" * 10)
    scan_now()
    library.remove("gb", "a.gb")
    library.remove("gb", "b.gb")
    library.add("gb", "c.gb", b"same" * 10)
    stats = scan_now()
    assert stats.renamed_roms == 0 and stats.new_roms == 1 and stats.missing_roms == 2
    found = roms(ctx)
    assert found["a.gb"].missing_from_fs and found["b.gb"].missing_from_fs
    assert not found["c.gb"].missing_from_fs


def test_rescan_after_delete_marks_missing_then_restores(ctx, library, scan_now):
    library.add("gb", "Tetris (World).gb", b"tetris" * 10)
    library.add("gb", "Folder Game/disc.bin", b"disc")
    scan_now()
    ids = {n: r.id for n, r in roms(ctx).items()}
    library.remove("gb", "Tetris (World).gb")
    library.remove("gb", "Folder Game/disc.bin")
    (library.platform_dir("gb") / "Folder Game").rmdir()
    stats = scan_now()
    assert stats.missing_roms == 2
    found = roms(ctx)
    assert all(r.missing_from_fs for r in found.values())
    assert all(f.missing_from_fs for r in found.values() for f in files(ctx, r.id))
    assert count(ctx, Rom) == 2  # never deleted
    # a second scan does not count them again
    assert scan_now().missing_roms == 0
    library.add("gb", "Tetris (World).gb", b"tetris" * 10)
    stats = scan_now()
    back = roms(ctx)["Tetris (World).gb"]
    assert back.id == ids["Tetris (World).gb"] and back.missing_from_fs is False
    assert files(ctx, back.id)[0].missing_from_fs is False


def test_rescan_after_modify_rehashes_in_place(ctx, library, scan_now):
    path = library.add("gb", "Game.gb", b"A" * 100)
    scan_now()
    rom = roms(ctx)["Game.gb"]
    file_id = files(ctx, rom.id)[0].id
    new = b"B" * 100  # same size: the mtime tells
    path.write_bytes(new)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    stats = scan_now()
    assert stats.changed_roms == 1 and stats.files_done == 1
    again = roms(ctx)["Game.gb"]
    assert again.id == rom.id and again.md5_hash == hashes(new)["md5_hash"]
    [f] = files(ctx, rom.id)
    assert f.id == file_id and f.md5_hash == hashes(new)["md5_hash"]
    assert f.last_modified == pytest.approx(os.stat(path).st_mtime, abs=1e-5)


def test_folder_rom_incremental_changes(ctx, library, scan_now):
    library.add("psx", "Game/disc1.bin", b"one")
    library.add("psx", "Game/disc2.bin", b"two")
    scan_now()
    rom = roms(ctx)["Game"]
    assert rom.md5_hash == hashes(b"onetwo")["md5_hash"]
    disc1_id = next(f.id for f in files(ctx, rom.id) if f.file_name == "disc1.bin")
    # a nested file: read alone, the ROM hash stays
    library.add("psx", "Game/manual/m.pdf", b"pdf")
    stats = scan_now()
    assert stats.changed_roms == 1 and stats.files_done == 1
    rom = roms(ctx)["Game"]
    assert rom.md5_hash == hashes(b"onetwo")["md5_hash"]
    assert {f.file_name: f.category for f in files(ctx, rom.id)}["m.pdf"] == "manual"
    # a top-level file changes: the ROM hash follows, file rows keep their ids
    library.add("psx", "Game/disc2.bin", b"TWO!", mtime=time.time() + 10)
    scan_now()
    rom = roms(ctx)["Game"]
    assert rom.md5_hash == hashes(b"oneTWO!")["md5_hash"]
    assert next(f.id for f in files(ctx, rom.id) if f.file_name == "disc1.bin") == disc1_id
    # a top-level file goes away: its row goes, the ROM hash follows
    library.remove("psx", "Game/disc2.bin")
    scan_now()
    rom = roms(ctx)["Game"]
    assert rom.md5_hash == hashes(b"one")["md5_hash"]
    assert sorted(f.file_name for f in files(ctx, rom.id)) == ["disc1.bin", "m.pdf"]
    assert rom.fs_size_bytes == 3 + 3


def test_full_rescan_reads_everything(ctx, library, scan_now):
    for i in range(3):
        library.add("gb", f"g{i}.gb", b"x" * (i + 1))
    scan_now()
    stats = scan_now(full=True)
    assert stats.files_done == 3 and stats.changed_roms == 3 and stats.bytes_done == 6


def test_platform_filter(ctx, library, scan_now):
    library.add("gb", "a.gb", b"a")
    library.add("nes", "b.nes", b"b")
    stats = scan_now(platforms=["gb"])
    assert stats.total_platforms == 1
    assert set(roms(ctx)) == {"a.gb"}
    with pytest.raises(NotFound):
        scan_now(platforms=["nope"])


def test_non_hashable_platform_is_not_read(ctx, library, scan_now):
    library.add("switch", "Zelda (World).nsp", b"nsp" * 100)
    stats = scan_now()
    assert stats.files_done == 0 and stats.bytes_done == 0
    rom = roms(ctx)["Zelda (World).nsp"]
    assert (rom.crc_hash, rom.md5_hash, rom.sha1_hash) == ("", "", "")
    assert rom.fs_size_bytes == 300


def test_vanished_platform_folder(ctx, library, scan_now):
    library.add("gb", "a.gb", b"a")
    library.add("nes", "b.nes", b"b")
    scan_now()
    library.remove("nes", "b.nes")
    library.platform_dir("nes").rmdir()
    stats = scan_now()
    assert stats.missing_platforms == 1 and stats.missing_roms == 1
    with ctx.db.read() as s:
        assert s.scalar(sa.select(Platform.missing_from_fs).where(Platform.fs_slug == "nes")) is True
        assert s.scalar(sa.select(Platform.missing_from_fs).where(Platform.fs_slug == "gb")) is False
    assert roms(ctx)["b.nes"].missing_from_fs is True


def test_only_one_scan_at_a_time(ctx, library, scan_now):
    library.add("gb", "a.gb", b"a")
    with ctx.db.lock(SCAN_LOCK, timeout=0), pytest.raises(ScanBusy) as e:
        scan_now()
    assert e.value.status_code == 409
    assert scan_now().new_roms == 1


def test_scan_progress_reports_totals(ctx, library):
    from romshelf.library.scanner import scan

    for i in range(5):
        library.add("gb", f"g{i}.gb", b"x" * 1000)
    reports = []
    scan(ctx, report=reports.append)
    last = reports[-1]
    assert last["phase"] == "done"
    assert last["files_total"] == last["files_done"] == 5
    assert last["bytes_total"] == last["bytes_done"] == 5000
    assert {"rate_bytes_per_s", "eta_seconds", "files_per_s", "elapsed_seconds"} <= set(last)
    assert any(r["phase"] == "hashing" for r in reports)


def test_scan_cancellation_stops_between_roms(ctx, library):
    from romshelf.core.jobs import JobCanceled
    from romshelf.library.scanner import scan

    for i in range(5):
        library.add("gb", f"g{i}.gb", b"x")
    calls = []

    def check() -> None:
        calls.append(1)
        if len(calls) > 2:
            raise JobCanceled()

    with pytest.raises(JobCanceled):
        scan(ctx, check=check)
    # the next scan carries on where it stopped
    from romshelf.library.scanner import scan as again

    assert again(ctx).total_roms == 5
    assert count(ctx, Rom) == 5


@pytest.mark.parametrize("size", [300, 200 * 1024])  # one thread / two at a time
def test_files_vanishing_between_walk_and_read(ctx, library, size):
    from romshelf.library.layout import detect_layout
    from romshelf.library.scanner import Scanner

    for i in range(6):
        library.add("gb", f"g{i}.gb", random_bytes(size, seed=i))
    scanner = Scanner(ctx)
    plan = scanner.plan(detect_layout(ctx.storages.library), "gb")
    library.remove("gb", "g3.gb")
    scanner.execute(plan)
    assert len(scanner.stats.errors) == 1 and "g3.gb" in scanner.stats.errors[0]
    found = roms(ctx)
    assert sorted(found) == ["g0.gb", "g1.gb", "g2.gb", "g4.gb", "g5.gb"]
    for i in (0, 1, 2, 4, 5):
        assert found[f"g{i}.gb"].md5_hash == hashes(random_bytes(size, seed=i))["md5_hash"]
    # the next scan picks it up as it is now
    assert scan_again(ctx).missing_roms == 0


def scan_again(ctx):
    from romshelf.library.scanner import scan

    return scan(ctx)


def test_empty_library_root_is_refused_not_marked_missing(ctx, library, scan_now):
    import shutil

    from romshelf.core.errors import Conflict

    library.add("gb", "a.gb", b"a")
    scan_now()
    shutil.rmtree(library.root / "roms")  # an unmounted disk looks like this
    with pytest.raises(Conflict, match="is the library mounted"):
        scan_now()
    assert roms(ctx)["a.gb"].missing_from_fs is False


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable folders anyway")
def test_unreadable_folders_are_not_taken_as_gone(ctx, library, scan_now):
    library.add("psx", "Game/disc.bin", b"disc")
    library.add("gb", "a.gb", b"a")
    scan_now()
    folder = library.platform_dir("psx") / "Game"
    folder.chmod(0)
    try:
        stats = scan_now()
    finally:
        folder.chmod(0o755)
    assert any("Game" in e for e in stats.errors)
    assert roms(ctx)["Game"].missing_from_fs is False
    library.platform_dir("gb").chmod(0)
    try:
        stats = scan_now()
    finally:
        library.platform_dir("gb").chmod(0o755)
    assert any("cannot list" in e for e in stats.errors)
    assert roms(ctx)["a.gb"].missing_from_fs is False
