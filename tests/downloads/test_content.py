"""Single-file downloads: GET/HEAD /api/roms/{id}/content/{name} and /api/roms/{id}/files/content.

Headers (Content-Length, Content-Disposition, ETag, Last-Modified), Range edge cases, If-Range,
If-None-Match / If-Match, names with spaces, unicode and quotes, and the rule that the bytes
come from the database, never from the name in the URL.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from downloads.httputil import parse_byteranges
from factories import make_rom, random_bytes

from romshelf.roms.models import RomFile

DATA = random_bytes(10_000, seed=1)


@pytest.fixture
def auth(users):
    return users.headers(users.admin())


@pytest.fixture
def rom(ctx):
    return make_rom(ctx, "gba", DATA, fs_name="Advance Wars (USA).gba")


def files_of(ctx, rom) -> dict[str, RomFile]:
    with ctx.db.read() as s:
        return {f.file_name: f for f in s.scalars(sa.select(RomFile).where(RomFile.rom_id == rom.id))}


def url(rom, name="Advance Wars (USA).gba"):
    return f"/api/roms/{rom.id}/content/{quote(name)}"


def test_full_download_headers(client, auth, rom):
    r = client.get(url(rom), headers=auth)
    assert r.status_code == 200
    assert r.content == DATA
    assert r.headers["content-length"] == str(len(DATA))
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["etag"] == f'"{hashlib.sha1(DATA).hexdigest()}"'
    assert r.headers["content-disposition"] == (
        "attachment; filename=\"Advance Wars (USA).gba\"; filename*=UTF-8''Advance%20Wars%20%28USA%29.gba"
    )
    mtime = os.stat(ctx_path(client, rom)).st_mtime
    assert email.utils.parsedate_to_datetime(r.headers["last-modified"]).timestamp() == int(mtime)


def ctx_path(client, rom):
    return client.app.state.ctx.storages.library.path(f"{rom.fs_path}/{rom.fs_name}")


def test_head_sends_headers_only(client, auth, rom):
    r = client.head(url(rom), headers=auth)
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == str(len(DATA))
    assert r.headers["etag"] == f'"{hashlib.sha1(DATA).hexdigest()}"'
    r = client.head(url(rom), headers={**auth, "Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == b""
    assert r.headers["content-range"] == f"bytes 10-19/{len(DATA)}"
    assert r.headers["content-length"] == "10"


def test_the_url_name_only_names_the_download(client, auth, rom):
    r = client.get(url(rom, "whatever.zip"), headers=auth)
    assert r.content == DATA
    assert 'filename="whatever.zip"' in r.headers["content-disposition"]
    r = client.get(f"/api/roms/{rom.id}/content/sub/dir/x.bin", headers=auth)
    assert r.status_code == 200 and r.content == DATA
    assert 'filename="x.bin"' in r.headers["content-disposition"]


@pytest.mark.parametrize(
    ("name", "ascii_part", "star_part"),
    [
        ("Pokémon – Émeraude (France).gba", 'filename="Pok_mon _ _meraude (France).gba"', "Pok%C3%A9mon%20%E2%80%93"),
        (
            "Say \"Cheese\" & 'Co'.gba",
            "filename=\"Say 'Cheese' & 'Co'.gba\"",
            "Say%20%22Cheese%22%20%26%20%27Co%27.gba",
        ),
        ("ゼルダの伝説.gba", 'filename="______.gba"', "%E3%82%BC%E3%83%AB"),
        ("spaces  in   name.gba", 'filename="spaces  in   name.gba"', "spaces%20%20in%20%20%20name.gba"),
    ],
)
def test_names_with_spaces_unicode_and_quotes(client, auth, ctx, name, ascii_part, star_part):
    rom = make_rom(ctx, "gba", DATA, fs_name=name)
    r = client.get(url(rom, name), headers=auth)
    assert r.status_code == 200 and r.content == DATA
    cd = r.headers["content-disposition"]
    assert cd.startswith("attachment; ")
    assert ascii_part in cd
    assert "filename*=UTF-8''" + star_part in cd
    # the header value is plain ASCII whatever the name
    cd.encode("ascii")


def test_control_characters_never_reach_a_header(client, auth, rom):
    r = client.get(f"/api/roms/{rom.id}/content/evil%0DSet-Cookie%3A%20x%3D1%01.gba", headers=auth)
    assert r.status_code == 200
    assert "set-cookie" not in r.headers
    assert "\r" not in r.headers["content-disposition"] and "\x01" not in r.headers["content-disposition"]
    assert 'filename="evilSet-Cookie: x=1.gba"' in r.headers["content-disposition"]


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),  # first byte
        ("bytes=9999-9999", 9999, 9999),  # last byte
        ("bytes=-1", 9999, 9999),  # suffix: last byte
        ("bytes=-500", 9500, 9999),  # suffix
        ("bytes=-20000", 0, 9999),  # suffix longer than the file: all of it
        ("bytes=9990-", 9990, 9999),  # open-ended
        ("bytes=100-199", 100, 199),
        ("bytes=9000-50000", 9000, 9999),  # end clamped
        ("BYTES = 5 - 6", 5, 6),  # case and whitespace tolerated
    ],
)
def test_single_ranges(client, auth, rom, header, first, last):
    r = client.get(url(rom), headers={**auth, "Range": header})
    assert r.status_code == 206
    assert r.content == DATA[first : last + 1]
    assert r.headers["content-range"] == f"bytes {first}-{last}/{len(DATA)}"
    assert r.headers["content-length"] == str(last - first + 1)
    assert r.headers["etag"]


@pytest.mark.parametrize("header", ["bytes=10000-", "bytes=10000-10005", "bytes=-0", "bytes=20000-30000,10000-"])
def test_range_past_the_end_is_416(client, auth, rom, header):
    r = client.get(url(rom), headers={**auth, "Range": header})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(DATA)}"
    assert r.json() == {"detail": "Requested range not satisfiable"}


@pytest.mark.parametrize(
    "header", ["bytes=5-2", "items=0-5", "bytes=abc", "bytes=", "bytes=1-2-3", "bytes=1.5-2", "bytes=+1-2"]
)
def test_invalid_range_is_ignored(client, auth, rom, header):
    r = client.get(url(rom), headers={**auth, "Range": header})
    assert r.status_code == 200
    assert r.content == DATA


def test_multi_range(client, auth, rom):
    r = client.get(url(rom), headers={**auth, "Range": "bytes=0-9, 100-109, -5"})
    assert r.status_code == 206
    assert r.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert int(r.headers["content-length"]) == len(r.content)
    parts = parse_byteranges(r.headers["content-type"], r.content)
    assert parts == [
        (f"bytes 0-9/{len(DATA)}", DATA[0:10]),
        (f"bytes 100-109/{len(DATA)}", DATA[100:110]),
        (f"bytes 9995-9999/{len(DATA)}", DATA[9995:]),
    ]


def test_overlapping_ranges_are_coalesced(client, auth, rom):
    # A client cannot make the server send the same bytes over and over.
    r = client.get(url(rom), headers={**auth, "Range": ",".join(["bytes=0-"] + ["0-"] * 200)})
    assert r.status_code == 206
    assert r.content == DATA
    r = client.get(url(rom), headers={**auth, "Range": "bytes=0-99,50-149,500-509"})
    parts = parse_byteranges(r.headers["content-type"], r.content)
    assert [p[0] for p in parts] == [f"bytes 0-149/{len(DATA)}", f"bytes 500-509/{len(DATA)}"]


def test_if_range(client, auth, rom):
    etag = client.head(url(rom), headers=auth).headers["etag"]
    last_modified = client.head(url(rom), headers=auth).headers["last-modified"]
    r = client.get(url(rom), headers={**auth, "Range": "bytes=5000-", "If-Range": etag})
    assert r.status_code == 206 and r.content == DATA[5000:]
    # a stale validator: the whole (new) representation, not a splice of two versions
    r = client.get(url(rom), headers={**auth, "Range": "bytes=5000-", "If-Range": '"0123456789abcdef"'})
    assert r.status_code == 200 and r.content == DATA
    r = client.get(url(rom), headers={**auth, "Range": "bytes=5000-", "If-Range": "W/" + etag})
    assert r.status_code == 200 and r.content == DATA
    r = client.get(url(rom), headers={**auth, "Range": "bytes=5000-", "If-Range": last_modified})
    assert r.status_code == 206 and r.content == DATA[5000:]
    r = client.get(url(rom), headers={**auth, "Range": "bytes=5000-", "If-Range": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert r.status_code == 200 and r.content == DATA


def test_conditional_get(client, auth, rom):
    etag = client.head(url(rom), headers=auth).headers["etag"]
    r = client.get(url(rom), headers={**auth, "If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    assert r.headers["etag"] == etag
    r = client.get(url(rom), headers={**auth, "If-None-Match": f'"other", W/{etag}'})
    assert r.status_code == 304
    r = client.get(url(rom), headers={**auth, "If-None-Match": '"other"'})
    assert r.status_code == 200 and r.content == DATA
    r = client.get(url(rom), headers={**auth, "If-Match": '"other"'})
    assert r.status_code == 412
    r = client.get(url(rom), headers={**auth, "If-Match": etag, "Range": "bytes=0-1"})
    assert r.status_code == 206
    lm = r.headers["last-modified"]
    assert client.get(url(rom), headers={**auth, "If-Modified-Since": lm}).status_code == 304
    assert (
        client.get(url(rom), headers={**auth, "If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code == 200
    )


def test_empty_file(client, auth, ctx):
    rom = make_rom(ctx, "gb", b"", fs_name="empty.gb")
    r = client.get(url(rom, "empty.gb"), headers=auth)
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "0"
    r = client.get(url(rom, "empty.gb"), headers={**auth, "Range": "bytes=0-"})
    assert r.status_code == 416


def test_file_changed_since_scan_serves_disk_truth(client, auth, ctx, rom):
    """The row says 10 000 bytes with a SHA-1; the disk now has other bytes: serve the disk's
    bytes with the disk's length, and an ETag that is not the stale hash."""
    new = random_bytes(12_345, seed=9)
    ctx.storages.library.write(f"{rom.fs_path}/{rom.fs_name}", new)
    r = client.get(url(rom), headers=auth)
    assert r.status_code == 200 and r.content == new
    assert r.headers["content-length"] == str(len(new))
    assert r.headers["etag"] != f'"{hashlib.sha1(DATA).hexdigest()}"'


