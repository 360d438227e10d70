"""/v1/roms: every case of pkmnapi's roms.rs, plus what romshelf adds (bad bodies, sharing,
concurrency, exact bytes on every engine)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading

import pytest
from factories import count

from romshelf.pkmnapi import service
from romshelf.pkmnapi.errors import RomExists
from romshelf.pkmnapi.models import PkmnapiRom, PkmnapiRomData

GAMEBOYGAME_MD5 = "b933af3d953bedd6ed3911ef6724cfa2"
ETAG_RE = r'^w/"[0-9a-f]{32}"$'
MiB = 1024 * 1024


def test_fixture_is_pkmnapis_gameboygame(gameboygame):
    assert len(gameboygame) == 0x150
    assert hashlib.md5(gameboygame).hexdigest() == GAMEBOYGAME_MD5
    assert gameboygame[0x14D] == 0x60 and gameboygame[0x14E:0x150] == b"\x1a\x41"


# --- POST ---------------------------------------------------------------------------------------------


def test_post_rom_201(v1, gameboygame):
    r = v1.post_rom(gameboygame, v1.auth())
    assert r.status_code == 201, r.text
    assert v1.masked(r) == v1.rom_body("GAMEBOYGAME", GAMEBOYGAME_MD5, False)
    v1.assert_headers(r, {"Content-Type": "application/json", "ETag": "", "Location": "http://testserver/v1/roms"})
    assert re.match(ETAG_RE, r.headers["etag"]) and len(r.headers["etag"]) == 36
    assert re.fullmatch(r"[A-Za-z0-9]{32}", r.json()["data"]["id"])


def test_post_rom_201_valid_when_md5_is_known_good(v1, make_gb_rom):
    rom = make_gb_rom(b"POKEMON RED", 256 * 1024, seed=1)
    md5 = hashlib.md5(rom).hexdigest()
    headers = v1.auth()
    v1.ctx.settings.gen1_hashes = ("0" * 32, md5.upper())
    r = v1.post_rom(rom, headers)
    assert r.status_code == 201, r.text
    assert v1.masked(r) == v1.rom_body("POKEMON RED", md5, True)
    # valid follows the configured list, like pkmnapi reading VALID_HASHES on each request
    v1.ctx.settings.gen1_hashes = ()
    assert v1.masked(v1.get_rom(headers)) == v1.rom_body("POKEMON RED", md5, False)


def test_default_known_good_hashes_are_red_and_blue(settings):
    assert service.is_known_gen1(settings, "3d45c1ee9abd5738df46d2bdda8b57dc")
    assert service.is_known_gen1(settings, "50927E843568814F7ED45EC4F944BD8B")
    assert not service.is_known_gen1(settings, GAMEBOYGAME_MD5)


def test_post_rom_ignores_content_type(v1, gameboygame):
    for content_type in ("application/json", "multipart/form-data; boundary=x", "text/plain"):
        headers = v1.auth()
        r = v1.post_rom(gameboygame, {**headers, "Content-Type": content_type})
        assert r.status_code == 201, r.text
        assert r.json()["data"]["attributes"]["hash"] == GAMEBOYGAME_MD5


def test_post_rom_400_invalid_rom_empty_body(v1):
    r = v1.post_rom(b"", v1.auth())
    v1.assert_error(r, 400, "error_roms_invalid_rom", "Invalid ROM provided")
    assert v1.stored_files() == []


@pytest.mark.parametrize(
    "case",
    ["short", "non_utf8_title", "cgb_enhanced", "cgb_only", "overlong_utf8", "too_large", "too_large_chunked"],
)
def test_post_rom_400_bad_bodies_store_nothing(v1, make_gb_rom, gameboygame, case):
    headers = v1.auth()
    if case == "short":
        body = gameboygame[:0x14F]
    elif case == "non_utf8_title":
        body = make_gb_rom(b"POKEMON \xff\xfeRED")
    elif case == "cgb_enhanced":  # the CGB flag is the title's 16th byte: 0x80 is not UTF-8
        body = make_gb_rom(b"POKEMON YELLOW\x00\x80")
    elif case == "cgb_only":
        body = make_gb_rom(b"SOME GAME\x00\x00\x00\x00\x00\x00\xc0")
    elif case == "overlong_utf8":
        body = make_gb_rom(b"\xc0\xafGAME")
    elif case == "too_large":  # 9 MiB, over the 8 MiB default; rejected from Content-Length
        body = make_gb_rom(size=9 * MiB)
    else:  # 9 MiB without Content-Length: refused once the stream passes the limit
        rom = make_gb_rom(size=9 * MiB)
        body = (rom[i : i + 256 * 1024] for i in range(0, len(rom), 256 * 1024))
    r = v1.post_rom(body, headers)
    v1.assert_error(r, 400, "error_roms_invalid_rom", "Invalid ROM provided")
    assert v1.stored_files() == []
    assert count(v1.ctx, PkmnapiRom) == 0 and count(v1.ctx, PkmnapiRomData) == 0
    assert v1.get_rom(headers).status_code == 403


def test_size_limit_is_configurable_and_inclusive(v1, make_gb_rom):
    v1.ctx.settings.v1_max_rom_bytes = 64 * 1024
    at_limit = make_gb_rom(size=64 * 1024, seed=3)
    over = make_gb_rom(size=64 * 1024 + 1, seed=4)
    assert v1.post_rom(over, v1.auth()).status_code == 400
    assert v1.post_rom(at_limit, v1.auth()).status_code == 201
    # an 8 MiB ROM (the largest cartridge) fits the default limit
    v1.ctx.settings.v1_max_rom_bytes = 8 * MiB
    assert v1.post_rom(make_gb_rom(size=8 * MiB), v1.auth()).status_code == 201


def test_post_rom_401(v1):
    v1.assert_unauthorized(v1.post_rom(b"", {}))


@pytest.mark.parametrize("header", ["Basic Zm9vOmJhcg==", "Token abc", "Bearer", "xyz"])
def test_not_a_bearer_header_is_401(v1, gameboygame, header):
    v1.assert_unauthorized(v1.post_rom(gameboygame, {"Authorization": header}))
    v1.assert_unauthorized(v1.get_rom({"Authorization": header}))
    v1.assert_unauthorized(v1.delete_rom({"Authorization": header}, "x"))


def test_post_rom_403_rom_exists(v1, gameboygame, make_gb_rom):
    headers = v1.auth()
    assert v1.post_rom(gameboygame, headers).status_code == 201
    r = v1.post_rom(gameboygame, headers)
    v1.assert_error(r, 403, "error_roms_rom_exists", "ROM already exists")
    r = v1.post_rom(make_gb_rom(b"OTHER", seed=9, size=0x8000), headers)
    v1.assert_error(r, 403, "error_roms_rom_exists", "ROM already exists")
    # the refused upload left nothing behind
    assert v1.stored_files() == [f"pkmnapi/rom_data/{hashlib.sha256(gameboygame).hexdigest()}"]
    assert count(v1.ctx, PkmnapiRomData) == 1


# --- GET ------------------------------------------------------------------------------------------------


def test_get_rom_200(v1, gameboygame):
    headers = v1.auth()
    posted = v1.post_rom(gameboygame, headers)
    r = v1.get_rom(headers)
    assert r.status_code == 200
    assert v1.masked(r) == v1.rom_body("GAMEBOYGAME", GAMEBOYGAME_MD5, False)
    assert r.content == posted.content  # same id too
    v1.assert_headers(r, {"Content-Type": "application/json", "ETag": posted.headers["etag"]})


def test_get_rom_401(v1):
    v1.assert_unauthorized(v1.get_rom({}))


def test_get_rom_403_no_rom(v1):
    r = v1.get_rom(v1.auth())
    v1.assert_error(r, 403, "error_roms_no_rom", "No ROM uploaded")


def test_trailing_slash_is_the_same_resource(v1, gameboygame):
    headers = v1.auth()
    assert v1.client.post("/v1/roms/", content=gameboygame, headers=headers).status_code == 201
    assert v1.client.get("/v1/roms/", headers=headers).status_code == 200


# --- DELETE ---------------------------------------------------------------------------------------------


def test_delete_rom_204(v1, gameboygame):
    headers = v1.auth()
    v1.post_rom(gameboygame, headers)
    etag = v1.get_rom(headers).headers["etag"]
    r = v1.delete_rom(headers, etag)
    assert r.status_code == 204
    assert r.content == b""
    v1.assert_headers(r, {})  # Server only: no Content-Type, unlike the published document
    assert v1.get_rom(headers).status_code == 403
    assert v1.stored_files() == [] and count(v1.ctx, PkmnapiRomData) == 0


def test_delete_rom_400_etag_mismatch(v1, gameboygame):
    headers = v1.auth()
    v1.post_rom(gameboygame, headers)
    etag = v1.get_rom(headers).headers["etag"]
    # exact string comparison: no '*', no lists, no weak/strong equivalence, case-sensitive
    for wrong in ("wrong", "*", etag.upper(), "W" + etag[1:], etag[2:], f"{etag}, {etag}", ""):
        r = v1.delete_rom(headers, wrong)
        v1.assert_error(r, 400, "error_etag_mismatch", "ETag mismatch")
    assert v1.get_rom(headers).status_code == 200


def test_delete_rom_401(v1):
    v1.assert_unauthorized(v1.delete_rom({}))


def test_delete_rom_403_no_rom(v1):
    r = v1.delete_rom(v1.auth(), "wrong")
    v1.assert_error(r, 403, "error_roms_no_rom", "No ROM uploaded")


def test_delete_rom_403_etag_missing(v1, gameboygame):
    headers = v1.auth()
    v1.post_rom(gameboygame, headers)
    r = v1.delete_rom(headers)
    v1.assert_error(r, 403, "error_etag_missing", "If-Match header must be set")
    # If-Match is checked before the ROM: no ROM and no If-Match is also "must be set"
    v1.assert_error(v1.delete_rom(v1.auth()), 403, "error_etag_missing", "If-Match header must be set")


def test_delete_then_reupload_gives_a_new_id_and_etag(v1, gameboygame):
    headers = v1.auth()
    first = v1.post_rom(gameboygame, headers)
    assert v1.delete_rom(headers, first.headers["etag"]).status_code == 204
    second = v1.post_rom(gameboygame, headers)
    assert second.status_code == 201
    assert second.json()["data"]["id"] != first.json()["data"]["id"]
    assert second.headers["etag"] != first.headers["etag"]
    assert v1.masked(second) == v1.masked(first)
    # the old ETag no longer deletes anything
    v1.assert_error(v1.delete_rom(headers, first.headers["etag"]), 400, "error_etag_mismatch", "ETag mismatch")
    assert v1.delete_rom(headers, second.headers["etag"]).status_code == 204


# --- ETag, name, storage ----------------------------------------------------------------------------------


def test_etag_is_pkmnapis_formula(v1, gameboygame):
    headers = v1.auth()
    r = v1.post_rom(gameboygame, headers)
    with v1.ctx.db.read() as s:
        row = s.get(PkmnapiRom, r.json()["data"]["id"])
    stamp = row.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    material = f"{row.id}{stamp}GAMEBOYGAME{GAMEBOYGAME_MD5}".encode()
    assert r.headers["etag"] == f'w/"{hashlib.md5(material).hexdigest()}"' == row.etag
    assert row.created_at.microsecond == 0


def test_rom_etag_known_value():
    created = dt.datetime(2020, 9, 25, 19, 10, 57, tzinfo=dt.UTC)
    etag = service.rom_etag("a" * 32, created, "POKEMON RED", "3d45c1ee9abd5738df46d2bdda8b57dc")
    # md5("a"*32 + "2020-09-25T19:10:57Z" + "POKEMON RED" + "3d45c1ee9abd5738df46d2bdda8b57dc")
    assert etag == 'w/"c5dc967ffbadbbef941b18c0715cc62a"'


@pytest.mark.parametrize(
    ("title", "name"),
    [
        (b"POKEMON RED", "POKEMON RED"),
        (b"\x00\x00AB\x00CD  ", "AB\x00CD  "),  # NULs trimmed from both ends only; spaces kept
        (b"  SPACED  ", "  SPACED  "),
        (b"POK\xc3\xa9MON", "POKéMON"),  # any UTF-8 is fine
        (b"SIXTEEN_CHARS_XY", "SIXTEEN_CHARS_XY"),  # 16 bytes: the CGB byte is a letter here
        (b"", ""),
    ],
)
def test_name_is_the_header_title(v1, make_gb_rom, title, name):
    headers = v1.auth()
    r = v1.post_rom(make_gb_rom(title), headers)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["attributes"]["name"] == name
    # stored and read back unchanged on every engine (inner NULs included)
    got = v1.get_rom(headers)
    assert got.content == r.content
    assert json.loads(got.text)["data"]["attributes"]["name"] == name


def test_two_users_same_bytes_share_one_stored_copy(v1, gameboygame):
    alice, bob = v1.auth(), v1.auth()
    a = v1.post_rom(gameboygame, alice)
    b = v1.post_rom(gameboygame, bob)
    assert a.status_code == b.status_code == 201
    assert a.json()["data"]["id"] != b.json()["data"]["id"]
    assert a.headers["etag"] != b.headers["etag"]
    assert v1.masked(a) == v1.masked(b)
    key = f"pkmnapi/rom_data/{hashlib.sha256(gameboygame).hexdigest()}"
    assert v1.stored_files() == [key]
    assert count(v1.ctx, PkmnapiRomData) == 1 and count(v1.ctx, PkmnapiRom) == 2
    # each user sees only their own
    assert v1.get_rom(alice).content == a.content and v1.get_rom(bob).content == b.content
    # deleting one keeps the shared bytes; deleting the last frees them
    assert v1.delete_rom(alice, a.headers["etag"]).status_code == 204
    assert v1.stored_files() == [key] and v1.get_rom(bob).status_code == 200
    with v1.ctx.storages.assets.open(key) as fh:
        assert fh.read() == gameboygame
    assert v1.delete_rom(bob, b.headers["etag"]).status_code == 204
    assert v1.stored_files() == [] and count(v1.ctx, PkmnapiRomData) == 0


def test_rom_bytes_are_never_served(v1, make_gb_rom):
    rom = make_gb_rom(b"SECRET", 0x4000, seed=5)
    headers = v1.auth()
    r = v1.post_rom(rom, headers)
    rom_id = r.json()["data"]["id"]
    for path in ("/v1/roms", f"/v1/roms/{rom_id}", "/v1/roms/download", f"/v1/rom_data/{hashlib.md5(rom).hexdigest()}"):
        for accept in ("application/json", "application/octet-stream", "*/*"):
            resp = v1.client.get(path, headers={**headers, "Accept": accept})
            assert rom[0x150:0x250] not in resp.content
            assert resp.status_code in (200, 404)
            assert resp.headers["content-type"] == "application/json"


def test_unknown_token_is_invalid_access_token(v1, gameboygame, users):
    bogus = {"Authorization": "Bearer rmm_" + "0" * 64}
    jwt_like = {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"}
    for headers in (bogus, jwt_like, {"Authorization": "Bearer "}):
        for r in (v1.post_rom(gameboygame, headers), v1.get_rom(headers), v1.delete_rom(headers, "x")):
            v1.assert_error(r, 400, "error_access_tokens_invalid", "Invalid access token")
    assert v1.stored_files() == []


def test_revoked_token_and_disabled_user_are_refused(v1, client, users, gameboygame):
    admin = users.admin()
    bob, carol = users.make("bob"), users.make("carol")
    bob_headers, carol_headers = users.headers(bob), users.headers(carol)
    assert v1.post_rom(gameboygame, bob_headers).status_code == 201
    for token in client.get("/api/client-tokens", headers=users.basic(bob)).json():
        assert client.delete(f"/api/client-tokens/{token['id']}", headers=users.basic(bob)).status_code == 204
    v1.assert_error(v1.get_rom(bob_headers), 400, "error_access_tokens_invalid", "Invalid access token")
    r = client.put(f"/api/users/{carol.id}", headers=users.basic(admin), data={"enabled": "false"})
    assert r.status_code == 200, r.text
    v1.assert_error(v1.get_rom(carol_headers), 400, "error_access_tokens_invalid", "Invalid access token")


def test_oauth_access_token_and_client_token_share_one_workspace(v1, client, users, gameboygame):
    bob = users.make("bob")
    token = client.post("/api/token", data={"username": "bob", "password": bob.password}).json()["access_token"]
    jwt = {"Authorization": f"Bearer {token}"}
    r = v1.post_rom(gameboygame, jwt)
    assert r.status_code == 201
    assert v1.get_rom(users.headers(bob)).content == r.content
    # a token with a single unrelated /api scope works too: /v1 needs none
    assert v1.get_rom(users.headers(bob, ["me.read"])).content == r.content


def test_lowercase_bearer_scheme_is_accepted(v1, users, gameboygame):
    bob = users.make("bob")
    token = users.token(bob)
    assert v1.post_rom(gameboygame, {"Authorization": f"bearer {token}"}).status_code == 201


def test_concurrent_uploads_by_one_user_store_exactly_one(v1, users, make_gb_rom):
    bob = users.make("bob")
    headers = users.headers(bob)
    from romshelf.accounts.dependencies import authenticate_bearer

    principal = authenticate_bearer(v1.ctx, headers["Authorization"][7:])
    roms = [make_gb_rom(b"RACE%d" % i, 0x8000, seed=i) for i in range(4)]
    received = [service.receive_bytes(v1.ctx, rom) for rom in roms]
    barrier = threading.Barrier(len(received))
    results: list[object] = []

    def upload(item):
        barrier.wait()
        try:
            results.append(service.store_rom(v1.ctx, principal, item))
        except RomExists as e:
            results.append(e)

    threads = [threading.Thread(target=upload, args=(item,)) for item in received]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = [r for r in results if isinstance(r, service.RomView)]
    assert len(stored) == 1 and len(results) == len(received)
    assert count(v1.ctx, PkmnapiRom) == 1 and count(v1.ctx, PkmnapiRomData) == 1
    # the losers' bytes are gone; the winner's are stored under their SHA-256
    winner = next(r for r in received if r.md5 == stored[0].hash)
    assert v1.stored_files() == [f"pkmnapi/rom_data/{winner.sha256}"]


def test_concurrent_http_uploads_by_one_user(v1, users, make_gb_rom):
    headers = users.headers(users.make("carol"))
    roms = [make_gb_rom(b"HTTP%d" % i, 0x10000, seed=10 + i) for i in range(3)]
    barrier = threading.Barrier(len(roms))
    statuses: list[int] = []

    def upload(rom):
        barrier.wait()
        statuses.append(v1.post_rom(rom, headers).status_code)

    threads = [threading.Thread(target=upload, args=(rom,)) for rom in roms]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201, 403, 403]
    assert len(v1.stored_files()) == 1


def test_user_deletion_cascades_and_sweep_frees_the_bytes(v1, client, users, gameboygame):
    admin = users.admin()
    bob = users.make("bob")
    assert v1.post_rom(gameboygame, users.headers(bob)).status_code == 201
    assert client.delete(f"/api/users/{bob.id}", headers=users.basic(admin)).status_code == 200
    assert count(v1.ctx, PkmnapiRom) == 0 and count(v1.ctx, PkmnapiRomData) == 1
    report = service.sweep(v1.ctx)
    assert (report.rom_data, report.files, report.incoming) == (1, 1, 0)
    assert v1.stored_files() == [] and count(v1.ctx, PkmnapiRomData) == 0


def test_sweep_removes_stale_incoming_and_orphan_files_only(v1, gameboygame, make_gb_rom):
    import os
    import time

    headers = v1.auth()
    assert v1.post_rom(gameboygame, headers).status_code == 201
    assets = v1.ctx.storages.assets
    kept = f"pkmnapi/rom_data/{hashlib.sha256(gameboygame).hexdigest()}"
    assets.write("pkmnapi/incoming/stale", b"x")
    old = time.time() - 7200
    os.utime(assets.local_path("pkmnapi/incoming/stale"), (old, old))
    assets.write("pkmnapi/incoming/fresh", b"y")  # an upload in progress
    crashed = assets.local_path("pkmnapi/incoming") / ".romshelf-tmp-crashed"  # a writer killed mid-write
    crashed.write_bytes(b"partial")
    os.utime(crashed, (old, old))
    assets.write("pkmnapi/rom_data/" + "f" * 64, b"z")  # a crash between placing and the row
    report = service.sweep(v1.ctx)
    assert (report.incoming, report.rom_data, report.files) == (2, 0, 1)
    assert v1.stored_files() == ["pkmnapi/incoming/fresh", kept] and not crashed.exists()
    assert v1.get_rom(headers).status_code == 200
