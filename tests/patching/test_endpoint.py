"""POST /api/roms/{id}/patch: library or uploaded patches, multipart / JSON / urlencoded bodies,
X-Patch-Validated, the size limit, errors as 4xx with messages, no temp files left behind."""

from __future__ import annotations

import os
import subprocess
from urllib.parse import unquote

import pytest
import sqlalchemy as sa
from factories import make_rom, random_bytes
from patching import encoders as enc

from romshelf.roms.models import RomFile

SRC = random_bytes(200_000, seed=31)
TGT = bytes(SRC[:1000]) + b"HACKED!" + bytes(SRC[1007:150_000]) + random_bytes(60_000, seed=32)


@pytest.fixture
def auth(users):
    return users.headers(users.admin())


@pytest.fixture
def game(ctx):
    """A folder ROM holding the game and some patches, like a ROM hack collection."""
    rom = make_rom(
        ctx,
        "snes",
        {
            "Chrono Trigger (USA).sfc": SRC,
            "patch/Hack v1.2.bps": enc.bps(SRC, TGT),
            "patch/hack.ips": enc.ips(SRC, TGT),
            "patch/broken.ups": enc.ups(SRC, TGT)[:-30],
            "patch/readme.txt": b"just text",
        },
        fs_name="Chrono Trigger (USA)",
    )
    with ctx.db.read() as s:
        files = {f.file_name: f.id for f in s.scalars(sa.select(RomFile).where(RomFile.rom_id == rom.id))}
    return files


def work_leftovers(ctx) -> list[str]:
    root = ctx.storages.tmp.path("patching")
    return os.listdir(root) if root.exists() else []


def filename_star(response) -> str:
    cd = response.headers["content-disposition"]
    return unquote(cd.split("filename*=UTF-8''", 1)[1])


def test_library_patch_multipart(client, auth, ctx, game):
    rom_id, patch_id = game["Chrono Trigger (USA).sfc"], game["Hack v1.2.bps"]
    r = client.post(
        f"/api/roms/{rom_id}/patch", data={"patch_file_id": str(patch_id)}, files={"x": ("", b"")}, headers=auth
    )
    assert r.status_code == 200, r.text
    assert r.content == TGT
    assert r.headers["x-patch-validated"] == "true"
    assert r.headers["x-patch-format"] == "BPS"
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-length"] == str(len(TGT))
    assert filename_star(r) == "Chrono Trigger (USA) (patched-Hack v1.2).sfc"
    assert work_leftovers(ctx) == []


