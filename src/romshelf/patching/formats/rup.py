"""RUP (NINJA 2.0): a 2048-byte text header (``NINJA2``, encoding, author, version, title,
genre, language, date, web site, description), then commands: 0x01 opens a file entry (name,
ROM type, source and target sizes, source and target MD5, and when the sizes differ an overflow
mode ``A``/``M`` with the overflow bytes XOR 0xFF), 0x02 is an XOR record (offset, length,
bytes), 0x00 ends. Numbers are a length byte followed by that many little-endian bytes.

The entry whose source MD5 matches the ROM is applied; if the ROM matches an entry's target MD5
the patch is undone (RUP is reversible); otherwise the first entry is applied and the result is
not validated. ``validated`` also requires the output's MD5 to be the expected one."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from romshelf.patching.binio import CHUNK, PatchError, PatchResult, Reader, RecordOutput, xor

HEADER = 0x800


@dataclass
class _Entry:
    name: str
    src_size: int
    tgt_size: int
    src_md5: bytes
    tgt_md5: bytes
    overflow_mode: bytes
    overflow_at: int  # patch offset of the overflow bytes
    overflow_len: int
    records_at: int  # patch offset of the first command after the entry header


def _vlv(r: Reader, what: str) -> int:
    n = r.u8(what)
    if n > 8:
        raise PatchError(f"RUP patch has an invalid {what} at byte {r.pos}")
    return int.from_bytes(r.read(n, what), "little")


def _md5(path: Path) -> bytes:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while data := fh.read(CHUNK):
            h.update(data)
    return h.digest()


def _skip_records(r: Reader) -> int:
    """Skip XOR records up to the next command; return that command."""
    while True:
        cmd = r.u8("a command")
        if cmd != 0x02:
            return cmd
        _vlv(r, "a record offset")
        r.read(_vlv(r, "a record length"), "record data")


def apply(rom: Path, patch: Path, out: Path, max_bytes: int) -> PatchResult:
    with Reader(patch, "RUP") as r:
        if r.size < HEADER + 1 or r.read(6) != b"NINJA2":
            raise PatchError("RUP patch is truncated or not a RUP patch")
        r.u8()
        r.read(84 + 11)
        title = r.read(256).split(b"\0", 1)[0].decode("latin-1").strip()
        r.seek(HEADER)
        entries: list[_Entry] = []
        cmd = r.u8("a command")
        while cmd == 0x01:
            name = r.read(_vlv(r, "a file name length"), "a file name").decode("latin-1")
            r.u8("the ROM type")
            src_size = _vlv(r, "the source size")
            tgt_size = _vlv(r, "the target size")
            src_md5 = r.read(16, "the source MD5")
            tgt_md5 = r.read(16, "the target MD5")
            mode, ov_at, ov_len = b"", 0, 0
            if src_size != tgt_size:
                mode = r.read(1, "the overflow mode")
                if mode not in (b"A", b"M"):
                    raise PatchError(f"RUP patch has an invalid overflow mode {mode!r}")
                ov_len = _vlv(r, "the overflow length")
                ov_at = r.pos
                if ov_at + ov_len > r.size:
                    raise r.truncated("overflow data")
                r.seek(ov_at + ov_len)
            entries.append(_Entry(name, src_size, tgt_size, src_md5, tgt_md5, mode, ov_at, ov_len, r.pos))
            cmd = _skip_records(r)
        if cmd != 0x00:
            raise PatchError(f"RUP patch has an invalid command {cmd:#x} at byte {r.pos - 1}")
        if not entries:
            raise PatchError("RUP patch contains no file")

        digest = _md5(rom)
        entry, undo, matched = entries[0], False, False
        for e in entries:
            if e.src_md5 == digest:
                entry, matched = e, True
                break
        else:
            for e in entries:
                if e.tgt_md5 == digest:
                    entry, undo, matched = e, True, True
                    break
        out_size = entry.src_size if undo else entry.tgt_size
        rom_size = rom.stat().st_size
        with open(rom, "rb") as src, RecordOutput(rom, out, "RUP", max_bytes) as o:
            o.resize(out_size)
            r.seek(entry.records_at)
            records = 0
            while True:
                cmd = r.u8("a command")
                if cmd != 0x02:
                    break
                offset = _vlv(r, "a record offset")
                length = _vlv(r, "a record length")
                if offset > max_bytes:
                    raise PatchError(f"RUP record at offset {offset:#x} is past the size limit")
                pos = offset
                remaining = length
                while remaining:
                    n = min(CHUNK, remaining)
                    data = r.read(n, "record data")
                    if pos < out_size:
                        keep = min(n, out_size - pos)
                        src.seek(pos)
                        base = src.read(keep).ljust(keep, b"\0") if pos < rom_size else bytes(keep)
                        o.write(pos, xor(base, data[:keep]))
                    pos += n
                    remaining -= n
                records += 1
            if entry.overflow_mode and ((entry.overflow_mode == b"A") != undo):
                at = entry.src_size if not undo else entry.tgt_size
                r.seek(entry.overflow_at)
                done = 0
                while done < entry.overflow_len:
                    n = min(CHUNK, entry.overflow_len - done)
                    o.write(at + done, xor(r.read(n, "overflow data"), b"\xff" * n))
                    done += n
        out_md5 = _md5(out)
        want = entry.src_md5 if undo else entry.tgt_md5
        notes = [f"{records} records", f"file {entry.name!r}" + (" (undone)" if undo else "")]
        if not matched:
            notes.append("the ROM's MD5 matches none of the patch's files")
        if out_md5 != want:
            notes.append("the output's MD5 is not the one the patch expects")
        return PatchResult("RUP", matched and out_md5 == want, out_size, notes, description=title)
