"""GET /api/roms: envelope, flags, paging, sorting, validation, caching and ETags."""

from __future__ import annotations

import datetime as dt

import pytest

from romshelf.roms.models import RomUser
from romshelf.roms.schemas import RomListPage


def ids_of(body):
    return [i["id"] for i in body["items"]]


def test_default_envelope_matches_romm(lib, get_list):
    rom = lib.rom("Tetris (World).gb")
    body = get_list()
    assert set(body) == {"items", "total", "limit", "offset", "char_index", "rom_id_index", "filter_values"}
    assert (body["total"], body["limit"], body["offset"]) == (1, 50, 0)
    assert body["rom_id_index"] == [rom.id]
    assert body["char_index"] == {"t": 0}
    item = body["items"][0]
    assert item["files"] == [] and item["sibling_roms"] == []
    assert item["screenshot_path"] is None
    assert item["regions"] == ["World"] and item["name"] == "Tetris"
    assert item["rom_user"]["id"] == -1 and item["rom_user"]["rating"] == 0
    assert item["has_simple_single_file"] is True and item["has_multiple_files"] is False
    assert item["full_path"] == "roms/gb/Tetris (World).gb"
    assert item["platform_slug"] == "gb" and item["platform_display_name"] == "Game Boy"
    assert item["metadatum"]["player_count"] == "1"
    RomListPage.model_validate(body)  # every field RomM's schema names, with the right types
    assert set(body["filter_values"]) == {
        "genres",
        "franchises",
        "collections",
        "companies",
        "game_modes",
        "age_ratings",
        "player_counts",
        "regions",
        "languages",
        "tags",
        "platforms",
    }
    assert body["filter_values"]["regions"] == ["World"]
    assert body["filter_values"]["platforms"] == [rom.platform_id]


def test_sidecar_flags(lib, get_list):
    a = lib.rom("Alpha.gb")
    b = lib.rom("Beta.gb")
    body = get_list(with_rom_id_index="false")
    assert body["rom_id_index"] == [] and body["total"] == 2
    body = get_list(with_rom_id_index="false", with_total="false")
    assert body["total"] is None and body["rom_id_index"] == []
    assert ids_of(body) == [a.id, b.id]
    body = get_list(with_total="false")
    assert body["total"] == 2 and body["rom_id_index"] == [a.id, b.id]
    body = get_list(with_char_index="false")
    assert body["char_index"] == {}
    body = get_list(with_filter_values="false")
    assert all(v == [] for v in body["filter_values"].values())
    body = get_list(with_files="true")
    files = body["items"][0]["files"]
    assert [f["file_name"] for f in files] == ["Alpha.gb"]
    assert files[0]["is_top_level"] is True and files[0]["category"] == "game"
    assert body["items"][0]["sibling_roms"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 10_001},
        {"offset": -1},
        {"order_by": "bogus"},
        {"order_dir": "sideways"},
        {"updated_after": "not-a-date"},
        {"updated_after": "2024-13-45T99:00:00"},
        {"genres": "Action", "genres_logic": "maybe"},
        {"statuses": "sleeping"},
        {"metadata_providers": "nope"},
        {"virtual_collection_id": "%%%"},
        {"platform_ids": "abc"},
        {"matched": "perhaps"},
        {"collection_id": 0},
    ],
)
def test_bad_parameters_are_422(client, auth, params):
    r = client.get("/api/roms", params=params, headers=auth)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail[0]["loc"][0] == "query"


def test_limits_at_the_edges_are_fine(lib, get_list):
    lib.rom("A.gb")
    assert get_list(limit=1)["limit"] == 1
    assert get_list(limit=10_000)["limit"] == 10_000
    assert get_list(offset=5)["items"] == []


def test_auth_and_scope(client, users, lib):
    lib.rom("A.gb")
    assert client.get("/api/roms").status_code == 401
    assert client.get("/api/roms").json() == {"detail": "Not authenticated"}
    viewer = users.viewer()
    assert client.get("/api/roms", headers=users.headers(viewer)).status_code == 200
    no_scope = users.headers(viewer, scopes=["me.read"])
    r = client.get("/api/roms", headers=no_scope)
    assert r.status_code == 403 and r.json() == {"detail": "Forbidden"}
    assert client.get("/api/roms/identifiers", headers=no_scope).status_code == 403
    assert client.get("/api/roms/filters", headers=no_scope).status_code == 403


ORDERS = ["", "name", "fs_name", "fs_size_bytes", "created_at", "updated_at", "id", "first_release_date", "rating"]


