"""Zips of multi-file ROMs and bulk downloads: exact Content-Length, deterministic bytes, m3u,
Range on the zip itself (resume), Zip64, CRCs the database does not know, files that changed."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
import zlib
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from downloads.httputil import HttpRangeFile, crc32_zeros, parse_byteranges
from factories import make_platform, make_rom, random_bytes

from romshelf.collections.models import Collection, CollectionRom
from romshelf.core.streaming import SourceChanged
from romshelf.downloads import crc as crc_cache
from romshelf.downloads.ziplayout import ZipLayout, ZipMember
from romshelf.roms.models import Rom, RomFile, RomUser

DISCS = {
    "Final Fantasy VII (Disc 1).cue": b'FILE "Final Fantasy VII (Disc 1).bin" BINARY\n',
    "Final Fantasy VII (Disc 1).bin": random_bytes(70_000, seed=11),
    "Final Fantasy VII (Disc 2).cue": b'FILE "Final Fantasy VII (Disc 2).bin" BINARY\n',
    "Final Fantasy VII (Disc 2).bin": random_bytes(50_000, seed=12),
    "manual/Manual.pdf": b"%PDF-1.4 manual",
}


@pytest.fixture
def auth(users):
    return users.headers(users.admin())


@pytest.fixture
def ff7(ctx):
    return make_rom(ctx, "psx", DISCS, fs_name="Final Fantasy VII (USA)")


def content_url(rom, name="Final Fantasy VII (USA)"):
    return f"/api/roms/{rom.id}/content/{quote(name)}"


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        return {i.filename: zf.read(i) for i in zf.infolist()}


def files_of(ctx, rom_id):
    with ctx.db.read() as s:
        return list(s.scalars(sa.select(RomFile).where(RomFile.rom_id == rom_id).order_by(RomFile.file_name)))


def test_folder_rom_is_a_zip_with_m3u(client, auth, ff7, tmp_path):
    r = client.get(content_url(ff7), headers=auth)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["content-length"] == str(len(r.content))
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["etag"].startswith('"z-')
    assert 'filename="Final Fantasy VII (USA).zip"' in r.headers["content-disposition"]
    entries = unzip(r.content)
    assert entries == {
        **DISCS,
        "Final Fantasy VII (USA).m3u": b"Final Fantasy VII (Disc 1).cue\nFinal Fantasy VII (Disc 2).cue",
    }
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
    # Info-ZIP agrees (and so does any streaming reader: sizes and CRCs are in the local headers)
    path = tmp_path / "ff7.zip"
    path.write_bytes(r.content)
    out = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_zip_is_deterministic_and_head_matches(client, auth, ff7):
    a = client.get(content_url(ff7), headers=auth)
    b = client.get(content_url(ff7), headers=auth)
    assert a.content == b.content and a.headers["etag"] == b.headers["etag"]
    h = client.head(content_url(ff7), headers=auth)
    assert h.status_code == 200 and h.content == b""
    assert h.headers["content-length"] == a.headers["content-length"]
    assert h.headers["etag"] == a.headers["etag"]
    assert client.get(content_url(ff7), headers={**auth, "If-None-Match": a.headers["etag"]}).status_code == 304


def test_m3u_rules(client, auth, ctx):
    # no .cue: the game files, not the manual
    rom = make_rom(ctx, "psx", {"d1.chd": b"1", "d2.chd": b"2", "manual/m.pdf": b"p"}, fs_name="Chd Game")
    entries = unzip(client.get(content_url(rom, "Chd Game"), headers=auth).content)
    assert entries["Chd Game.m3u"] == b"d1.chd\nd2.chd"
    # the ROM brings its own playlist: none added
    rom = make_rom(ctx, "psx", {"a.cue": b"c", "a.bin": b"b", "Own.m3u": b"a.cue"}, fs_name="Own Playlist")
    entries = unzip(client.get(content_url(rom, "Own Playlist"), headers=auth).content)
    assert set(entries) == {"a.cue", "a.bin", "Own.m3u"}
    # the client's name (minus .zip) names both the zip and the playlist
    r = client.get(
        content_url(rom, "Mine.zip")
        + "?file_ids="
        + ",".join(str(f.id) for f in files_of(ctx, rom.id) if f.file_name != "Own.m3u"),
        headers=auth,
    )
    assert 'filename="Mine.zip"' in r.headers["content-disposition"]
    assert unzip(r.content)["Mine.m3u"] == b"a.cue"


def test_hidden_folder_and_file_ids(client, auth, ctx, ff7):
    ids = [f.id for f in files_of(ctx, ff7.id) if f.file_name.endswith(".bin")]
    r = client.get(content_url(ff7) + f"?file_ids={ids[0]},{ids[1]}&hidden_folder=true", headers=auth)
    entries = unzip(r.content)
    assert set(entries) == {
        ".hidden/Final Fantasy VII (Disc 1).bin",
        ".hidden/Final Fantasy VII (Disc 2).bin",
        "Final Fantasy VII (USA).m3u",
    }
    assert entries["Final Fantasy VII (USA).m3u"] == (
        b".hidden/Final Fantasy VII (Disc 1).bin\n.hidden/Final Fantasy VII (Disc 2).bin"
    )


def test_resumed_zip_download_unzips_to_the_same_bytes(client, auth, ff7):
    full = client.get(content_url(ff7), headers=auth)
    etag, size = full.headers["etag"], len(full.content)
    # the download breaks off somewhere inside the second member; resume from there
    for cut in (1, 29, 31, 1000, 70_123, size // 2, size - 22, size - 1):
        first = full.content[:cut]
        r = client.get(content_url(ff7), headers={**auth, "Range": f"bytes={cut}-", "If-Range": etag})
        assert r.status_code == 206, cut
        assert r.headers["content-range"] == f"bytes {cut}-{size - 1}/{size}"
        assert unzip(first + r.content) == unzip(full.content)
        assert first + r.content == full.content


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=0-0", 0, 0), ("bytes=-1", -1, -1), ("bytes=-22", -22, -1), ("bytes=10-99", 10, 99)],
)
def test_zip_range_edges(client, auth, ff7, header, first, last):
    full = client.get(content_url(ff7), headers=auth).content
    size = len(full)
    r = client.get(content_url(ff7), headers={**auth, "Range": header})
    assert r.status_code == 206
    a, b = first % size, last % size
    assert r.content == full[a : b + 1]
    assert r.headers["content-range"] == f"bytes {a}-{b}/{size}"


def test_zip_range_past_end_and_stale_if_range(client, auth, ff7):
    full = client.get(content_url(ff7), headers=auth)
    size = len(full.content)
    r = client.get(content_url(ff7), headers={**auth, "Range": f"bytes={size}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{size}"
    r = client.get(content_url(ff7), headers={**auth, "Range": "bytes=100-", "If-Range": '"z-stale"'})
    assert r.status_code == 200 and r.content == full.content
    r = client.get(content_url(ff7), headers={**auth, "Range": "bytes=0-3,-22"})
    parts = parse_byteranges(r.headers["content-type"], r.content)
    assert parts == [(f"bytes 0-3/{size}", b"PK\x03\x04"), (f"bytes {size - 22}-{size - 1}/{size}", full.content[-22:])]


def test_changed_rom_invalidates_the_resume(client, auth, ctx, ff7):
    before = client.get(content_url(ff7), headers=auth)
    key = f"{ff7.fs_path}/{ff7.fs_name}/Final Fantasy VII (Disc 2).bin"
    ctx.storages.library.write(key, random_bytes(50_001, seed=99))
    r = client.get(content_url(ff7), headers={**auth, "Range": "bytes=1000-", "If-Range": before.headers["etag"]})
    assert r.status_code == 200  # a whole new archive, not a splice of two
    assert r.headers["etag"] != before.headers["etag"]
    entries = unzip(r.content)  # sizes come from the disk, CRCs are computed: a valid zip
    assert entries["Final Fantasy VII (Disc 2).bin"] == random_bytes(50_001, seed=99)


def test_missing_crcs_are_computed_and_only_when_needed(client, auth, ctx, ff7):
    with ctx.db.session() as s:
        s.execute(sa.update(RomFile).where(RomFile.rom_id == ff7.id).values(crc_hash=""))
        s.commit()
    h = client.head(content_url(ff7), headers=auth)
    assert h.status_code == 200
    assert len(crc_cache._cache) == 0  # HEAD and Content-Length never read a byte
    r = client.get(content_url(ff7), headers=auth)
    assert int(h.headers["content-length"]) == len(r.content)
    assert h.headers["etag"] == r.headers["etag"]
    assert unzip(r.content) == unzip(client.get(content_url(ff7), headers=auth).content)
    assert len(crc_cache._cache) == 5


def test_file_rewritten_in_place_aborts_instead_of_corrupting(client, auth, ctx):
    """Same size, mtime put back: the stored CRC is now wrong. The stream must stop before the
    member's last bytes (a short download), and the next request builds a correct zip."""
    rom = make_rom(ctx, "psx", {"a.bin": random_bytes(3 * 1024 * 1024, seed=1), "b.bin": b"b"}, fs_name="Sneaky")
    path = ctx.storages.library.path(f"{rom.fs_path}/Sneaky/a.bin")
    st = os.stat(path)
    changed = random_bytes(3 * 1024 * 1024, seed=2)
    with open(path, "r+b") as fh:
        fh.write(changed)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(SourceChanged):
        client.get(content_url(rom, "Sneaky"), headers=auth)
    r = client.get(content_url(rom, "Sneaky"), headers=auth)
    assert r.status_code == 200 and unzip(r.content)["a.bin"] == changed