def test_json_body_and_output_name(client, auth, ctx, game):
    rom_id = game["Chrono Trigger (USA).sfc"]
    r = client.post(
        f"/api/roms/{rom_id}/patch",
        json={"patch_file_id": game["hack.ips"], "output_file_name": "Chrono Hack.zip"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    assert r.content == TGT and r.headers["x-patch-format"] == "IPS"
    assert filename_star(r) == "Chrono Hack.sfc"  # the ROM's extension, always
    r = client.post(
        f"/api/roms/{rom_id}/patch",
        content=f"patch_file_id={game['hack.ips']}&output_file_name=Pok%C3%A9mon%20%27Hack%27",
        headers={**auth, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200 and r.content == TGT
    assert filename_star(r) == "Pokémon 'Hack'.sfc"
    assert work_leftovers(ctx) == []


def test_uploaded_patch_detected_by_magic(client, auth, ctx, game):
    rom_id = game["Chrono Trigger (USA).sfc"]
    # a UPS patch named .ips: the content decides
    r = client.post(
        f"/api/roms/{rom_id}/patch",
        files={"patch_file": ("My Translation.ips", enc.ups(SRC, TGT), "application/octet-stream")},
        data={"output_file_name": "Translated"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    assert r.content == TGT
    assert r.headers["x-patch-format"] == "UPS" and r.headers["x-patch-validated"] == "true"
    assert filename_star(r) == "Translated.sfc"
    r = client.post(
        f"/api/roms/{rom_id}/patch",
        files={"patch_file": ("C:\\fakepath\\Fan Translation.ppf", enc.ppf_from(3, SRC, TGT))},
        headers=auth,
    )
    assert r.status_code == 200 and r.content == TGT
    assert filename_star(r) == "Chrono Trigger (USA) (patched-Fan Translation).sfc"
    assert work_leftovers(ctx) == []


def test_every_format_over_http(client, auth, ctx, game, tmp_path):
    rom_id = game["Chrono Trigger (USA).sfc"]
    (tmp_path / "s").write_bytes(SRC)
    (tmp_path / "t").write_bytes(TGT)
    subprocess.run(
        ["xdelta3", "-e", "-f", "-s", str(tmp_path / "s"), str(tmp_path / "t"), str(tmp_path / "p")], check=True
    )
    patches = {
        "IPS": enc.ips(SRC, TGT),
        "UPS": enc.ups(SRC, TGT),
        "BPS": enc.bps(SRC, TGT),
        "PPF1": enc.ppf_from(1, SRC, TGT),
        "APS (GBA)": enc.aps_gba(SRC, TGT),
        "RUP": enc.rup(SRC, TGT),
        "xdelta/VCDIFF": (tmp_path / "p").read_bytes(),
    }
    for fmt, patch in patches.items():
        r = client.post(f"/api/roms/{rom_id}/patch", files={"patch_file": ("p.bin", patch)}, headers=auth)
        assert r.status_code == 200, (fmt, r.text)
        assert r.content == TGT, fmt
        assert r.headers["x-patch-format"] == fmt
        assert r.headers["x-patch-validated"] == "true", fmt


def test_checksum_mismatch_is_applied_but_not_validated(client, auth, ctx, game):
    rom_id = game["Chrono Trigger (USA).sfc"]
    other = random_bytes(len(SRC), seed=77)
    r = client.post(f"/api/roms/{rom_id}/patch", files={"patch_file": ("other.bps", enc.bps(other, TGT))}, headers=auth)
    assert r.status_code == 200
    assert r.headers["x-patch-validated"] == "false"
    assert len(r.content) == len(TGT)


def test_bad_requests(client, auth, ctx, game):
    rom_id = game["Chrono Trigger (USA).sfc"]
    url = f"/api/roms/{rom_id}/patch"
    both = "Provide exactly one of a library patch file or an uploaded patch file"
    r = client.post(url, headers=auth)
    assert r.status_code == 400 and r.json() == {"detail": both}
    r = client.post(url, json={}, headers=auth)
    assert r.status_code == 400 and r.json() == {"detail": both}
    r = client.post(
        url, data={"patch_file_id": str(game["hack.ips"])}, files={"patch_file": ("a.ips", b"PATCHEOF")}, headers=auth
    )
    assert r.status_code == 400 and r.json() == {"detail": both}
    r = client.post(url, files={"patch_file": ("a.ips", b"")}, headers=auth)
    assert r.status_code == 400 and r.json() == {"detail": "Uploaded patch file is empty"}
    r = client.post(url, json={"patch_file_id": "abc"}, headers=auth)
    assert r.status_code == 400 and r.json() == {"detail": "patch_file_id must be an integer"}
    r = client.post(url, content=b"{not json", headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json() == {"detail": "Request body is not valid JSON"}
    r = client.post(url, json={"patch_file_id": game["readme.txt"]}, headers=auth)
    assert r.status_code == 400
    assert r.json()["detail"].startswith("Unsupported or invalid patch format (the file starts with 6a 75 73 74")
    r = client.post(url, json={"patch_file_id": game["broken.ups"]}, headers=auth)
    assert r.status_code == 400 and r.json() == {
        "detail": "UPS patch is damaged or truncated: its own CRC32 does not match"
    }
    r = client.post(url, files={"patch_file": ("t.ips", enc.ips(SRC, TGT)[:-40])}, headers=auth)
    assert r.status_code == 400 and r.json()["detail"].startswith("IPS patch is truncated at byte")
    r = client.post(url, content=b"--x\r\nbroken", headers={**auth, "Content-Type": "multipart/form-data; boundary=x"})
    assert r.status_code == 400
    assert work_leftovers(ctx) == []


def test_hostile_patches_are_400s(client, auth, ctx, game):
    rom_id = game["Chrono Trigger (USA).sfc"]
    import struct
    import zlib

    body = b"BPS1" + enc.varint(len(SRC)) + enc.varint(1 << 45) + enc.varint(0) + struct.pack("<II", 0, 0)
    claim = body + struct.pack("<I", zlib.crc32(body))
    r = client.post(f"/api/roms/{rom_id}/patch", files={"patch_file": ("huge.bps", claim)}, headers=auth)
    assert r.status_code == 400 and "claims an output of 32.0 TiB" in r.json()["detail"]
    far = enc.ips_records([(0xFFFFFF, "rle", 0xFFFF, 0x42)])
    ctx.settings.patch_max_bytes = 1024 * 1024
    r = client.post(f"/api/roms/{rom_id}/patch", files={"patch_file": ("far.ips", far)}, headers=auth)
    assert r.status_code == 400 and "more than the limit of 1.0 MiB" in r.json()["detail"]
    assert work_leftovers(ctx) == []


def test_patch_max_bytes(client, auth, ctx, game):
    rom_id = game["Chrono Trigger (USA).sfc"]
    ctx.settings.patch_max_bytes = 100_000
    r = client.post(f"/api/roms/{rom_id}/patch", json={"patch_file_id": game["hack.ips"]}, headers=auth)
    assert r.status_code == 400
    assert r.json() == {"detail": f"ROM file is too large to patch ({len(SRC)} bytes, max 100000)"}
    ctx.settings.patch_max_bytes = len(SRC) + 10
    big_patch = b"PATCH" + bytes(len(SRC) + 100)
    r = client.post(f"/api/roms/{rom_id}/patch", files={"patch_file": ("big.ips", big_patch)}, headers=auth)
    assert r.status_code == 400 and r.json()["detail"].startswith("Patch file is too large")
    assert work_leftovers(ctx) == []


def test_not_found(client, auth, ctx, game):
    rom_id = game["Chrono Trigger (USA).sfc"]
    r = client.post("/api/roms/999999/patch", json={"patch_file_id": game["hack.ips"]}, headers=auth)
    assert r.status_code == 404 and r.json() == {"detail": "ROM file with id 999999 not found"}
    r = client.post(f"/api/roms/{rom_id}/patch", json={"patch_file_id": 999999}, headers=auth)
    assert r.status_code == 404 and r.json() == {"detail": "Patch file with id 999999 not found"}
    key = "roms/snes/Chrono Trigger (USA)/patch/hack.ips"
    ctx.storages.library.delete(key)
    r = client.post(f"/api/roms/{rom_id}/patch", json={"patch_file_id": game["hack.ips"]}, headers=auth)
    assert r.status_code == 404 and r.json() == {"detail": "Patch file 'hack.ips' is missing from filesystem"}
    ctx.storages.library.delete("roms/snes/Chrono Trigger (USA)/Chrono Trigger (USA).sfc")
    r = client.post(f"/api/roms/{rom_id}/patch", json={"patch_file_id": game["Hack v1.2.bps"]}, headers=auth)
    assert r.status_code == 404
    assert r.json() == {"detail": "ROM file 'Chrono Trigger (USA).sfc' is missing from filesystem"}
    assert work_leftovers(ctx) == []


def test_xdelta3_missing_is_a_clear_error(client, auth, ctx, game):
    ctx.settings.xdelta3_path = "/nonexistent/xdelta3"
    rom_id = game["Chrono Trigger (USA).sfc"]
    patch = b"\xd6\xc3\xc4\x00" + bytes(20)
    r = client.post(f"/api/roms/{rom_id}/patch", files={"patch_file": ("a.xdelta", patch)}, headers=auth)
    assert r.status_code == 400
    assert r.json()["detail"].startswith("xdelta3 is not installed on the server")


def test_auth(client, users, game):
    rom_id = game["Chrono Trigger (USA).sfc"]
    assert client.post(f"/api/roms/{rom_id}/patch", json={"patch_file_id": game["hack.ips"]}).status_code == 401
    h = users.headers(users.make("limited"), scopes=["me.read"])
    assert (
        client.post(f"/api/roms/{rom_id}/patch", json={"patch_file_id": game["hack.ips"]}, headers=h).status_code == 403
    )
    viewer = users.headers(users.viewer())
    r = client.post(f"/api/roms/{rom_id}/patch", json={"patch_file_id": game["hack.ips"]}, headers=viewer)
    assert r.status_code == 200 and r.content == TGT


def test_stale_work_folders_are_swept(ctx):
    from romshelf.patching import service

    old = service.work_dir(ctx)
    (old / "output").write_bytes(b"x")
    os.utime(old, (0, 0))
    fresh = service.work_dir(ctx)
    assert service.sweep_stale(ctx) == 1
    assert not old.exists() and fresh.exists()