@pytest.mark.parametrize("order_by", ORDERS)
@pytest.mark.parametrize("order_dir", ["asc", "desc"])
def test_pages_never_repeat_or_skip(lib, get_list, add, admin, order_by, order_dir):
    made = []
    for i in range(13):
        # many equal keys: same name, same size, half with the same release date
        meta = {"first_release_date": "2001-01-01"} if i % 2 else {}
        rom = lib.rom(f"Same Name [{i}].gb", data=b"x" * 10, name="Same Name", manual_metadata=meta)
        made.append(rom.id)
    add(RomUser(rom_id=made[3], user_id=admin.id, rating=7))
    full = get_list(order_by=order_by, order_dir=order_dir, limit=100)
    assert sorted(full["rom_id_index"]) == sorted(made)
    assert ids_of(full) == full["rom_id_index"]
    paged = []
    for offset in range(0, 13, 4):
        body = get_list(order_by=order_by, order_dir=order_dir, limit=4, offset=offset, with_rom_id_index="false")
        assert body["total"] == 13
        paged += ids_of(body)
    assert paged == full["rom_id_index"]
    again = get_list(order_by=order_by, order_dir=order_dir, limit=100)
    assert again["rom_id_index"] == full["rom_id_index"]  # deterministic


def test_name_order_uses_the_sort_key(lib, get_list):
    z10 = lib.rom("Zelda 10.gb")
    z9 = lib.rom("Zelda 9.gb")
    the = lib.rom("The Adventure.gb")
    b = lib.rom("banana.gb")
    body = get_list()
    assert body["rom_id_index"] == [the.id, b.id, z9.id, z10.id]
    assert body["char_index"] == {"a": 0, "b": 1, "z": 2}
    desc = get_list(order_dir="desc")
    assert desc["rom_id_index"] == [z10.id, z9.id, b.id, the.id]
    assert desc["char_index"] == {"a": 3, "b": 2, "z": 0}


def test_order_by_metadata_and_user_columns(lib, get_list, add, admin):
    old = lib.rom("Old.gb", igdb_id=1, igdb_metadata={"first_release_date": 100, "total_rating": "50"})
    new = lib.rom("New.gb", igdb_id=2, igdb_metadata={"first_release_date": 900, "total_rating": "90"})
    unmatched = lib.rom("Unmatched.gb")
    assert get_list(order_by="first_release_date")["rom_id_index"] == [old.id, new.id, unmatched.id]
    assert get_list(order_by="first_release_date", order_dir="desc")["rom_id_index"] == [new.id, old.id, unmatched.id]
    assert get_list(order_by="average_rating", order_dir="desc")["rom_id_index"] == [new.id, old.id, unmatched.id]
    # ordering by a RomUser column keeps the ROMs the caller never touched (RomM drops them)
    add(RomUser(rom_id=old.id, user_id=admin.id, rating=9, last_played=dt.datetime(2024, 1, 2, tzinfo=dt.UTC)))
    add(RomUser(rom_id=unmatched.id, user_id=admin.id, rating=3, last_played=dt.datetime(2024, 5, 1, tzinfo=dt.UTC)))
    assert get_list(order_by="rating", order_dir="desc")["rom_id_index"] == [old.id, unmatched.id, new.id]
    assert get_list(order_by="last_played", order_dir="desc")["rom_id_index"] == [unmatched.id, old.id, new.id]
    assert get_list(order_by="fs_size_bytes")["total"] == 3


def test_updated_after_is_strict(lib, get_list, ctx):
    a = lib.rom("A.gb")
    b = lib.rom("B.gb")
    with ctx.db.read() as s:
        from romshelf.roms.models import Rom

        stamp = s.get(Rom, a.id).updated_at
    ids = get_list(updated_after=stamp.isoformat())["rom_id_index"]
    assert a.id not in ids and b.id in ids
    assert get_list(updated_after="2000-01-01T00:00:00Z")["total"] == 2
    assert get_list(updated_after="2999-01-01T00:00:00+00:00")["total"] == 0


def test_user_hidden_roms_drop_out_for_that_user_only(client, lib, get_list, add, admin, users):
    shown = lib.rom("Shown.gb")
    hidden = lib.rom("Hidden.gb")
    add(RomUser(rom_id=hidden.id, user_id=admin.id, hidden=True))
    assert get_list()["rom_id_index"] == [shown.id]
    assert get_list(statuses="hidden")["rom_id_index"] == [hidden.id]
    other = users.viewer("other")
    assert get_list(headers=users.headers(other))["rom_id_index"] == [hidden.id, shown.id]