def test_unknown_rom_and_missing_member(client, auth, ctx, ff7):
    assert client.get("/api/roms/424242/content/x", headers=auth).status_code == 404
    ctx.storages.library.delete(f"{ff7.fs_path}/{ff7.fs_name}/manual/Manual.pdf")
    r = client.get(content_url(ff7), headers=auth)
    assert r.status_code == 404
    assert r.json() == {"detail": f"File Manual.pdf not found on disk for ROM {ff7.id}"}


# --- Zip64 -------------------------------------------------------------------------------------


def test_forced_zip64_layout_is_readable(ctx, tmp_path):
    """Every Zip64 record on small members: zipfile and Info-ZIP both read it back."""
    lib = ctx.storages.library
    members = []
    for i, data in enumerate([b"", b"x", random_bytes(5000, seed=5)]):
        key = f"z/{i}.bin"
        stored = lib.write(key, data)
        members.append(ZipMember(name=f"dir/ü{i}.bin", size=len(data), mtime=stored.mtime, storage=lib, key=key))
    layout = ZipLayout(members, force_zip64=True)
    data = b"".join(layout.iter_bytes())
    assert len(data) == layout.size
    assert data[-22 - 20 - 56 : -22 - 20][:4] == b"PK\x06\x06"  # zip64 end record
    path = tmp_path / "z64.zip"
    path.write_bytes(data)
    assert subprocess.run(["unzip", "-t", str(path)], capture_output=True).returncode == 0
    assert unzip(data)["dir/ü2.bin"] == random_bytes(5000, seed=5)
    for a in range(0, layout.size, 97):
        assert b"".join(layout.iter_bytes(a, min(500, layout.size - a))) == data[a : a + 500]


