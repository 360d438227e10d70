"""Console header parsing on synthetic cartridges, with correct and broken checksums."""

from __future__ import annotations

import pytest
from factories import hashes
from library_carts import gb_rom, gba_rom, ines_rom, md_rom, n64_rom, snes_rom

from romshelf.library import headers


def inspect(name: str, data: bytes) -> dict | None:
    insp = headers.inspect(name, len(data), memoryview(data))
    if insp is None:
        return None
    for i in range(0, len(data), 7000):  # odd chunk sizes: the streaming sums must not care
        insp.feed(memoryview(data)[i : i + 7000])
    return insp.finish()


def test_game_boy_good_dump():
    info = inspect("Test (USA).gb", gb_rom(b"POKEMON RED", size_code=1))
    assert info["format"] == "gb"
    assert info["title"] == "POKEMON RED"
    assert info["cgb_flag"] == "none"
    assert info["logo_ok"] is True
    assert info["header_checksum_ok"] is True
    assert info["global_checksum_ok"] is True
    assert info["global_checksum"] == info["global_checksum_computed"]
    assert info["rom_size"] == 0x10000 and info["size_ok"] is True
    assert info["new_licensee"] == "01"
    assert info["valid"] is True


@pytest.mark.parametrize(("flag", "mode", "title"), [(0x80, "supported", "CGB TITLE"), (0xC0, "required", "CGB ONLY")])
def test_game_boy_color_flag_and_title(flag, mode, title):
    info = inspect("x.gbc", gb_rom(title.encode() + b"\x00" * 8 + b"Q", cgb=flag))
    assert info["cgb_flag"] == mode
    assert info["cgb_flag_value"] == flag
    assert info["title"] == title  # the 16th byte is the CGB flag, not part of the title
    assert info["valid"] is True


def test_game_boy_broken_checksums():
    bad_header = inspect("x.gb", gb_rom(bad_header=True))
    assert bad_header["header_checksum_ok"] is False
    assert bad_header["valid"] is False
    bad_global = inspect("x.gb", gb_rom(bad_global=True))
    assert bad_global["header_checksum_ok"] is True
    assert bad_global["global_checksum_ok"] is False
    assert bad_global["valid"] is False


def test_game_boy_recognised_by_logo_whatever_the_extension():
    assert inspect("game.bin", gb_rom())["format"] == "gb"


def test_game_boy_truncated_dump_fails_size_check():
    info = inspect("x.gb", gb_rom(size_code=1)[:0x8000])
    assert info["size_ok"] is False
    assert info["valid"] is False


def test_gba_header_and_complement_check():
    info = inspect("Advance (Europe).gba", gba_rom(b"TESTADVANCE", code=b"ATSE"))
    assert info["format"] == "gba"
    assert info["title"] == "TESTADVANCE"
    assert info["game_code"] == "ATSE"
    assert info["maker_code"] == "01"
    assert info["fixed_value_ok"] is True
    assert info["header_checksum_ok"] is True
    assert info["valid"] is True
    broken = inspect("x.gba", gba_rom(bad=True))
    assert broken["header_checksum_ok"] is False
    assert broken["valid"] is False


def test_ines_header():
    data = ines_rom(prg_banks=2, chr_banks=1, mapper=0x14)
    info = inspect("Game (USA).nes", data)
    assert info["format"] == "nes"
    assert info["header_format"] == "iNES"
    assert info["mapper"] == 0x14
    assert info["prg_rom_size"] == 32768
    assert info["chr_rom_size"] == 8192
    assert info["battery"] is True
    assert info["size_ok"] is True
    assert info["valid"] is True


def test_ines_wrong_size_is_invalid():
    info = inspect("Game.nes", ines_rom(prg_banks=2, chr_banks=1, extra=100))
    assert info["size_ok"] is False
    assert info["valid"] is False


def test_nes2_header_allows_trailing_data_and_reads_mapper_bits():
    data = bytearray(ines_rom(prg_banks=1, chr_banks=0, mapper=0x42, nes2=True, extra=64))
    data[8] = 0x31  # submapper 3, mapper bits 8-11 = 1
    info = inspect("Game.nes", bytes(data))
    assert info["header_format"] == "NES 2.0"
    assert info["mapper"] == 0x142
    assert info["submapper"] == 3
    assert info["size_ok"] is True


def test_nes_headerless_skip_gives_no_intro_hash():
    data = ines_rom()
    assert headers.headerless_skip("Game.nes", len(data), memoryview(data)) == 16
    assert headers.headerless_skip("Game.gb", 40000, memoryview(gb_rom())) == 0


@pytest.mark.parametrize("hirom", [False, True])
def test_snes_lorom_hirom(hirom):
    info = inspect("Game (USA).sfc", snes_rom(hirom=hirom, banks=4))
    assert info["format"] == "snes"
    assert info["layout"] == ("HiROM" if hirom else "LoROM")
    assert info["title"] == "SNES TEST GAME"
    assert info["complement_ok"] is True
    assert info["checksum_ok"] is True
    assert info["copier_header"] is False
    assert info["valid"] is True


def test_snes_mirrored_checksum_of_odd_size():
    info = inspect("Game.sfc", snes_rom(banks=3))  # 96 KiB: 64 KiB + 32 KiB mirrored twice
    assert info["checksum_ok"] is True
    info = inspect("Game.sfc", snes_rom(banks=5))  # 160 KiB: 128 + 32 x4
    assert info["checksum_ok"] is True


def test_snes_copier_header_and_broken_checksum():
    data = snes_rom(copier=True)
    info = inspect("Game.smc", data)
    assert info["copier_header"] is True
    assert info["checksum_ok"] is True
    assert headers.headerless_skip("Game.smc", len(data), memoryview(data)) == 512
    broken = inspect("Game.sfc", snes_rom(bad_checksum=True))
    assert broken["complement_ok"] is True
    assert broken["checksum_ok"] is False
    assert broken["valid"] is False


@pytest.mark.parametrize("order", ["big-endian", "byte-swapped", "little-endian"])
def test_n64_byte_orders(order):
    info = inspect("Game.z64", n64_rom(order))
    assert info["format"] == "n64"
    assert info["byte_order"] == order
    assert info["title"] == "N64 TEST TITLE"
    assert info["cartridge_id"] == "TT"
    assert info["country_code"] == "E"
    assert info["crc1"] == "12345678"
    assert info["crc2"] == "9abcdef0"


def test_mega_drive_header_and_checksum():
    info = inspect("Sonic (World).md", md_rom(title=b"SONIC TEST"))
    assert info["format"] == "md"
    assert info["system"] == "SEGA MEGA DRIVE"
    assert info["title"] == "SONIC TEST"
    assert info["serial"] == "GM 00001234-00"
    assert info["regions"] == "JUE"
    assert info["checksum_ok"] is True
    assert info["valid"] is True
    broken = inspect("x.bin", md_rom(bad=True))
    assert broken["checksum_ok"] is False
    assert broken["valid"] is False


def test_unknown_files_have_no_header():
    assert inspect("readme.txt", b"hello world, this is not a rom" * 100) is None
    assert inspect("tiny.gb", b"x" * 10) is None


def test_garbage_with_a_rom_extension_does_not_crash():
    for name in ("x.gb", "x.gba", "x.sfc", "x.nes", "x.md"):
        data = bytes(range(256)) * 300
        info = inspect(name, data)
        assert info is None or info["valid"] in (True, False, None)


def test_headerless_hash_values():
    from romshelf.core.hashing import hash_bytes

    data = ines_rom()
    assert hash_bytes(data, skip=16).columns() == hashes(data[16:])
