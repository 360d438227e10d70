"""File-name parts, tag parsing (examples from reference/romm_roms.md §5.3) and the sort key."""

from __future__ import annotations

import pytest

from romshelf.roms.naming import name_no_tags, name_sort_key, parse_tags, split_extension


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "Zelda (USA) (Rev 1) [En,Fr] [Test].n64",
            dict(regions=["USA"], revision="1", languages=["English", "French"], tags=["Test"], version=""),
        ),
        (
            "Game (Europe) (En,De,Fr,Es,It) (Rev A) [Reg-PAL] [Beta].rom",
            dict(
                regions=["Europe", "PAL"],
                revision="A",
                languages=["English", "German", "French", "Spanish", "Italian"],
                tags=["Beta"],
            ),
        ),
        ("stardew_valley(v1.5.6.1988831614)(53038).exe", dict(version="1.5.6.1988831614", tags=["53038"])),
        ("Patapon (Fr, En) (Rev 1).iso", dict(languages=["French", "English"], regions=[], revision="1", tags=[])),
        ("Game (Nl).gb", dict(languages=["Dutch"], regions=[])),
        ("Game (NL).gb", dict(regions=["Netherlands"], languages=[])),
        ("Game (nl).gb", dict(regions=["Netherlands"])),
        ("Pokemon (Japan, USA).gb", dict(regions=["Japan", "USA"])),
        ("Tetris (World).gb", dict(regions=["World"])),
        ("Game (Proto) [!] [b].gb", dict(tags=["Proto", "!", "b"])),
        ("Game (versionB) (Variation).gb", dict(tags=["versionB", "Variation"], version="")),
        ("Game (V1.1).gb", dict(version="1.1")),
        ("Game (Rev-B).gb", dict(revision="B")),
        ("Sonic (EU) [T-En].md", dict(tags=["EU", "T-En"])),
        ("Game (2026) (Demo).gb", dict(tags=["2026", "Demo"])),
        # more examples from reference/romm_roms.md §5.3 and its tests (§9 item 10, §5.1 fixtures)
        ("test_rom (Europe).zip", dict(regions=["Europe"], languages=[], tags=[])),
        ("Super Mario 64 (J) (Rev A)", dict(regions=["Japan"], revision="A")),
        ("Paper Mario (USA).z64", dict(regions=["USA"], revision="", version="", tags=[])),
        ("Sonic (EU) [T]", dict(regions=["Taiwan"], tags=["EU"])),  # exact code T = Taiwan, as RomM reads it
        ("Super Mario 64 (J) (Rev A) [Part 1].z64", dict(tags=["Part 1"], revision="A")),
        ("Game (usa).gb", dict(regions=["USA"])),  # region name, any case
        ("Game (europe).gb", dict(regions=["Europe"])),
        ("Game (u).gb", dict(regions=["USA"])),  # region code, any case
        ("Game (NO).gb", dict(regions=["Norway"], languages=[])),  # exact region code
        ("Game (No).gb", dict(languages=["Norwegian"], regions=[])),  # exact language code
        ("Game (no).gb", dict(regions=["Norway"], languages=[])),  # any case: regions first
        ("Game (english).gb", dict(languages=["English"])),
        ("Game (EN).gb", dict(languages=["English"])),
        ("Game (de).gb", dict(languages=["German"], regions=[])),
        ("Game (En,Fr,De).gb", dict(languages=["English", "French", "German"])),
        ("Game (nolang).gb", dict(languages=["No Language"])),
        ("Game (Version 2.0).gb", dict(version="2.0")),
        ("Game (ver.3).gb", dict(version="3")),
        ("Game (v1.0) (v1.2).gb", dict(version="1.2")),  # last wins
        ("Game (Reg NTSC).gb", dict(regions=["NTSC"])),
        ("Game (Reg-u).gb", dict(regions=["USA"])),  # normalised when it is a known region
        ("Game (Reg-).gb", dict(regions=[], tags=["Reg-"])),
        ("Game (Rev A).gb", dict(revision="A")),
        ("Game (rev 2).gb", dict(revision="2")),
        ("Game (Rev1).gb", dict(revision="", tags=["Rev1"])),  # needs a space or dash
        ("Game (Beta) (Proto) (Sample) (Kiosk).gb", dict(tags=["Beta", "Proto", "Sample", "Kiosk"])),
        ("Game (Unl).gb", dict(regions=["Unlicensed"])),
        ("Game (PD).gb", dict(regions=["Public Domain"])),
        ("Game [b1] [a] [h] [o] [p] [t2] [f].gb", dict(tags=["b1", "a", "h", "o", "p", "t2", "f"], regions=[])),
        ("Game (USA) (USA).gb", dict(regions=["USA"])),  # no duplicates
        ("Game.gb", dict(regions=[], languages=[], tags=[], revision="", version="")),
    ],
)
def test_parse_tags_examples(name, expected):
    parsed = parse_tags(name)
    for key, value in expected.items():
        assert getattr(parsed, key) == value, (key, getattr(parsed, key))


def test_name_parts():
    assert split_extension("Game (USA).gba") == ("Game (USA)", "gba")
    assert split_extension("save.tar.gz") == ("save", "tar.gz")
    assert split_extension("foo.srm.png") == ("foo", "srm.png")
    assert split_extension("Folder Game (USA)") == ("Folder Game (USA)", "")
    assert name_no_tags("Zelda (USA) (Rev 1) [En,Fr] [Test].n64") == "Zelda"
    assert name_no_tags("pokemon [2026-01-01_00-00-00].srm") == "pokemon"
    assert name_no_tags("(Only Tags).gb") == "(Only Tags)"


def test_name_parts_more():
    assert name_no_tags("Final Fantasy VII (USA)") == "Final Fantasy VII"
    assert split_extension("Final Fantasy VII (USA)") == ("Final Fantasy VII (USA)", "")
    assert split_extension("Game (v1.1).gb") == ("Game (v1.1)", "gb")
    assert name_no_tags("Game (Rev 1) [!].gb") == "Game"
    assert name_no_tags("Game (USA) Extra.gb") == "Game (USA) Extra"  # only trailing groups go


def test_name_sort_key():
    assert name_sort_key("Metroid Prime") == "metroid prime"
    assert name_sort_key("The Legend of Zelda") == "legend of zelda, the"
    assert name_sort_key("A Boy and His Blob") == "boy and his blob, a"
    assert name_sort_key("Theme Park") == "theme park"
    assert name_sort_key("Zelda 2") < name_sort_key("Zelda 10")
    assert name_sort_key("Zelda 10") == "zelda 000000000010"
    assert len(name_sort_key("x" * 1000)) == 500
    assert name_sort_key("") == ""
    assert name_sort_key("Die Siedler 2") == "siedler 000000000002, die"
    assert name_sort_key("Les Misérables") == "misérables, les"
    assert name_sort_key("An American Tail") == "american tail, an"
    assert name_sort_key("The") == "the"  # an article alone is a name
    assert name_sort_key("Pokemon Red") < name_sort_key("Pokemon Red 2") < name_sort_key("Pokemon Red 10")
