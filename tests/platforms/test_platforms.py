"""/api/platforms and the catalogue."""

from __future__ import annotations

from factories import make_platform, make_rom

from romshelf.platforms import catalog

PLATFORM_FIELDS = {
    "id",
    "slug",
    "fs_slug",
    "rom_count",
    "name",
    "igdb_slug",
    "moby_slug",
    "hltb_slug",
    "libretro_slug",
    "custom_name",
    "description",
    "igdb_id",
    "sgdb_id",
    "moby_id",
    "launchbox_id",
    "ss_id",
    "ra_id",
    "hasheous_id",
    "tgdb_id",
    "flashpoint_id",
    "category",
    "generation",
    "family_name",
    "family_slug",
    "url",
    "url_logo",
    "firmware",
    "created_at",
    "updated_at",
    "fs_size_bytes",
    "is_unidentified",
    "is_identified",
    "missing_from_fs",
    "display_name",
    "firmware_count",
}

REQUIRED_SLUGS = [
    "gb",
    "gbc",
    "gba",
    "nes",
    "famicom",
    "fds",
    "snes",
    "sfam",
    "n64",
    "nds",
    "3ds",
    "ngc",
    "wii",
    "genesis",
    "sms",
    "gamegear",
    "segacd",
    "sega32",
    "saturn",
    "dc",
    "psx",
    "ps2",
    "psp",
    "tg16",
    "lynx",
    "atari2600",
    "atari7800",
    "wonderswan",
    "neo-geo-pocket",
    "arcade",
    "dos",
]


def test_catalogue_covers_common_platforms():
    assert len(catalog.PLATFORMS) >= 60
    for slug in REQUIRED_SLUGS:
        assert slug in catalog.BY_SLUG, slug
    assert catalog.lookup("gamecube").slug == "ngc"
    assert catalog.lookup("MegaDrive").slug == "genesis"
    assert catalog.lookup("unknown-thing") is None


def test_list_and_get_with_counts(client, users, ctx):
    admin = users.admin()
    make_rom(ctx, "gb", b"a" * 100, fs_name="A.gb")
    make_rom(ctx, "gb", b"b" * 50, fs_name="B.gb")
    make_platform(ctx, "my-homebrew")
    r = client.get("/api/platforms", headers=users.basic(admin))
    assert r.status_code == 200
    by_slug = {p["fs_slug"]: p for p in r.json()}
    gb = by_slug["gb"]
    assert set(gb) == PLATFORM_FIELDS
    assert gb["name"] == "Game Boy" and gb["display_name"] == "Game Boy"
    assert gb["rom_count"] == 2 and gb["fs_size_bytes"] == 150
    assert gb["is_identified"] is True
    home = by_slug["my-homebrew"]
    assert home["name"] == "My Homebrew" and home["is_unidentified"] is True and home["rom_count"] == 0
    one = client.get(f"/api/platforms/{gb['id']}", headers=users.basic(admin)).json()
    assert one["rom_count"] == 2
    assert client.get("/api/platforms/999999", headers=users.basic(admin)).status_code == 404
    ids = client.get("/api/platforms/identifiers", headers=users.basic(admin)).json()
    assert sorted(ids) == sorted(p["id"] for p in r.json())


def test_create_update_delete(client, users):
    admin = users.admin()
    h = users.basic(admin)
    r = client.post("/api/platforms", headers=h, json={"fs_slug": "gba"})
    assert r.status_code == 201 and r.json()["name"] == "Game Boy Advance"
    again = client.post("/api/platforms", headers=h, json={"fs_slug": "gba"})
    assert again.json()["id"] == r.json()["id"]
    pid = r.json()["id"]
    r = client.put(f"/api/platforms/{pid}", headers=h, json={"custom_name": "GBA"})
    assert r.json()["display_name"] == "GBA" and r.json()["name"] == "Game Boy Advance"
    assert client.delete(f"/api/platforms/{pid}", headers=h).status_code == 204
    assert client.get(f"/api/platforms/{pid}", headers=h).status_code == 404


def test_bad_platform_names(client, users):
    h = users.basic(users.admin())
    for bad in ["../etc", "a/b", ".hidden", "x" * 101, ""]:
        r = client.post("/api/platforms", headers=h, json={"fs_slug": bad})
        assert r.status_code in (400, 422), (bad, r.text)


def test_scopes(client, users):
    viewer = users.viewer()
    assert client.get("/api/platforms", headers=users.basic(viewer)).status_code == 200
    assert client.post("/api/platforms", headers=users.basic(viewer), json={"fs_slug": "gb"}).status_code == 403
    assert client.get("/api/platforms").status_code == 401


def test_supported_list(client, users):
    r = client.get("/api/platforms/supported", headers=users.basic(users.viewer()))
    slugs = {p["slug"]: p for p in r.json()}
    assert slugs["gba"]["playable"] is True and slugs["switch"]["playable"] is False
