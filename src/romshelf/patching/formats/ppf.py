"""PPF 1.0, 2.0 and 3.0 (PlayStation Patch Format).

Header: ``PPF10``/``PPF20``/``PPF30``, an encoding byte (version - 1), a 50-byte description.
PPF2 adds the input file size (u32) and a 1024-byte block copied from the original image at
0x9320; PPF3 adds image type (0 BIN: block at 0x9320, 1 GI: at 0x80A0), block-check flag,
undo-data flag and a spare byte, then the block if flagged. Records: offset (u32; u64 in PPF3),
length (u8), data, and in PPF3 with undo data as many bytes of original data. An optional
``@BEGIN_FILE_ID.DIZ ... @END_FILE_ID.DIZ`` trailer is skipped.

``validated`` is the block check (and PPF2's size check); PPF1 carries none (true). Records are
applied on a copy of the ROM; offsets past the size limit are refused."""

from __future__ import annotations

from pathlib import Path

from romshelf.patching.binio import PatchError, PatchResult, Reader, RecordOutput, read_at

DIZ_BEGIN = b"@BEGIN_FILE_ID.DIZ"
DIZ_END = b"@END_FILE_ID.DIZ"
BLOCK_AT = {0: 0x9320, 1: 0x80A0}


def _records_end(patch: Path, size: int, start: int) -> int:
    tail_len = min(size - start, 3072 + len(DIZ_BEGIN) + len(DIZ_END) + 8)
    tail = read_at(patch, size - tail_len, tail_len)
    if DIZ_END in tail[-(len(DIZ_END) + 8) :]:
        at = tail.rfind(DIZ_BEGIN)
        if at >= 0:
            return size - tail_len + at
    return size


def apply(rom: Path, patch: Path, out: Path, max_bytes: int) -> PatchResult:
    with Reader(patch, "PPF") as r:
        magic = r.read(5, "the header")
        if magic[:3] != b"PPF" or magic[3:] not in (b"10", b"20", b"30"):
            raise PatchError("Not a PPF 1.0, 2.0 or 3.0 patch")
        version = int(magic[3:4])
        fmt = f"PPF{version}"
        r.fmt = fmt
        encoding = r.u8("the header")
        if encoding != version - 1:
            raise PatchError(f"{fmt} patch has an invalid header (encoding {encoding})")
        description = r.read(50, "the description").rstrip(b" \x00").decode("latin-1")
        block: bytes | None = None
        block_at = BLOCK_AT[0]
        undo = False
        in_size = None
        if version == 2:
            in_size = r.uint(4, "the input size")
            block = r.read(1024, "the block check")
        elif version == 3:
            image_type = r.u8("the header")
            check = r.u8("the header")
            undo = bool(r.u8("the header"))
            r.u8("the header")
            block_at = BLOCK_AT.get(image_type, BLOCK_AT[0])
            if check:
                block = r.read(1024, "the block check")
        r.end = _records_end(patch, r.size, r.pos)
        rom_size = rom.stat().st_size
        validated = True
        notes = []
        if in_size is not None and in_size != rom_size:
            validated = False
            notes.append(f"input is {rom_size} bytes, the patch expects {in_size}")
        if block is not None and read_at(rom, block_at, 1024) != block:
            validated = False
            notes.append(f"the 1024-byte block at {block_at:#x} does not match the patch's block check")
        offset_len = 8 if version == 3 else 4
        records = 0
        with RecordOutput(rom, out, fmt, max_bytes) as o:
            while r.remaining > 0:
                offset = r.uint(offset_len, "a record offset")
                length = r.u8("a record length")
                data = r.read(length, "record data")
                if undo:
                    r.read(length, "undo data")
                o.write(offset, data, f"record at offset {offset:#x}")
                records += 1
            notes.insert(0, f"{records} records")
            return PatchResult(fmt, validated, o.size, notes, description=description)
