"""BPS (byuu): ``BPS1``, source size, target size, metadata size and metadata, then actions
until the 12-byte footer (CRC32 of source, target, patch). Each action is a number whose low
two bits pick SourceRead / TargetRead / SourceCopy / TargetCopy and whose rest is length - 1;
the copies carry a signed relative offset.

The output is produced front to back, so it is written sequentially through a 4 MiB buffer
(its CRC32 computed on the way); source bytes are ``pread`` from the ROM in pieces of at most
1 MiB; TargetCopy reads back from the buffer or the file. Memory stays at a few MiB whatever
the ROM size (the patch itself is memory-mapped). Every offset is checked before it is used, so
a hostile patch fails with a message instead of reading or writing out of bounds. The patch's
own CRC32 is checked first; the source and target CRC32s decide ``validated``."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

from romshelf.patching.binio import MappedFile, PatchError, PatchResult, file_crc32, human

CHUNK = 1024 * 1024
BUFFER = 4 * CHUNK
PATTERN_MAX = 4096


def apply(rom: Path, patch: Path, out: Path, max_bytes: int) -> PatchResult:
    with MappedFile(patch) as pm, open(rom, "rb") as sf:
        p = pm.view
        size = pm.size
        if size < 4 + 3 + 12 or bytes(p[:4]) != b"BPS1":
            raise PatchError("BPS patch is truncated or not a BPS patch")
        end = size - 12
        want_src, want_tgt, want_patch = (int.from_bytes(p[end + i : end + i + 4], "little") for i in (0, 4, 8))
        if zlib.crc32(p[: size - 4]) != want_patch:
            raise PatchError("BPS patch is damaged or truncated: its own CRC32 does not match")

        pos = 4

        def number(what: str) -> int:
            nonlocal pos
            data, shift = 0, 1
            for _ in range(10):
                if pos >= end:
                    raise PatchError(f"BPS patch is truncated at byte {pos} while reading {what}")
                x = p[pos]
                pos += 1
                data += (x & 0x7F) * shift
                if x & 0x80:
                    return data
                shift <<= 7
                data += shift
            raise PatchError(f"BPS patch has an invalid {what} at byte {pos} (number too long)")

        src_size = number("the source size")
        tgt_size = number("the target size")
        meta_size = number("the metadata size")
        if tgt_size > max_bytes:
            raise PatchError(
                f"BPS patch claims an output of {human(tgt_size)}, more than the limit of {human(max_bytes)}"
            )
        if meta_size > end - pos:
            raise PatchError("BPS patch is truncated in its metadata")
        description = bytes(p[pos : pos + min(meta_size, 4096)]).decode("utf-8", "replace")
        pos += meta_size

        with open(out, "wb") as fo:
            out_w = _Out(fo.fileno(), tgt_size)
            have_src = os.fstat(sf.fileno()).st_size
            written = _run(p, pos, end, sf.fileno(), have_src, out_w, tgt_size)
            if written != tgt_size:
                raise PatchError(f"BPS patch ended after {written} of {tgt_size} output bytes (truncated patch?)")
            out_w.flush()
            tgt_crc = out_w.crc & 0xFFFFFFFF
        src_crc = file_crc32(rom)
    notes = []
    src_ok = src_crc == want_src
    if not src_ok:
        notes.append(f"source CRC32 is {src_crc:08x}, the patch expects {want_src:08x}")
    if have_src != src_size:
        notes.append(f"source is {have_src} bytes, the patch expects {src_size}")
    tgt_ok = tgt_crc == want_tgt
    if not tgt_ok:
        notes.append(f"target CRC32 is {tgt_crc:08x}, the patch expects {want_tgt:08x}")
    return PatchResult("BPS", src_ok and tgt_ok, tgt_size, notes, description=description)


class _Out:
    """The output, written front to back through a buffer; earlier bytes can be read back."""

    __slots__ = ("buf", "crc", "fd", "flushed", "size")

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self.buf = bytearray()
        self.flushed = 0
        self.crc = 0

    def add(self, data: bytes | memoryview) -> None:
        self.buf += data
        self.crc = zlib.crc32(data, self.crc)
        if len(self.buf) >= BUFFER:
            self.flush()

    def flush(self) -> None:
        view = memoryview(self.buf)
        while view:
            view = view[os.write(self.fd, view) :]
        view.release()
        self.flushed += len(self.buf)
        self.buf = bytearray()

    def read(self, start: int, n: int) -> bytes:
        """Output bytes [start, start + n), all already produced."""
        if start >= self.flushed:
            i = start - self.flushed
            return bytes(self.buf[i : i + n])
        if start + n <= self.flushed:
            return os.pread(self.fd, n, start)
        head = os.pread(self.fd, self.flushed - start, start)
        return head + bytes(self.buf[: n - len(head)])


def _src_read(fd: int, offset: int, length: int, out: _Out) -> None:
    while length:
        n = min(length, CHUNK)
        data = os.pread(fd, n, offset)
        if len(data) != n:
            raise PatchError("BPS source ROM changed while patching")
        out.add(data)
        offset += n
        length -= n


def _run(p, pos, end, src_fd, have_src, o, tgt_size) -> int:  # type: ignore[no-untyped-def]
    """The action loop (hot path: locals only)."""
    out_off = 0
    src_rel = 0
    tgt_rel = 0
    add = o.add
    while pos < end:
        # inline varint decode of the action (the common case is one or two bytes)
        data, shift = 0, 1
        for _ in range(10):
            if pos >= end:
                raise PatchError(f"BPS patch is truncated at byte {pos} while reading an action")
            x = p[pos]
            pos += 1
            data += (x & 0x7F) * shift
            if x & 0x80:
                break
            shift <<= 7
            data += shift
        else:
            raise PatchError(f"BPS patch has an invalid action at byte {pos}")
        action = data & 3
        length = (data >> 2) + 1
        stop = out_off + length
        if stop > tgt_size:
            raise PatchError(f"BPS action at byte {pos} writes past the end of the target ({tgt_size} bytes)")
        if action == 0:  # SourceRead
            if stop > have_src:
                raise PatchError(f"BPS patch reads past the end of the source ROM at {out_off} (wrong ROM?)")
            _src_read(src_fd, out_off, length, o)
        elif action == 1:  # TargetRead
            if pos + length > end:
                raise PatchError(f"BPS patch is truncated at byte {pos} in TargetRead data")
            at = pos
            while at < pos + length:
                n = min(CHUNK, pos + length - at)
                add(p[at : at + n])
                at += n
            pos += length
        else:
            d, shift = 0, 1
            for _ in range(10):
                if pos >= end:
                    raise PatchError(f"BPS patch is truncated at byte {pos} while reading a copy offset")
                x = p[pos]
                pos += 1
                d += (x & 0x7F) * shift
                if x & 0x80:
                    break
                shift <<= 7
                d += shift
            else:
                raise PatchError(f"BPS patch has an invalid copy offset at byte {pos}")
            delta = -(d >> 1) if d & 1 else d >> 1
            if action == 2:  # SourceCopy
                src_rel += delta
                if src_rel < 0 or src_rel + length > have_src:
                    raise PatchError(f"BPS SourceCopy at byte {pos} reads outside the source ROM (wrong ROM?)")
                _src_read(src_fd, src_rel, length, o)
                src_rel += length
            else:  # TargetCopy
                tgt_rel += delta
                if tgt_rel < 0 or tgt_rel >= out_off:
                    raise PatchError(f"BPS TargetCopy at byte {pos} reads target bytes not written yet")
                period = out_off - tgt_rel
                if period < PATTERN_MAX and length > period:
                    # a run that repeats with a short period (RLE-like): repeat the pattern
                    pattern = o.read(tgt_rel, period)
                    block = pattern * max(1, CHUNK // period)
                    left = length
                    while left:
                        n = min(len(block), left)
                        add(block[:n])
                        left -= n
                else:
                    # copy in pieces no longer than the period: each piece is already written
                    step = min(period, CHUNK)
                    at = tgt_rel
                    left = length
                    while left:
                        n = min(step, left)
                        add(o.read(at, n))
                        at += n
                        left -= n
                tgt_rel += length
        out_off = stop
    return out_off
