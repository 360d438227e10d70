"""APS, both formats that share the extension.

APS (N64), ``APS10``: patch type (0 simple, 1 N64), encoding (0), 50-byte description; an N64
patch then has the original image format (0 Doctor V64 byte-swapped, 1 big-endian), the 3-byte
cart id + country from 0x3C and the 8-byte CRC from 0x10 of the original image, 5 spare bytes;
then the output size (u32). Records: offset (u32), length (u8) and data, or length 0 and an RLE
run ``value(1) count(1)``. ``validated``: the cart id and CRC match (N64 type), else true.

APS (GBA), ``APS1``: source size, target size (u32 each), then 64 KiB blocks: offset (u32),
CRC16 of the source block and of the target block (CRC-16/CCITT-FALSE), 65536 XOR bytes.
``validated``: the source size and every source block's CRC16 match."""

from __future__ import annotations

import binascii
from pathlib import Path

from romshelf.patching.binio import PatchError, PatchResult, Reader, RecordOutput, human, read_at, xor

GBA_BLOCK = 0x10000
GBA_RECORD = 4 + 2 + 2 + GBA_BLOCK


def is_n64(head: bytes) -> bool:
    return head[:5] == b"APS10" and len(head) >= 7 and head[5] in (0, 1) and head[6] == 0


def _swap16(data: bytes) -> bytes:
    b = bytearray(data)
    b[0::2], b[1::2] = data[1::2], data[0::2]
    return bytes(b)


def apply_n64(rom: Path, patch: Path, out: Path, max_bytes: int) -> PatchResult:
    with Reader(patch, "APS (N64)") as r:
        r.read(5, "the header")
        patch_type = r.u8("the header")
        r.u8("the header")
        description = r.read(50, "the description").rstrip(b" \x00").decode("latin-1")
        validated = True
        notes = []
        if patch_type == 1:
            image_format = r.u8("the N64 header")
            cart = r.read(3, "the N64 header")
            crc = r.read(8, "the N64 header")
            r.read(5, "the N64 header")
            got_cart = read_at(rom, 0x3C, 4)
            got_crc = read_at(rom, 0x10, 8)
            if image_format == 0:  # Doctor V64 images are byte-swapped in 16-bit words
                got_cart, got_crc = _swap16(got_cart.ljust(4, b"\0")), _swap16(got_crc.ljust(8, b"\0"))
            if got_cart[:3] != cart or got_crc != crc:
                validated = False
                notes.append("the ROM's cart id / CRC do not match the patch's")
        out_size = r.uint(4, "the output size")
        with RecordOutput(rom, out, "APS (N64)", max_bytes) as o:
            o.resize(out_size)
            records = 0
            while r.remaining > 0:
                offset = r.uint(4, "a record offset")
                length = r.u8("a record length")
                if length:
                    data = r.read(length, "record data")
                    if offset + length > out_size:
                        raise PatchError(f"APS (N64) record at offset {offset:#x} is past the output size")
                    o.write(offset, data)
                else:
                    value = r.u8("an RLE record")
                    count = r.u8("an RLE record")
                    if offset + count > out_size:
                        raise PatchError(f"APS (N64) RLE record at offset {offset:#x} is past the output size")
                    o.fill(offset, value, count)
                records += 1
            notes.insert(0, f"{records} records")
            return PatchResult("APS (N64)", validated, o.size, notes, description=description)


def apply_gba(rom: Path, patch: Path, out: Path, max_bytes: int) -> PatchResult:
    with Reader(patch, "APS (GBA)") as r:
        r.read(4, "the header")
        src_size = r.uint(4, "the source size")
        tgt_size = r.uint(4, "the target size")
        if (r.size - 12) % GBA_RECORD:
            raise PatchError("APS (GBA) patch is truncated: it does not end on a whole 64 KiB block")
        if tgt_size > max_bytes:
            raise PatchError(f"APS (GBA) patch claims an output of {human(tgt_size)}, more than the limit")
        rom_size = rom.stat().st_size
        validated = rom_size == src_size
        notes = [] if validated else [f"input is {rom_size} bytes, the patch expects {src_size}"]
        bad_blocks = 0
        with open(rom, "rb") as src, RecordOutput(rom, out, "APS (GBA)", max_bytes) as o:
            o.resize(tgt_size)
            records = 0
            while r.remaining > 0:
                offset = r.uint(4, "a block offset")
                src_crc = r.uint(2, "a block checksum")
                r.uint(2, "a block checksum")
                data = r.read(GBA_BLOCK, "block data")
                if offset >= tgt_size:
                    raise PatchError(f"APS (GBA) block at offset {offset:#x} is past the target size ({tgt_size})")
                src.seek(offset)
                block = src.read(GBA_BLOCK)
                if binascii.crc_hqx(block, 0xFFFF) != src_crc:
                    bad_blocks += 1
                block = block.ljust(GBA_BLOCK, b"\0")
                o.write(offset, xor(block, data)[: tgt_size - offset])
                records += 1
        if bad_blocks:
            validated = False
            notes.append(f"{bad_blocks} source block(s) do not match the patch's CRC16")
        notes.insert(0, f"{records} blocks")
        return PatchResult("APS (GBA)", validated, tgt_size, notes)
