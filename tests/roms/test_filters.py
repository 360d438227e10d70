"""GET /api/roms filters: each tri-state, each multi-value filter with each logic, search,
scopes (platforms, collections, smart and virtual collections), group_by_meta_id."""

from __future__ import annotations

import pytest

from romshelf.collections.models import Collection, CollectionRom, SmartCollection
from romshelf.roms.models import RomFile, RomUser
from romshelf.roms.query import encode_virtual_id
from romshelf.saves.models import Save, State


def ids(body):
    return sorted(body["rom_id_index"])


@pytest.fixture
def meta_lib(lib):
    """Three ROMs with different derived metadata (through each provider's blob)."""
    a = lib.rom(
        "Alpha (USA) (En,Fr) [Proto].gb",
        igdb_id=1,
        igdb_metadata={
            "genres": ["Action", "RPG"],
            "franchises": ["Saga"],
            "collections": ["Best Of"],
            "companies": ["Nintendo"],
            "age_ratings": [{"rating": "E", "category": "ESRB"}],
            "player_count": "2",
        },
    )
    b = lib.rom(
        "Beta (Europe) (De).gb",
        ss_id=2,
        ss_metadata={"genres": ["Action"], "companies": ["Sega"], "franchises": ["Saga"], "player_count": "1-4"},
    )
    c = lib.rom("Gamma (Japan) [Beta].gb", manual_metadata={"genres": ["Puzzle"], "age_ratings": ["T"]})
    return a, b, c


@pytest.mark.parametrize(
    ("param", "values", "any_", "all_", "none_"),
    [
        ("genres", ["Action", "RPG"], "ab", "a", "c"),
        ("genres", ["Action"], "ab", "ab", "c"),
        ("franchises", ["Saga"], "ab", "ab", "c"),
        ("collections", ["Best Of"], "a", "a", "bc"),
        ("companies", ["Nintendo", "Sega"], "ab", "", "c"),
        ("age_ratings", ["E", "T"], "ac", "", "b"),
        ("regions", ["USA", "Europe"], "ab", "", "c"),
        ("regions", ["Japan"], "c", "c", "ab"),
        ("languages", ["English", "French"], "a", "a", "bc"),
        ("languages", ["German", "English"], "ab", "", "c"),
        ("tags", ["Proto", "Beta"], "ac", "", "b"),
        ("player_counts", ["2", "1-4"], "ab", "ab", "c"),
        ("metadata_providers", ["igdb", "ss"], "ab", "", "c"),
        ("metadata_providers", ["igdb"], "a", "a", "bc"),
    ],
)
def test_multi_value_filters_and_logic(meta_lib, get_list, param, values, any_, all_, none_):
    by_letter = dict(zip("abc", (r.id for r in meta_lib), strict=True))
    for logic, expected in (("any", any_), ("all", all_), ("none", none_)):
        body = get_list(**{param: values, f"{param}_logic": logic})
        assert ids(body) == sorted(by_letter[x] for x in expected), (param, values, logic)
        assert body["total"] == len(expected)


def test_filter_values_and_metadatum(meta_lib, get_list):
    a, b, c = meta_lib
    body = get_list()
    fv = body["filter_values"]
    assert fv["genres"] == ["Action", "Puzzle", "RPG"]
    assert fv["companies"] == ["Nintendo", "Sega"]
    assert fv["franchises"] == ["Saga"]
    assert fv["collections"] == ["Best Of"]
    assert fv["age_ratings"] == ["E", "T"]
    assert fv["player_counts"] == ["1", "1-4", "2"]
    assert fv["regions"] == ["Europe", "Japan", "USA"]
    assert fv["languages"] == ["English", "French", "German"]
    assert fv["tags"] == ["Beta", "Proto"]
    items = {i["id"]: i for i in body["items"]}
    assert items[a.id]["metadatum"]["genres"] == ["Action", "RPG"]
    assert items[a.id]["metadatum"]["age_ratings"] == ["E"]
    assert items[b.id]["metadatum"]["player_count"] == "1-4"
    assert items[c.id]["metadatum"]["genres"] == ["Puzzle"]  # manual metadata wins
    # filter values are computed over the scope only, not the row filters (RomM's choice)
    assert get_list(genres="Puzzle")["filter_values"]["genres"] == ["Action", "Puzzle", "RPG"]


