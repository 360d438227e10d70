"""The maintained summaries behind the list: derived metadata, facets, change counters, triggers."""

from __future__ import annotations

import sqlalchemy as sa

from romshelf.roms import derived, triggers
from romshelf.roms.listing import IdIndex, ListCache, read_versions
from romshelf.roms.models import Rom, RomFacet


def facets(ctx, rom_id):
    with ctx.db.read() as s:
        rows = s.execute(sa.select(RomFacet.kind, RomFacet.value).where(RomFacet.rom_id == rom_id))
        return sorted((k, v) for k, v in rows)


def test_derive_follows_provider_precedence():
    blobs = {
        "manual_metadata": {"genres": ["Manual Genre"]},
        "igdb_metadata": {
            "genres": ["Igdb Genre"],
            "franchises": ["Igdb Franchise"],
            "companies": ["Nintendo", {"name": "HAL"}],
            "collections": ["Igdb Collection"],
            "game_modes": ["Single player"],
            "age_ratings": [{"rating": "E", "category": "ESRB"}],
            "total_rating": "80",
            "first_release_date": 1_000_000,
            "player_count": "1",
        },
        "moby_metadata": {"genres": ["Moby Genre"], "moby_score": "7"},
        "ss_metadata": {"franchises": ["Ss Franchise"], "player_count": "1-2", "ss_score": "6"},
        "launchbox_metadata": {"community_rating": 4.5, "esrb": "T"},
        "gamelist_metadata": {"rating": 0.5},
        "hasheous_metadata": {"tosec_match": False, "redump_match": True},
    }
    d = derived.derive(blobs)
    assert d["meta_genres"] == ["Manual Genre"]
    assert d["meta_franchises"] == ["Igdb Franchise"]
    assert d["meta_companies"] == ["HAL", "Nintendo"]
    assert d["meta_collections"] == ["Igdb Collection"]
    assert d["meta_game_modes"] == ["Single player"]
    assert d["meta_age_ratings"] == ["E"]
    assert d["meta_player_count"] == "1-2"  # first value that is not "1"
    assert d["meta_first_release_date"] == 1_000_000_000
    assert d["meta_average_rating"] == round((80 + 70 + 60 + 90 + 50) / 5, 2)
    assert d["meta_verified"] is True
    empty = derived.derive({})
    assert empty["meta_genres"] == [] and empty["meta_player_count"] == "1"
    assert empty["meta_first_release_date"] is None and empty["meta_average_rating"] is None
    assert (
        derived.derive({"flashpoint_metadata": {"first_release_date": "2001-02-03"}})["meta_first_release_date"]
        == 981158400000
    )
    assert (
        derived.derive({"gamelist_metadata": {"first_release_date": "19910101T000000"}})["meta_first_release_date"]
        == 662688000000
    )
    junk = derived.derive({"igdb_metadata": {"genres": "not a list", "total_rating": "n/a"}, "ss_metadata": []})
    assert junk["meta_genres"] == [] and junk["meta_average_rating"] is None


def test_orm_writes_keep_derived_columns_and_facets(ctx, lib):
    rom = lib.rom("Game (USA) [Proto].gb", igdb_id=1, igdb_metadata={"genres": ["Action"]})
    assert facets(ctx, rom.id) == [
        ("genres", "Action"),
        ("player_count", "1"),
        ("regions", "USA"),
        ("tags", "Proto"),
    ]
    with ctx.db.session() as s:
        r = s.get(Rom, rom.id)
        r.igdb_metadata = {"genres": ["RPG"], "player_count": "4"}
        r.tags = []
        s.commit()
        assert r.meta_genres == ["RPG"]
    assert facets(ctx, rom.id) == [("genres", "RPG"), ("player_count", "4"), ("regions", "USA")]


def test_core_writes_refresh_derived_on_request(ctx, lib):
    rom = lib.rom("Game.gb")
    with ctx.db.transaction() as s:
        s.execute(sa.update(Rom).where(Rom.id == rom.id).values(ss_metadata={"genres": ["Shooter"]}))
        assert derived.refresh_derived(s, [rom.id]) == 1
        assert derived.refresh_derived(s, [rom.id]) == 0
    assert ("genres", "Shooter") in facets(ctx, rom.id)


