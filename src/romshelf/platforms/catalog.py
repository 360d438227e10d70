"""The platform catalogue: canonical slugs (RomM/IGDB style) with display names and facts.

A library folder named after a slug or one of its aliases maps to that platform; any other
folder still becomes a platform (unidentified, named after the folder).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PlatformInfo:
    slug: str
    name: str
    category: str
    family: str
    generation: int | None = None
    aliases: tuple[str, ...] = field(default=())

    @property
    def family_slug(self) -> str:
        return self.family.lower().replace(" ", "-")


_C, _H, _A, _P, _CP = "Console", "Portable Console", "Arcade", "Computer", "Computer"

PLATFORMS: tuple[PlatformInfo, ...] = (
    # Nintendo
    PlatformInfo("nes", "Nintendo Entertainment System", _C, "Nintendo", 3, ("famicom-nes",)),
    PlatformInfo("famicom", "Family Computer", _C, "Nintendo", 3, ("fc",)),
    PlatformInfo("fds", "Family Computer Disk System", _C, "Nintendo", 3, ("famicom-disk-system",)),
    PlatformInfo("snes", "Super Nintendo Entertainment System", _C, "Nintendo", 4, ("super-nintendo",)),
    PlatformInfo("sfam", "Super Famicom", _C, "Nintendo", 4, ("super-famicom",)),
    PlatformInfo("satellaview", "Satellaview", _C, "Nintendo", 4),
    PlatformInfo("n64", "Nintendo 64", _C, "Nintendo", 5, ("nintendo64",)),
    PlatformInfo("64dd", "Nintendo 64DD", _C, "Nintendo", 5),
    PlatformInfo("ngc", "Nintendo GameCube", _C, "Nintendo", 6, ("gamecube", "gc")),
    PlatformInfo("wii", "Wii", _C, "Nintendo", 7),
    PlatformInfo("wiiu", "Wii U", _C, "Nintendo", 8, ("wii-u",)),
    PlatformInfo("switch", "Nintendo Switch", _H, "Nintendo", 8),
    PlatformInfo("switch-2", "Nintendo Switch 2", _H, "Nintendo", 9),
    PlatformInfo("gb", "Game Boy", _H, "Nintendo", 4, ("gameboy",)),
    PlatformInfo("gbc", "Game Boy Color", _H, "Nintendo", 5, ("gameboy-color",)),
    PlatformInfo("gba", "Game Boy Advance", _H, "Nintendo", 6, ("gameboy-advance",)),
    PlatformInfo("nds", "Nintendo DS", _H, "Nintendo", 7, ("ds",)),
    PlatformInfo("nintendo-dsi", "Nintendo DSi", _H, "Nintendo", 7, ("dsi",)),
    PlatformInfo("3ds", "Nintendo 3DS", _H, "Nintendo", 8, ("n3ds",)),
    PlatformInfo("new-nintendo-3ds", "New Nintendo 3DS", _H, "Nintendo", 8),
    PlatformInfo("virtualboy", "Virtual Boy", _H, "Nintendo", 5, ("virtual-boy", "vb")),
    PlatformInfo("pokemon-mini", "Pokémon mini", _H, "Nintendo", 6),
    PlatformInfo("g-and-w", "Game & Watch", _H, "Nintendo", 2),
    # Sega
    PlatformInfo("sg1000", "SG-1000", _C, "Sega", 3),
    PlatformInfo("sms", "Sega Master System/Mark III", _C, "Sega", 3, ("mastersystem", "master-system")),
    PlatformInfo(
        "genesis",
        "Sega Mega Drive/Genesis",
        _C,
        "Sega",
        4,
        ("megadrive", "mega-drive", "genesis-slash-megadrive", "md"),
    ),
    PlatformInfo("segacd", "Sega CD", _C, "Sega", 4, ("sega-cd", "megacd", "mega-cd")),
    PlatformInfo("sega32", "Sega 32X", _C, "Sega", 4, ("32x", "sega-32x")),
    PlatformInfo("gamegear", "Sega Game Gear", _H, "Sega", 4, ("game-gear", "gg")),
    PlatformInfo("saturn", "Sega Saturn", _C, "Sega", 5),
    PlatformInfo("dc", "Dreamcast", _C, "Sega", 6, ("dreamcast",)),
    PlatformInfo("sega-pico", "Sega Pico", _C, "Sega", 4),
    # Sony
    PlatformInfo("psx", "PlayStation", _C, "Sony", 5, ("ps1", "ps", "playstation")),
    PlatformInfo("ps2", "PlayStation 2", _C, "Sony", 6),
    PlatformInfo("ps3", "PlayStation 3", _C, "Sony", 7),
    PlatformInfo("ps4", "PlayStation 4", _C, "Sony", 8, ("ps4--1",)),
    PlatformInfo("ps5", "PlayStation 5", _C, "Sony", 9),
    PlatformInfo("psp", "PlayStation Portable", _H, "Sony", 7),
    PlatformInfo("psvita", "PlayStation Vita", _H, "Sony", 8, ("vita",)),
    # Microsoft
    PlatformInfo("xbox", "Xbox", _C, "Microsoft", 6),
    PlatformInfo("xbox360", "Xbox 360", _C, "Microsoft", 7),
    PlatformInfo("xboxone", "Xbox One", _C, "Microsoft", 8),
    PlatformInfo("series-x-s", "Xbox Series X|S", _C, "Microsoft", 9),
    # NEC
    PlatformInfo("tg16", "TurboGrafx-16/PC Engine", _C, "NEC", 4, ("pce", "pcengine", "pc-engine")),
    PlatformInfo("turbografx-cd", "TurboGrafx-CD/PC Engine CD", _C, "NEC", 4, ("pcecd", "pce-cd")),
    PlatformInfo("supergrafx", "PC Engine SuperGrafx", _C, "NEC", 4, ("sgfx",)),
    PlatformInfo("pc-fx", "PC-FX", _C, "NEC", 5, ("pcfx",)),
    PlatformInfo("pc-8800-series", "PC-8800 Series", _P, "NEC", None, ("pc88",)),
    PlatformInfo("pc-9800-series", "PC-9800 Series", _P, "NEC", None, ("pc98",)),
    # Atari
    PlatformInfo("atari2600", "Atari 2600", _C, "Atari", 2, ("a2600",)),
    PlatformInfo("atari5200", "Atari 5200", _C, "Atari", 2, ("a5200",)),
    PlatformInfo("atari7800", "Atari 7800", _C, "Atari", 3, ("a7800",)),
    PlatformInfo("jaguar", "Atari Jaguar", _C, "Atari", 5, ("atari-jaguar",)),
    PlatformInfo("atari-jaguar-cd", "Atari Jaguar CD", _C, "Atari", 5, ("jaguarcd",)),
    PlatformInfo("lynx", "Atari Lynx", _H, "Atari", 4, ("atari-lynx",)),
    PlatformInfo("atari8bit", "Atari 8-bit", _P, "Atari", None, ("atari800",)),
    PlatformInfo("atari-st", "Atari ST/STE", _P, "Atari", None, ("atarist",)),
    # SNK
    PlatformInfo("neo-geo-pocket", "Neo Geo Pocket", _H, "SNK", 5, ("ngp",)),
    PlatformInfo("neo-geo-pocket-color", "Neo Geo Pocket Color", _H, "SNK", 5, ("ngpc",)),
    PlatformInfo("neogeoaes", "Neo Geo AES", _C, "SNK", 4, ("neogeo",)),
    PlatformInfo("neogeomvs", "Neo Geo MVS", _A, "SNK", 4),
    PlatformInfo("neo-geo-cd", "Neo Geo CD", _C, "SNK", 4, ("neocd",)),
    # Bandai and others (handhelds)
    PlatformInfo("wonderswan", "WonderSwan", _H, "Bandai", 5, ("ws",)),
    PlatformInfo("wonderswan-color", "WonderSwan Color", _H, "Bandai", 5, ("wsc",)),
    PlatformInfo("supervision", "Watara/QuickShot Supervision", _H, "Watara", 4),
    PlatformInfo("mega-duck-slash-cougar-boy", "Mega Duck/Cougar Boy", _H, "Welback", 4, ("megaduck",)),
    PlatformInfo("gamate", "Gamate", _H, "Bit Corporation", 4),
    PlatformInfo("arduboy", "Arduboy", _H, "Arduboy", None),
    # Other consoles
    PlatformInfo("3do", "3DO Interactive Multiplayer", _C, "3DO", 5, ("3do-interactive-multiplayer",)),
    PlatformInfo("colecovision", "ColecoVision", _C, "Coleco", 2, ("coleco",)),
    PlatformInfo("intellivision", "Intellivision", _C, "Mattel", 2, ("intv",)),
    PlatformInfo("vectrex", "Vectrex", _C, "GCE", 2),
    PlatformInfo("odyssey-2", "Odyssey 2/Videopac G7000", _C, "Magnavox", 2, ("videopac", "odyssey2")),
    PlatformInfo("fairchild-channel-f", "Fairchild Channel F", _C, "Fairchild", 2, ("channelf",)),
    PlatformInfo("philips-cd-i", "Philips CD-i", _C, "Philips", 4, ("cdi",)),
    PlatformInfo("amiga-cd32", "Amiga CD32", _C, "Commodore", 5, ("cd32",)),
    PlatformInfo("uzebox", "Uzebox", _C, "Uzebox", None),
    PlatformInfo("ouya", "Ouya", _C, "Ouya", 8),
    # Computers
    PlatformInfo("dos", "DOS", _P, "PC", None, ("msdos", "ms-dos", "pc-dos")),
    PlatformInfo("win", "PC (Microsoft Windows)", _P, "PC", None, ("windows", "pc")),
    PlatformInfo("linux", "Linux", _P, "PC", None),
    PlatformInfo("mac", "Mac", _P, "Apple", None, ("macos",)),
    PlatformInfo("appleii", "Apple II", _P, "Apple", None, ("apple2",)),
    PlatformInfo("amiga", "Amiga", _P, "Commodore", None),
    PlatformInfo("c64", "Commodore C64/128/MAX", _P, "Commodore", None, ("commodore64",)),
    PlatformInfo("c128", "Commodore 128", _P, "Commodore", None),
    PlatformInfo("vic-20", "Commodore VIC-20", _P, "Commodore", None, ("vic20",)),
    PlatformInfo("c-plus-4", "Commodore Plus/4", _P, "Commodore", None, ("plus4",)),
    PlatformInfo("cpet", "Commodore PET", _P, "Commodore", None, ("pet",)),
    PlatformInfo("acpc", "Amstrad CPC", _P, "Amstrad", None, ("amstradcpc", "cpc")),
    PlatformInfo("zxs", "ZX Spectrum", _P, "Sinclair", None, ("zxspectrum", "zx-spectrum")),
    PlatformInfo("zx81", "Sinclair ZX81", _P, "Sinclair", None),
    PlatformInfo("msx", "MSX", _P, "Microsoft", None),
    PlatformInfo("msx2", "MSX2", _P, "Microsoft", None),
    PlatformInfo("x68000", "Sharp X68000", _P, "Sharp", None),
    PlatformInfo("fm-towns", "FM Towns", _P, "Fujitsu", None, ("fmtowns",)),
    PlatformInfo("bbcmicro", "BBC Microcomputer System", _P, "Acorn", None, ("bbc",)),
    # Arcade and mobile, web
    PlatformInfo("arcade", "Arcade", _A, "Arcade", None, ("mame", "fbneo", "fba")),
    PlatformInfo("cps1", "Capcom Play System", _A, "Capcom", None),
    PlatformInfo("cps2", "Capcom Play System 2", _A, "Capcom", None),
    PlatformInfo("cps3", "Capcom Play System 3", _A, "Capcom", None),
    PlatformInfo("android", "Android", "Operating System", "Google", None),
    PlatformInfo("ios", "iOS", "Operating System", "Apple", None),
    PlatformInfo("browser", "Web browser", "Platform", "Web", None, ("flash",)),
    PlatformInfo("pico-8", "PICO-8", "Fantasy Console", "Lexaloffle", None, ("pico8",)),
    PlatformInfo("tic-80", "TIC-80", "Fantasy Console", "Nesbox", None, ("tic80",)),
    PlatformInfo("wasm-4", "WASM-4", "Fantasy Console", "WASM-4", None, ("wasm4",)),
)

BY_SLUG: dict[str, PlatformInfo] = {p.slug: p for p in PLATFORMS}
_BY_ALIAS: dict[str, PlatformInfo] = {}
for _p in PLATFORMS:
    _BY_ALIAS[_p.slug] = _p
    for _a in _p.aliases:
        _BY_ALIAS.setdefault(_a, _p)

# Platforms the in-browser emulators can run (RomM's EmulatorJS list + Ruffle's "browser").
PLAYABLE_SLUGS: frozenset[str] = frozenset(
    [
        "3do",
        "amiga",
        "amiga-cd",
        "amiga-cd32",
        "arcade",
        "neogeoaes",
        "neogeomvs",
        "atari2600",
        "atari5200",
        "atari7800",
        "c-plus-4",
        "cpet",
        "c64",
        "c128",
        "colecovision",
        "jaguar",
        "lynx",
        "dos",
        "neo-geo-pocket",
        "neo-geo-pocket-color",
        "nes",
        "famicom",
        "fds",
        "n64",
        "64dd",
        "nds",
        "nintendo-dsi",
        "gb",
        "gba",
        "gbc",
        "pc-fx",
        "philips-cd-i",
        "psx",
        "psp",
        "segacd",
        "sega32",
        "genesis",
        "sms",
        "gamegear",
        "saturn",
        "snes",
        "sfam",
        "tg16",
        "vic-20",
        "virtualboy",
        "wonderswan",
        "wonderswan-color",
        "browser",
    ]
)

# Platforms whose files are not hashed (huge installs, encrypted images).
NON_HASHABLE_SLUGS: frozenset[str] = frozenset(
    [
        "amazon-alexa",
        "amazon-fire-tv",
        "android",
        "gear-vr",
        "ios",
        "ipad",
        "linux",
        "mac",
        "meta-quest-2",
        "meta-quest-3",
        "oculus-go",
        "oculus-quest",
        "oculus-rift",
        "ps3",
        "ps4",
        "ps5",
        "psvr",
        "psvr2",
        "series-x-s",
        "switch",
        "switch-2",
        "wiiu",
        "win",
        "xbox360",
        "xboxone",
    ]
)


def lookup(fs_slug: str) -> PlatformInfo | None:
    """The catalogue entry for a folder name (slug or alias, case-insensitive), or None."""
    return _BY_ALIAS.get(fs_slug.strip().lower())


def fallback_name(slug: str) -> str:
    return slug.replace("-", " ").replace("_", " ").title()