def test_filter_values_follow_the_scope(lib, get_list):
    a = lib.rom("A (USA) [Proto].gb")
    lib.rom("B (Japan).gbc", platform="gbc")
    fv = get_list(platform_ids=a.platform_id)["filter_values"]
    assert fv["regions"] == ["USA"] and fv["tags"] == ["Proto"] and fv["platforms"] == [a.platform_id]
    fv = get_list(search_term="b (japan)")["filter_values"]
    assert fv["regions"] == ["Japan"] and fv["tags"] == []


def test_tri_state_filters(lib, get_list, add, admin, users, ctx):
    other = users.viewer("other")
    plain = lib.rom("Plain.gb")
    matched = lib.rom("Matched.gb", igdb_id=5)
    twin = lib.rom("Matched Twin.gb", igdb_id=5)
    ra = lib.rom("Achiever.gb", ra_id=77)
    missing = lib.rom("Missing.gb", missing_from_fs=True)
    verified = lib.rom("Verified.gb", hasheous_id=3, hasheous_metadata={"nointro_match": True})
    unverified = lib.rom("Unverified.gb", hasheous_id=4, hasheous_metadata={"nointro_match": False})
    nes = lib.rom("Nes Game.zzz", platform="zzz-unknown")
    fav = add(Collection(user_id=admin.id, name="Favourites", is_favorite=True))
    add(CollectionRom(collection_id=fav.id, rom_id=plain.id))
    others_fav = add(Collection(user_id=other.id, name="Favourites", is_favorite=True))
    add(CollectionRom(collection_id=others_fav.id, rom_id=ra.id))
    add(RomUser(rom_id=ra.id, user_id=admin.id, last_played=_now()))
    add(Save(rom_id=matched.id, user_id=admin.id, file_name="m.srm", file_path="x"))
    add(Save(rom_id=missing.id, user_id=other.id, file_name="pub.srm", file_path="x", is_public=True))
    add(Save(rom_id=verified.id, user_id=other.id, file_name="private.srm", file_path="x"))
    add(State(rom_id=twin.id, user_id=admin.id, file_name="t.state", file_path="x"))
    soundtrack = lib.rom("Music", files={"game.bin": b"g", "soundtrack/track1.mp3": b"m"})

    everyone = {plain.id, matched.id, twin.id, ra.id, missing.id, verified.id, unverified.id, nes.id, soundtrack.id}

    def check(param, expected_true):
        t = set(get_list(**{param: "true"})["rom_id_index"])
        f = set(get_list(**{param: "false"})["rom_id_index"])
        assert t == set(expected_true), param
        assert f == everyone - set(expected_true), param

    check("matched", {matched.id, twin.id, ra.id, verified.id, unverified.id})
    check("favorite", {plain.id})
    check("duplicate", {matched.id, twin.id})
    check("last_played", {ra.id})
    check("playable", everyone - {nes.id})
    check("missing", {missing.id})
    check("has_ra", {ra.id})
    check("has_saves", {matched.id, missing.id})  # own, or others' public
    check("has_states", {twin.id})
    check("verified", {verified.id})
    check("has_soundtrack", {soundtrack.id})


def _now():
    import datetime as dt

    return dt.datetime.now(dt.UTC)


def test_last_played_filter_carries_screenshot_path(lib, get_list, add, admin):
    from romshelf.saves.models import Screenshot

    rom = lib.rom("Played.gb")
    add(RomUser(rom_id=rom.id, user_id=admin.id, last_played=_now()))
    shot = add(Screenshot(rom_id=rom.id, user_id=admin.id, file_name="s.png", file_path="x"))
    item = get_list(last_played="true")["items"][0]
    assert item["screenshot_path"].startswith(f"/api/screenshots/{shot.id}/content")