def test_zip64_over_http_with_a_sparse_5gib_member(client, auth, ctx):
    """A real > 4 GiB member (a sparse file): the archive's directory needs Zip64 sizes and
    offsets. Read it through Range requests only (never the 5 GiB), and the member after it."""
    platform = make_platform(ctx, "ps2")
    lib = ctx.storages.library
    folder = "roms/ps2/Huge Game"
    big = 5 * 1024**3 + 7
    lib.makedirs(folder)
    with open(lib.path(f"{folder}/huge.iso"), "wb") as fh:
        fh.truncate(big)
    tail = random_bytes(1000, seed=4)
    lib.write(f"{folder}/zz.txt", tail)
    with ctx.db.session() as s:
        rom = Rom(platform_id=platform.id, fs_name="Huge Game", fs_path="roms/ps2", fs_size_bytes=big + 1000)
        rom.files = [
            RomFile(
                file_name="huge.iso",
                file_path=folder,
                file_size_bytes=big,
                last_modified=lib.stat(f"{folder}/huge.iso").mtime,
                crc_hash=f"{crc32_zeros(big):08x}",
            ),
            RomFile(
                file_name="zz.txt",
                file_path=folder,
                file_size_bytes=1000,
                last_modified=lib.stat(f"{folder}/zz.txt").mtime,
                crc_hash=f"{zlib.crc32(tail):08x}",
            ),
        ]
        s.add(rom)
        s.commit()
        rom_id = rom.id
    f = HttpRangeFile(client, f"/api/roms/{rom_id}/content/Huge%20Game", auth)
    assert f.size > big
    with zipfile.ZipFile(f) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        assert infos["huge.iso"].file_size == big
        assert crc32_zeros(big) == infos["huge.iso"].CRC
        assert infos["zz.txt"].header_offset > 0xFFFFFFFF
        assert zf.read("zz.txt") == tail
        assert zf.read("Huge Game.m3u") == b"huge.iso\nzz.txt"
        with zf.open("huge.iso") as member:
            assert member.read(4096) == bytes(4096)
    assert f.requests < 30