def test_identifiers(client, auth, lib, add, admin):
    b = lib.rom("B.gb")
    a = lib.rom("A.gb")
    h = lib.rom("H.gb")
    add(RomUser(rom_id=h.id, user_id=admin.id, hidden=True))
    r = client.get("/api/roms/identifiers", headers=auth)
    assert r.status_code == 200 and r.json() == [a.id, b.id]
    assert client.get("/api/roms/identifiers", headers={**auth, "If-None-Match": r.headers["etag"]}).status_code == 304


def test_etag_and_304_then_change(client, auth, lib, ctx):
    lib.rom("A.gb")
    r = client.get("/api/roms", headers=auth)
    etag = r.headers["etag"]
    r2 = client.get("/api/roms", headers={**auth, "If-None-Match": etag})
    assert r2.status_code == 304 and r2.headers["etag"] == etag and r2.content == b""
    assert client.get("/api/roms?limit=3", headers={**auth, "If-None-Match": etag}).status_code == 200
    lib.rom("B.gb")
    r3 = client.get("/api/roms", headers={**auth, "If-None-Match": etag})
    assert r3.status_code == 200 and r3.json()["total"] == 2 and r3.headers["etag"] != etag


def test_cached_results_follow_every_kind_of_write(client, auth, lib, add, admin, ctx, get_list):
    a = lib.rom("A (USA).gb")
    b = lib.rom("B (Europe).gb")
    assert get_list()["total"] == 2
    assert get_list(regions="USA")["rom_id_index"] == [a.id]
    # a metadata write through the API
    r = client.put(f"/api/roms/{b.id}", data={"name": "0 Zero"}, headers=auth)
    assert r.status_code == 200, r.text
    assert get_list()["rom_id_index"] == [b.id, a.id]
    # a user-data write
    add(RomUser(rom_id=a.id, user_id=admin.id, hidden=True))
    assert get_list()["rom_id_index"] == [b.id]
    # a raw SQL write elsewhere (another replica, a scanner) is seen too
    import sqlalchemy as sa

    with ctx.db.transaction() as s:
        s.execute(sa.text("UPDATE roms SET regions = '[\"USA\"]' WHERE id = :i"), {"i": b.id})
    assert get_list(regions="USA")["rom_id_index"] == [b.id]
    assert get_list()["items"][0]["regions"] == ["USA"]


def test_items_render_siblings_and_files(lib, get_list):
    a = lib.rom("Game (USA).gb", igdb_id=10)
    b = lib.rom("Game (Europe).gb", igdb_id=10)
    other = lib.rom("Other.gb", igdb_id=11)
    lib.rom("Game (Japan).gbc", platform="gbc", igdb_id=10)  # other platform: not a sibling
    items = {i["id"]: i for i in get_list()["items"]}
    assert [s["id"] for s in items[a.id]["sibling_roms"]] == [b.id]
    assert items[b.id]["sibling_roms"][0]["sort_comparator"] == "game"
    assert items[other.id]["sibling_roms"] == []


def test_every_credential_kind_and_every_refusal_on_read_routes(client, users, lib):
    rom = lib.rom("A.gb")
    admin = users.admin("boss")
    paths = ["/api/roms", f"/api/roms/{rom.id}", "/api/roms/identifiers", f"/api/roms/by-hash?md5_hash={rom.md5_hash}"]
    jwt = client.post("/api/token", data={"username": "boss", "password": admin.password, "scope": "roms.read"})
    for headers in (
        users.headers(admin),
        users.basic(admin),
        {"Authorization": f"Bearer {jwt.json()['access_token']}"},
    ):
        for path in paths:
            assert client.get(path, headers=headers).status_code == 200, (path, headers)
    for path in paths:
        r = client.get(path, headers={"Authorization": "Bearer rmm_" + "0" * 64})
        assert r.status_code == 401 and r.json() == {"detail": "Invalid or expired token"}
        assert client.get(path, headers=users.basic(admin, "wrong")).status_code == 401
        r = client.get(path, headers={"Authorization": "Bearer " + "x" * 40})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert client.get(path).status_code == 401
        assert client.get(path, headers=users.headers(admin, scopes=["platforms.read"])).status_code == 403
    # browser session cookie
    login = client.post("/api/login", headers=users.basic(admin))
    assert login.status_code in (200, 204), login.text
    assert client.get("/api/roms").status_code == 200
    client.cookies.clear()
    client.cookies.set("romshelf_session", "bogus")
    assert client.get("/api/roms").status_code == 401