def test_statuses(lib, get_list, add, admin):
    playing = lib.rom("Playing.gb")
    backlog = lib.rom("Backlog.gb")
    finished = lib.rom("Finished.gb")
    both = lib.rom("Both.gb")
    hidden = lib.rom("Hidden.gb")
    untouched = lib.rom("Untouched.gb")
    add(
        RomUser(rom_id=playing.id, user_id=admin.id, now_playing=True),
        RomUser(rom_id=backlog.id, user_id=admin.id, backlogged=True),
        RomUser(rom_id=finished.id, user_id=admin.id, status="finished"),
        RomUser(rom_id=both.id, user_id=admin.id, now_playing=True, status="finished"),
        RomUser(rom_id=hidden.id, user_id=admin.id, hidden=True, status="finished"),
    )
    assert ids(get_list(statuses="now_playing")) == sorted([playing.id, both.id])
    assert ids(get_list(statuses=["now_playing", "finished"])) == sorted([playing.id, finished.id, both.id])
    assert ids(get_list(statuses=["now_playing", "finished"], statuses_logic="all")) == [both.id]
    assert ids(get_list(statuses=["now_playing", "finished"], statuses_logic="none")) == sorted(
        [backlog.id, untouched.id]
    )
    assert ids(get_list(statuses="hidden")) == [hidden.id]
    assert ids(get_list(statuses=["hidden", "finished"], statuses_logic="all")) == [hidden.id]
    assert hidden.id not in get_list(statuses="finished")["rom_id_index"]


def test_search(lib, get_list, add):
    mario = lib.rom("Super Mario Land (World).gb")
    kart = lib.rom("mario kart.gb", name="Mario Kart Super Circuit")
    zelda = lib.rom("Zelda.gb", name="The Legend of Zelda")
    folder = lib.rom("Disc Game", files={"disc1.bin": b"disc one", "disc2.bin": b"disc two"})
    assert ids(get_list(search_term="mario")) == sorted([mario.id, kart.id])
    assert ids(get_list(search_term="MARIO super")) == sorted([mario.id, kart.id])  # every word, any order
    assert ids(get_list(search_term="mario land")) == [mario.id]
    assert ids(get_list(search_term="world")) == [mario.id]  # file name words count
    assert ids(get_list(search_term="legend")) == [zelda.id]
    assert ids(get_list(search_term="kart | zelda")) == sorted([kart.id, zelda.id])
    assert ids(get_list(search_term="100%")) == []  # LIKE wildcards are literal
    assert ids(get_list(search_term="   ")) == sorted([mario.id, kart.id, zelda.id, folder.id])
    # hex terms also match ROM and file hashes, case-insensitively, never by prefix
    assert ids(get_list(search_term=mario.crc_hash.upper())) == [mario.id]
    assert ids(get_list(search_term=kart.md5_hash)) == [kart.id]
    assert ids(get_list(search_term=zelda.sha1_hash)) == [zelda.id]
    assert ids(get_list(search_term=mario.md5_hash[:31])) == []
    from factories import hashes

    disc2 = hashes(b"disc two")
    assert ids(get_list(search_term=disc2["md5_hash"])) == [folder.id]
    assert ids(get_list(search_term=disc2["crc_hash"] + " | zelda")) == sorted([folder.id, zelda.id])


def test_search_with_chd_and_ra_file_hashes(lib, get_list, add, ctx):
    rom = lib.rom("Cd Game.chd")
    with ctx.db.session() as s:
        f = s.query(RomFile).filter_by(rom_id=rom.id).one()
        f.chd_sha1_hash = "ab" * 20
        f.ra_hash = "cd" * 16
        s.commit()
    assert ids(get_list(search_term="AB" * 20)) == [rom.id]
    assert ids(get_list(search_term="cd" * 16)) == [rom.id]


def test_platform_and_collection_scopes(lib, get_list, add, admin, users):
    other = users.viewer("other")
    a = lib.rom("A.gb")
    b = lib.rom("B.gbc", platform="gbc")
    c = lib.rom("C.gba", platform="gba")
    assert ids(get_list(platform_ids=[a.platform_id, b.platform_id])) == sorted([a.id, b.id])
    assert ids(get_list(platform_id=c.platform_id)) == [c.id]  # older clients' single id
    mine = add(Collection(user_id=admin.id, name="Mine"))
    add(CollectionRom(collection_id=mine.id, rom_id=a.id), CollectionRom(collection_id=mine.id, rom_id=c.id))
    assert ids(get_list(collection_id=mine.id)) == sorted([a.id, c.id])
    private = add(Collection(user_id=other.id, name="Private"))
    add(CollectionRom(collection_id=private.id, rom_id=b.id))
    assert ids(get_list(collection_id=private.id)) == []  # not visible to the caller
    public = add(Collection(user_id=other.id, name="Public", is_public=True))
    add(CollectionRom(collection_id=public.id, rom_id=b.id))
    assert ids(get_list(collection_id=public.id)) == [b.id]
    assert ids(get_list(collection_id=999)) == []


