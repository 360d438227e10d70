"""Synthetic cartridge images built in code, following the published header layouts (Pan Docs,
GBATEK, NESdev, SNESdev, n64brew, Sega's header spec). Each checksum is computed as the
hardware/spec defines it, so tests can also break one on purpose. No ROM binary is committed."""

from __future__ import annotations

from factories import random_bytes

GB_LOGO = bytes.fromhex(
    "CEED6666CC0D000B03730083000C000D0008111F8889000EDCCC6EE6DDDDD999BBBB67636E0EECCCDDDC999FBBB9333E"
)


def gb_rom(
    title: bytes = b"TESTGAME",
    *,
    cgb: int = 0x00,
    size_code: int = 0,
    seed: int = 1,
    bad_header: bool = False,
    bad_global: bool = False,
) -> bytes:
    size = 0x8000 << size_code
    data = bytearray(random_bytes(size, seed))
    data[0x104:0x134] = GB_LOGO
    data[0x134:0x144] = title.ljust(16, b"\x00")[:16]
    data[0x143] = cgb
    data[0x144:0x146] = b"01"
    data[0x146] = 0x00
    data[0x147] = 0x01  # MBC1
    data[0x148] = size_code
    data[0x149] = 0x00
    data[0x14A] = 0x01
    data[0x14B] = 0x33
    data[0x14C] = 0x00
    x = 0
    for b in data[0x134:0x14D]:
        x = (x - b - 1) & 0xFF
    data[0x14D] = (x + 1) & 0xFF if bad_header else x
    data[0x14E:0x150] = b"\x00\x00"
    total = sum(data) & 0xFFFF
    if bad_global:
        total = (total + 1) & 0xFFFF
    data[0x14E:0x150] = total.to_bytes(2, "big")
    return bytes(data)


def gba_rom(title: bytes = b"TESTADVANCE", *, code: bytes = b"ATSE", bad: bool = False, seed: int = 2) -> bytes:
    data = bytearray(random_bytes(0x4000, seed))
    data[0xA0:0xAC] = title.ljust(12, b"\x00")[:12]
    data[0xAC:0xB0] = code
    data[0xB0:0xB2] = b"01"
    data[0xB2] = 0x96
    data[0xB3] = 0x00
    data[0xB4:0xBD] = bytes(9)
    chk = 0
    for b in data[0xA0:0xBD]:
        chk = (chk - b) & 0xFF
    chk = (chk - 0x19) & 0xFF
    data[0xBD] = (chk ^ 0x01) if bad else chk
    return bytes(data)


def ines_rom(
    prg_banks: int = 2, chr_banks: int = 1, *, mapper: int = 1, nes2: bool = False, extra: int = 0, seed: int = 3
) -> bytes:
    header = bytearray(b"NES\x1a" + bytes(12))
    header[4] = prg_banks
    header[5] = chr_banks
    header[6] = ((mapper & 0x0F) << 4) | 0x02  # battery
    header[7] = (mapper & 0xF0) | (0x08 if nes2 else 0x00)
    body = random_bytes(prg_banks * 16384 + chr_banks * 8192 + extra, seed)
    return bytes(header) + body


def snes_rom(
    *,
    hirom: bool = False,
    banks: int = 4,
    title: bytes = b"SNES TEST GAME",
    copier: bool = False,
    bad_checksum: bool = False,
    seed: int = 4,
) -> bytes:
    """``banks`` blocks of 32 KiB; not a power of two -> the mirrored checksum."""
    data = bytearray(random_bytes(banks * 0x8000, seed))
    base = 0xFFC0 if hirom else 0x7FC0
    data[base : base + 0x15] = title.ljust(21, b" ")[:21]
    data[base + 0x15] = 0x21 if hirom else 0x20
    data[base + 0x16] = 0x02
    data[base + 0x17] = max(1, (len(data) // 1024 - 1).bit_length())
    data[base + 0x18] = 0x03
    data[base + 0x19] = 0x01
    data[base + 0x1A] = 0x33
    data[base + 0x1B] = 0x00
    data[base + 0x1C : base + 0x1E] = (0xFFFF).to_bytes(2, "little")  # complement placeholder
    data[base + 0x1E : base + 0x20] = (0x0000).to_bytes(2, "little")  # checksum placeholder
    data[base + 0x3C : base + 0x3E] = (0x8000).to_bytes(2, "little")  # reset vector
    n = len(data) // 0x8000
    sums = [sum(data[i * 0x8000 : (i + 1) * 0x8000]) for i in range(n)]

    def mirrored(blocks: list[int]) -> int:
        if len(blocks) & (len(blocks) - 1) == 0:
            return sum(blocks)
        p = 1 << (len(blocks).bit_length() - 1)
        rest = blocks[p:]
        r = 1 << (len(rest) - 1).bit_length()
        return sum(blocks[:p]) + mirrored(rest) * (p // r)

    checksum = mirrored(sums) & 0xFFFF
    if bad_checksum:
        checksum ^= 0x0100
    data[base + 0x1C : base + 0x1E] = (checksum ^ 0xFFFF).to_bytes(2, "little")
    data[base + 0x1E : base + 0x20] = checksum.to_bytes(2, "little")
    return (bytes(512) if copier else b"") + bytes(data)


def n64_rom(order: str = "big-endian", title: bytes = b"N64 TEST TITLE", seed: int = 5) -> bytes:
    data = bytearray(random_bytes(0x101000, seed))
    data[0:4] = b"\x80\x37\x12\x40"
    data[0x10:0x14] = bytes.fromhex("12345678")
    data[0x14:0x18] = bytes.fromhex("9abcdef0")
    data[0x20:0x34] = title.ljust(20, b" ")[:20]
    data[0x3B] = ord("N")
    data[0x3C:0x3E] = b"TT"
    data[0x3E] = ord("E")
    data[0x3F] = 0
    if order == "byte-swapped":
        out = bytearray(data)
        out[0::2], out[1::2] = data[1::2], data[0::2]
        return bytes(out)
    if order == "little-endian":
        out = bytearray(len(data))
        for i in range(4):
            out[i::4] = data[3 - i :: 4]
        return bytes(out)
    return bytes(data)


def md_rom(*, title: bytes = b"MEGA TEST", bad: bool = False, seed: int = 6) -> bytes:
    data = bytearray(random_bytes(0x20000, seed))
    data[0x100:0x110] = b"SEGA MEGA DRIVE "
    data[0x110:0x120] = b"(C)TEST 2024.JAN"
    data[0x120:0x150] = title.ljust(48, b" ")
    data[0x150:0x180] = title.ljust(48, b" ")
    data[0x180:0x18E] = b"GM 00001234-00"
    data[0x1A0:0x1A8] = (0).to_bytes(4, "big") + (len(data) - 1).to_bytes(4, "big")
    data[0x1F0:0x1F3] = b"JUE"
    words = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0x200, len(data), 2)) & 0xFFFF
    if bad:
        words ^= 0x0001
    data[0x18E:0x190] = words.to_bytes(2, "big")
    return bytes(data)
