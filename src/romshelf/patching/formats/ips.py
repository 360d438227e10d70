"""IPS (and IPS32): ``PATCH``, then records ``offset(3 BE) size(2 BE) data`` or, with size 0, an
RLE run ``count(2 BE) value(1)``; ``EOF`` ends the records. Three more bytes after ``EOF`` are
Lunar IPS's truncation extension: the output's final size. Anything else after ``EOF`` (EBP's
JSON metadata) is ignored. IPS32 uses 4-byte offsets and ends with ``EEOF``.

IPS carries no checksum: the result is always "validated" (as RomPatcher reports it)."""

from __future__ import annotations

from pathlib import Path

from romshelf.patching.binio import PatchError, PatchResult, Reader, RecordOutput


def apply(rom: Path, patch: Path, out: Path, max_bytes: int) -> PatchResult:
    with Reader(patch, "IPS") as r:
        magic = r.read(5, "the header")
        wide = magic == b"IPS32"
        fmt = "IPS32" if wide else "IPS"
        r.fmt = fmt
        offset_len, eof = (4, b"EEOF") if wide else (3, b"EOF")
        records = 0
        with RecordOutput(rom, out, fmt, max_bytes) as o:
            while True:
                if r.remaining == 0:
                    raise PatchError(f"{fmt} patch has no {eof.decode()} marker: the file is truncated")
                head = r.read(offset_len, "a record offset")
                if head == eof:
                    break
                offset = int.from_bytes(head, "big")
                size = r.uint(2, "a record size", big=True)
                if size:
                    o.write(offset, r.read(size, "record data"), f"record at offset {offset:#x}")
                else:
                    count = r.uint(2, "an RLE record", big=True)
                    value = r.u8("an RLE record")
                    o.fill(offset, value, count, f"RLE record at offset {offset:#x}")
                records += 1
            notes = [f"{records} records"]
            if not wide and r.remaining == 3:
                new_size = r.uint(3, "the truncation size", big=True)
                o.resize(new_size, "truncation size")
                notes.append(f"output truncated to {new_size} bytes")
            return PatchResult(fmt, True, o.size, notes)