def test_errors(client, auth, users, ctx, rom):
    assert client.get(url(rom)).status_code == 401
    viewer = users.make("nobody")
    r = client.get(url(rom), headers=users.headers(viewer, scopes=["me.read"]))
    assert r.status_code == 403
    r = client.get("/api/roms/999999/content/x.gba", headers=auth)
    assert r.status_code == 404 and r.json() == {"detail": "Rom with id '999999' not found"}
    r = client.get(url(rom) + "?file_ids=1,x", headers=auth)
    assert r.status_code == 400
    assert r.json() == {"detail": "Invalid file ID format. Must be comma-separated integers."}
    r = client.get(url(rom) + "?file_ids=999999", headers=auth)
    assert r.status_code == 404 and r.json() == {"detail": f"No files found for ROM {rom.id}"}
    ctx.storages.library.delete(f"{rom.fs_path}/{rom.fs_name}")
    r = client.get(url(rom), headers=auth)
    assert r.status_code == 404
    assert r.json() == {"detail": f"File {rom.fs_name} not found on disk for ROM {rom.id}"}


def test_files_content_by_rom_file_id(client, auth, ctx):
    rom = make_rom(
        ctx,
        "psx",
        {
            "Game.bin": b"bin" * 100,
            "manual/Manual.pdf": b"%PDF-1.4 ...",
            "cover.png": b"\x89PNG....",
            "notes.md": b"# hi",
        },
        fs_name="Game (USA)",
    )
    files = files_of(ctx, rom)
    r = client.get(f"/api/roms/{files['Game.bin'].id}/files/content/ignored.txt", headers=auth)
    assert r.status_code == 200 and r.content == b"bin" * 100
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"].startswith('attachment; filename="Game.bin"')
    assert "x-content-type-options" not in r.headers
    r = client.get(f"/api/roms/{files['Manual.pdf'].id}/files/content/x", headers=auth)
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"].startswith("inline; ")
    assert r.headers["x-content-type-options"] == "nosniff"
    r = client.get(f"/api/roms/{files['cover.png'].id}/files/content/x", headers=auth)
    assert r.headers["content-type"] == "image/png" and r.headers["content-disposition"].startswith("inline")
    # a .md outside a manual folder is just a file
    r = client.get(f"/api/roms/{files['notes.md'].id}/files/content/x", headers=auth)
    assert r.headers["content-disposition"].startswith("attachment")
    r = client.get(f"/api/roms/{files['Game.bin'].id}/files/content/x", headers={**auth, "Range": "bytes=-3"})
    assert r.status_code == 206 and r.content == b"bin"
    r = client.head(f"/api/roms/{files['Game.bin'].id}/files/content/x", headers=auth)
    assert r.status_code == 200 and r.headers["content-length"] == "300"
    assert client.get("/api/roms/999999/files/content/x", headers=auth).json() == {"detail": "File not found"}


def test_single_file_of_a_folder_rom_via_file_ids(client, auth, ctx):
    rom = make_rom(ctx, "psx", {"a.bin": b"A" * 10, "b.bin": b"B" * 20}, fs_name="Two Files")
    fid = files_of(ctx, rom)["b.bin"].id
    r = client.get(f"/api/roms/{rom.id}/content/b.bin?file_ids={fid}", headers=auth)
    assert r.status_code == 200 and r.content == b"B" * 20
    assert r.headers["content-type"] == "application/octet-stream"


def test_etag_without_stored_hashes(client, auth, ctx):
    rom = make_rom(ctx, "ps2", random_bytes(100, seed=3), fs_name="big.iso")
    with ctx.db.session() as s:
        rf = s.get(RomFile, files_of(ctx, rom)["big.iso"].id)
        rf.sha1_hash = rf.md5_hash = rf.crc_hash = ""
        s.commit()
    r = client.get(url(rom, "big.iso"), headers=auth)
    etag = r.headers["etag"]
    assert etag.startswith('"64-') and not etag.startswith("W/")
    assert client.get(url(rom, "big.iso"), headers={**auth, "If-None-Match": etag}).status_code == 304
