"""Layout detection, exclusions, categories."""

from __future__ import annotations

import pytest

from romshelf.library.layout import (
    Layout,
    category_of,
    detect_layout,
    is_excluded_dir,
    is_excluded_file,
    list_roms,
    platform_folders,
)


@pytest.mark.parametrize(
    "name",
    [
        ".DS_Store",
        "Thumbs.db",
        "desktop.ini",
        ".hidden.gb",
        "save.tmp",
        "x.bak",
        "a.log",
        "gamelist.xml",
        "metadata.pegasus.txt",
        "Game.gb:Zone.Identifier",
        "._Game.gb",
        "download.crdownload",
        "THUMBS.DB",
    ],
)
def test_excluded_files(name):
    assert is_excluded_file(name)


@pytest.mark.parametrize("name", ["Game (USA).gb", "Game.zip", "README", "Disc 1.cue", "game.tar.gz"])
def test_kept_files(name):
    assert not is_excluded_file(name)


@pytest.mark.parametrize(
    "name", ["@eaDir", "__MACOSX", ".Trash-1000", "$RECYCLE.BIN", "System Volume Information", "#recycle", ".git"]
)
def test_excluded_dirs(name):
    assert is_excluded_dir(name)
    assert not is_excluded_dir("Final Fantasy VII (USA)")


def test_categories():
    assert category_of(["manual"]) == "manual"
    assert category_of(["Screenshots"]) == "screenshot"
    assert category_of(["soundtrack"]) == "soundtrack"
    assert category_of(["translations", "x"]) == "translation"
    assert category_of(["dlc"]) == "dlc"
    assert category_of(["updates"]) == "update"
    assert category_of(["patches"]) == "patch"
    assert category_of(["misc"]) is None


def test_layout_a_wins_and_b_is_detected(ctx):
    lib = ctx.storages.library
    assert detect_layout(lib) == Layout("A")  # empty library: A
    lib.write("gb/roms/Tetris.gb", b"x")
    lib.write("snes/roms/Mario.sfc", b"x")
    lib.write("notes/readme.txt", b"x")
    assert detect_layout(lib) == Layout("B")
    assert platform_folders(lib, Layout("B")) == ["gb", "snes"]
    lib.write("roms/gba/Game.gba", b"x")
    assert detect_layout(lib) == Layout("A")
    assert platform_folders(lib, Layout("A")) == ["gba"]
    assert Layout("A").platform_path("gb") == "roms/gb"
    assert Layout("B").platform_path("gb") == "gb/roms"


def test_list_roms_files_and_folders(ctx):
    lib = ctx.storages.library
    lib.write("roms/psx/FF7 (USA)/FF7 (Disc 2).bin", b"22")
    lib.write("roms/psx/FF7 (USA)/FF7 (Disc 1).bin", b"1")
    lib.write("roms/psx/FF7 (USA)/manual/manual.pdf", b"pdf")
    lib.write("roms/psx/FF7 (USA)/@eaDir/thumb.jpg", b"x")
    lib.write("roms/psx/FF7 (USA)/.DS_Store", b"x")
    lib.write("roms/psx/Crash.bin", b"333")
    lib.write("roms/psx/Thumbs.db", b"x")
    lib.write("roms/psx/__MACOSX/x.bin", b"x")
    roms = list_roms(lib, "roms/psx")
    assert [r.fs_name for r in roms] == ["Crash.bin", "FF7 (USA)"]
    crash, ff7 = roms
    assert not crash.is_dir and crash.size == 3
    assert ff7.is_dir
    assert [(f.file_path, f.file_name, f.top_level, f.category) for f in ff7.files] == [
        ("roms/psx/FF7 (USA)", "FF7 (Disc 1).bin", True, None),
        ("roms/psx/FF7 (USA)", "FF7 (Disc 2).bin", True, None),
        ("roms/psx/FF7 (USA)/manual", "manual.pdf", False, "manual"),
    ]
    assert ff7.size == 6