def test_smart_and_virtual_collections(meta_lib, get_list, add, admin, users):
    a, b, _c = meta_lib
    smart = add(
        SmartCollection(user_id=admin.id, name="Action", filter_criteria={"genres": ["Action"], "regions": ["Europe"]})
    )
    assert ids(get_list(smart_collection_id=smart.id)) == [b.id]
    # combined with the request's own filters
    assert ids(get_list(smart_collection_id=smart.id, search_term="alpha")) == []
    nested = add(SmartCollection(user_id=admin.id, name="Nested", filter_criteria={"smart_collection_id": smart.id}))
    assert ids(get_list(smart_collection_id=nested.id)) == [b.id]
    loop = add(SmartCollection(user_id=admin.id, name="Loop", filter_criteria={}))
    loop_id = loop.id
    from romshelf.collections.models import SmartCollection as SC

    with users.ctx.db.session() as s:
        s.get(SC, loop_id).filter_criteria = {"smart_collection_id": loop_id}
        s.commit()
    assert ids(get_list(smart_collection_id=loop_id)) == []  # a cycle matches nothing, never hangs
    other = users.viewer("other")
    private = add(SmartCollection(user_id=other.id, name="Theirs", filter_criteria={}))
    assert ids(get_list(smart_collection_id=private.id)) == []
    assert ids(get_list(smart_collection_id=12345)) == []
    genre = encode_virtual_id("Action", "genre")
    assert ids(get_list(virtual_collection_id=genre)) == sorted([a.id, b.id])
    franchise = encode_virtual_id("Saga", "franchise")
    assert ids(get_list(virtual_collection_id=franchise)) == sorted([a.id, b.id])
    assert ids(get_list(virtual_collection_id=encode_virtual_id("Sega", "company"))) == [b.id]


def test_group_by_meta_id_picks_the_right_sibling(lib, get_list, add, admin):
    # igdb 1: the USA release beats Europe and Japan; a prototype never represents a group
    usa = lib.rom("Quest (USA).gb", igdb_id=1)
    quest_eur = lib.rom("Quest (Europe).gb", igdb_id=1)
    lib.rom("Quest (Japan).gb", igdb_id=1)
    lib.rom("Quest (USA) (Proto).gb", igdb_id=1)
    # igdb 2: only Europe and a demo: Europe
    eur = lib.rom("Race (Europe).gb", igdb_id=2)
    lib.rom("Race (USA) (Demo).gb", igdb_id=2)
    # ss 3 (no igdb): the user's main sibling wins over region
    lib.rom("Puzzle (USA).gb", ss_id=3)
    main = lib.rom("Puzzle (Japan).gb", ss_id=3)
    add(RomUser(rom_id=main.id, user_id=admin.id, is_main_sibling=True))
    # same igdb id on another platform is another group
    other_platform = lib.rom("Quest (Europe).gbc", platform="gbc", igdb_id=1)
    lone = lib.rom("Lonely.gb")
    body = get_list(group_by_meta_id="true")
    assert ids(body) == sorted([usa.id, eur.id, main.id, other_platform.id, lone.id])
    assert body["total"] == 5
    # filters apply before grouping: without the USA release, Europe represents igdb 1
    body = get_list(group_by_meta_id="true", regions="Europe")
    assert ids(body) == sorted([quest_eur.id, eur.id, other_platform.id])
    # and grouping composes with sorting and paging
    desc = get_list(group_by_meta_id="true", order_dir="desc", limit=2)
    assert desc["total"] == 5 and len(desc["items"]) == 2
    assert desc["rom_id_index"][:2] == [i["id"] for i in desc["items"]]


def test_group_by_meta_id_with_hidden_main_sibling(lib, get_list, add, admin):
    usa = lib.rom("Quest (USA).gb", igdb_id=1)
    eur = lib.rom("Quest (Europe).gb", igdb_id=1)
    add(RomUser(rom_id=usa.id, user_id=admin.id, hidden=True))
    assert ids(get_list(group_by_meta_id="true")) == [eur.id]  # the group does not vanish
