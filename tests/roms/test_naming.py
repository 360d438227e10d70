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


def test_name_sort_key():
    assert name_sort_key("Metroid Prime") == "metroid prime"
    assert name_sort_key("The Legend of Zelda") == "legend of zelda, the"
    assert name_sort_key("A Boy and His Blob") == "boy and his blob, a"
    assert name_sort_key("Theme Park") == "theme park"
    assert name_sort_key("Zelda 2") < name_sort_key("Zelda 10")
    assert name_sort_key("Zelda 10") == "zelda 000000000010"
    assert len(name_sort_key("x" * 1000)) == 500
    assert name_sort_key("") == ""
