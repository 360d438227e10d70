"""The parts of the Game Boy cartridge header the /v1 workspace reads.

Offsets are absolute. The header ends at 0x150, so a shorter body is not a Game Boy ROM. The
title is read the way pkmnapi reads it: all 16 bytes 0x134..0x143, *including* the CGB flag at
0x143, decoded as strict UTF-8 with NULs trimmed from both ends (spaces and inner NULs kept).
The CGB rule follows from that: a CGB-enhanced (0x80) or CGB-only (0xC0) cartridge puts a byte
there that cannot stand alone in UTF-8, so its title does not decode and the ROM is refused.
"""

from __future__ import annotations

HEADER_END = 0x150
TITLE_START = 0x134
TITLE_END = 0x144  # exclusive: the title field includes the CGB flag byte 0x143


class BadHeader(ValueError):
    """The bytes are not a Game Boy ROM header pkmnapi would accept."""


def title_bytes(head: bytes) -> bytes:
    """The 16 raw title bytes of a ROM (``head`` = at least the first 0x150 bytes)."""
    if len(head) < HEADER_END:
        raise BadHeader(f"ROM is {len(head)} bytes; a Game Boy header needs {HEADER_END}")
    return bytes(head[TITLE_START:TITLE_END])


def decode_title(raw: bytes) -> str:
    """pkmnapi's ``name``: strict UTF-8, NUL (only) trimmed from both ends."""
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        raise BadHeader(f"title bytes are not valid UTF-8 ({e.reason} at offset {TITLE_START + e.start:#x})") from None
    return text.strip("\x00")


def read_title(head: bytes) -> str:
    return decode_title(title_bytes(head))