def test_counters_bump_on_library_and_user_writes(ctx, lib, users, client):
    with ctx.db.read() as s:
        before = read_versions(s)
    assert before is not None
    rom = lib.rom("Game.gb")
    with ctx.db.read() as s:
        after_rom = read_versions(s)
    assert after_rom[0] > before[0] and after_rom[1] == before[1]
    user = users.viewer()
    with ctx.db.transaction() as s:
        s.execute(
            sa.text(
                "INSERT INTO rom_user (rom_id, user_id, is_main_sibling, backlogged, now_playing, hidden, "
                "rating, difficulty, completion, created_at, updated_at) VALUES (:r, :u, false, false, "
                "false, true, 0, 0, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"r": rom.id, "u": user.id},
        )
    with ctx.db.read() as s:
        after_user = read_versions(s)
    assert after_user[1] > after_rom[1]


def test_ensure_repairs_missing_triggers(ctx, lib, client):
    rom = lib.rom("Game (USA).gb")
    with ctx.db.write_engine.begin() as conn:
        assert triggers.missing_triggers(conn) == set()
        conn.exec_driver_sql(
            "DROP TRIGGER IF EXISTS trg_roms_facets_ins ON roms"
            if ctx.db.engine_name == "postgresql"
            else "DROP TRIGGER IF EXISTS trg_roms_facets_ins"
        )
        conn.exec_driver_sql("DELETE FROM rom_facets")
        assert "trg_roms_facets_ins" in triggers.missing_triggers(conn)
    with ctx.db.write_engine.begin() as conn:
        assert triggers.ensure(conn) is True
    with ctx.db.write_engine.begin() as conn:
        assert triggers.ensure(conn) is False
    assert ("regions", "USA") in facets(ctx, rom.id)
    second = lib.rom("Other (Japan).gb")
    assert ("regions", "Japan") in facets(ctx, second.id)


def test_rebuild_facets_for_some_roms(ctx, lib):
    a = lib.rom("A (USA).gb")
    b = lib.rom("B (Japan).gb")
    with ctx.db.write_engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM rom_facets")
        triggers.rebuild_facets(conn, [a.id])
    assert facets(ctx, a.id) == [("player_count", "1"), ("regions", "USA")]
    assert facets(ctx, b.id) == []


def test_id_index_paging_and_char_index():
    idx = IdIndex("5,3,9,1", "aab\x01")
    assert idx.count == 4
    assert idx.page(0, 2) == [5, 3] and idx.page(2, 5) == [9, 1] and idx.page(4, 1) == []
    assert idx.json() == b"[5,3,9,1]"
    assert idx.char_index() == {"a": 0, "b": 2}
    assert IdIndex("", "").count == 0 and IdIndex("", "").page(0, 10) == []


def test_list_cache_is_bounded_and_versioned():
    cache = ListCache(max_bytes=100)
    cache.put("a", 1, "A", 60)
    assert cache.get("a", 1) == "A" and cache.get("a", 2) is None
    cache.put("b", 1, "B", 60)  # evicts "a"
    assert cache.get("a", 1) is None and cache.get("b", 1) == "B"
    calls = []
    assert cache.get_or_compute("c", 1, lambda: calls.append(1) or "C", lambda v: 10) == "C"
    assert cache.get_or_compute("c", 1, lambda: calls.append(1) or "C", lambda v: 10) == "C"
    assert calls == [1]
    assert cache.get_or_compute("c", None, lambda: "fresh", lambda v: 1) == "fresh"  # no version: no cache
    cache.put("huge", 1, "x", 1000)
    assert cache.get("huge", 1) is None


def test_hidden_counter_moves_only_when_visibility_changes(ctx, lib, client, auth, get_list):
    rom = lib.rom("Game.gb")

    def versions():
        with ctx.db.read() as s:
            return read_versions(s)

    v0 = versions()
    client.put(f"/api/roms/{rom.id}/props", json={"rating": 4}, headers=auth)
    v1 = versions()
    assert v1.userdata > v0.userdata and v1.hidden == v0.hidden
    client.put(f"/api/roms/{rom.id}/props", json={"hidden": True}, headers=auth)
    v2 = versions()
    assert v2.hidden > v1.hidden
    client.put(f"/api/roms/{rom.id}/props", json={"hidden": False}, headers=auth)
    assert versions().hidden > v2.hidden


def test_user_data_writes_reuse_the_index_but_refresh_items(ctx, lib, client, auth, get_list):
    a = lib.rom("A.gb")
    lib.rom("B.gb")
    assert get_list()["items"][0]["rom_user"]["rating"] == 0
    cache = ctx.extras["roms.list_cache"]
    misses = cache.misses
    client.put(f"/api/roms/{a.id}/props", json={"rating": 9}, headers=auth)
    body = get_list()
    assert body["items"][0]["rom_user"]["rating"] == 9  # items re-rendered
    assert cache.misses == misses  # id index and filter values served from the cache
    client.put(f"/api/roms/{a.id}/props", json={"hidden": True}, headers=auth)
    assert a.id not in get_list()["rom_id_index"]
    assert cache.misses > misses


def test_list_cache_computes_once_for_concurrent_misses():
    import threading

    cache = ListCache()
    calls = []
    gate = threading.Event()

    def compute():
        calls.append(1)
        gate.wait(5)
        return "value"

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_compute("k", 7, compute, lambda v: 5)))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(10)
    assert results == ["value"] * 6 and calls == [1]
    assert cache._flights == {}