# --- bulk downloads ----------------------------------------------------------------------------


@pytest.fixture
def library(ctx):
    a = make_rom(ctx, "gba", random_bytes(3000, seed=21), fs_name="Alpha (USA).gba")
    b = make_rom(ctx, "gba", random_bytes(4000, seed=22), fs_name="Beta (Europe).gba")
    c = make_rom(ctx, "psx", {"c.cue": b"cue", "c.bin": random_bytes(5000, seed=23)}, fs_name="Gamma (Japan)")
    return a, b, c


def test_bulk_by_ids(client, auth, library):
    a, _b, c = library
    r = client.get(f"/api/roms/download?rom_ids={a.id},{c.id}", headers=auth)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["content-length"] == str(len(r.content))
    entries = unzip(r.content)
    assert list(entries) == [
        "roms/gba/Alpha (USA).gba",
        "roms/psx/Gamma (Japan)/c.bin",
        "roms/psx/Gamma (Japan)/c.cue",
    ]
    assert entries["roms/gba/Alpha (USA).gba"] == random_bytes(3000, seed=21)
    summary = "\n".join(
        ["roms/gba/Alpha (USA).gba:3000", "roms/psx/Gamma (Japan)/c.bin:5000", "roms/psx/Gamma (Japan)/c.cue:3"]
    )
    expected = f"2 ROMs ({zlib.crc32(summary.encode()):08x}).zip"
    assert f'filename="{expected}"' in r.headers["content-disposition"]


def test_bulk_resume_and_filename(client, auth, library):
    a, b, c = library
    u = f"/api/roms/download?rom_ids={a.id},{b.id},{c.id}&filename=My%20%22Best%22%20Games"
    full = client.get(u, headers=auth)
    assert "filename*=UTF-8''My%20%22Best%22%20Games.zip" in full.headers["content-disposition"]
    etag = full.headers["etag"]
    cut = len(full.content) // 3
    r = client.get(u, headers={**auth, "Range": f"bytes={cut}-", "If-Range": etag})
    assert r.status_code == 206
    assert unzip(full.content[:cut] + r.content) == unzip(full.content)
    assert len(unzip(full.content)) == 4


def test_bulk_selectors(client, auth, users, ctx, library):
    a, b, c = library
    gba = a.platform_id
    r = client.get(f"/api/roms/download?platform_id={gba}", headers=auth)
    assert set(unzip(r.content)) == {"roms/gba/Alpha (USA).gba", "roms/gba/Beta (Europe).gba"}
    admin_id = users.make("collector").id
    with ctx.db.session() as s:
        mine = Collection(user_id=admin_id, name="mine", is_public=False)
        s.add(mine)
        s.flush()
        s.add_all(
            [CollectionRom(collection_id=mine.id, rom_id=b.id), CollectionRom(collection_id=mine.id, rom_id=c.id)]
        )
        s.commit()
        coll_id = mine.id
    owner = users.headers(users.make("owner2"))
    # someone else's private collection: not found
    r = client.get(f"/api/roms/download?collection_id={coll_id}", headers=owner)
    assert r.status_code == 404 and r.json() == {"detail": f"Collection with id {coll_id} not found"}
    with ctx.db.session() as s:
        s.get(Collection, coll_id).is_public = True
        s.commit()
    r = client.get(f"/api/roms/download?collection_id={coll_id}", headers=owner)
    assert set(unzip(r.content)) == {
        "roms/gba/Beta (Europe).gba",
        "roms/psx/Gamma (Japan)/c.bin",
        "roms/psx/Gamma (Japan)/c.cue",
    }
    # selectors combine (intersection)
    r = client.get(f"/api/roms/download?collection_id={coll_id}&platform_id={gba}", headers=owner)
    assert set(unzip(r.content)) == {"roms/gba/Beta (Europe).gba"}


def test_bulk_excludes_roms_the_caller_hid(client, users, ctx, library):
    a, b, _c = library
    viewer = users.make("hider")
    with ctx.db.session() as s:
        s.add(RomUser(rom_id=a.id, user_id=viewer.id, hidden=True))
        s.commit()
    h = users.headers(viewer)
    r = client.get(f"/api/roms/download?rom_ids={a.id},{b.id}", headers=h)
    assert set(unzip(r.content)) == {"roms/gba/Beta (Europe).gba"}
    r = client.get(f"/api/roms/download?rom_ids={a.id}", headers=h)
    assert r.status_code == 404 and r.json() == {"detail": "No ROMs found with the provided IDs"}
    # others still see it
    r = client.get(f"/api/roms/download?rom_ids={a.id}", headers=users.headers(users.admin()))
    assert r.status_code == 200


def test_bulk_errors(client, auth, users, ctx, library):
    a, _b, _c = library
    for bad in ("1,x", "abc", ",,", "-1", "1.5"):
        r = client.get(f"/api/roms/download?rom_ids={bad}", headers=auth)
        assert r.status_code == 400, bad
        assert r.json() == {"detail": "Invalid ROM ID format. Must be comma-separated integers."}
    r = client.get("/api/roms/download", headers=auth)
    assert r.status_code == 400 and r.json() == {"detail": "No ROM IDs or platform/collection selector provided"}
    r = client.get("/api/roms/download?rom_ids=999998,999999", headers=auth)
    assert r.status_code == 404 and r.json() == {"detail": "No ROMs found with the provided IDs"}
    r = client.get("/api/roms/download?platform_id=999999", headers=auth)
    assert r.status_code == 404 and r.json() == {"detail": "No ROMs found to download"}
    # smart / virtual collections resolve through the collections domain once it provides them
    for sel in ("smart_collection_id=1", "virtual_collection_id=abc"):
        r = client.get(f"/api/roms/download?{sel}", headers=auth)
        assert r.status_code in (200, 400, 404), r.text
    assert client.get(f"/api/roms/download?rom_ids={a.id}").status_code == 401
    r = client.get(f"/api/roms/download?rom_ids={a.id}", headers=users.headers(users.make("x"), scopes=["me.read"]))
    assert r.status_code == 403


def test_bulk_skips_files_missing_from_disk(client, auth, ctx, library):
    a, b, _c = library
    ctx.storages.library.delete(f"{a.fs_path}/{a.fs_name}")
    r = client.get(f"/api/roms/download?rom_ids={a.id},{b.id}", headers=auth)
    assert r.status_code == 200
    assert set(unzip(r.content)) == {"roms/gba/Beta (Europe).gba"}
    assert r.headers["x-romshelf-skipped-files"] == "1"
    r = client.get(f"/api/roms/download?rom_ids={a.id}", headers=auth)
    assert r.status_code == 404


def test_bulk_head(client, auth, library):
    a, b, _c = library
    u = f"/api/roms/download?rom_ids={a.id},{b.id}"
    h = client.head(u, headers=auth)
    g = client.get(u, headers=auth)
    assert h.status_code == 200 and h.content == b""
    assert h.headers["content-length"] == str(len(g.content))
