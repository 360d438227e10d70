"""BPS (byuu): ``BPS1``, source size, target size, metadata size and metadata, then actions
until the 12-byte footer (CRC32 of source, target, patch). Each action is a number whose low
two bits pick SourceRead / TargetRead / SourceCopy / TargetCopy and whose rest is length - 1;
the copies carry a signed relative offset.

The source, the patch and the output are memory-mapped (the output file is created at its final
size first): copies are memmoves between maps, nothing is held twice in memory, and every
offset is checked before it is used, so a hostile patch fails with a message instead of
reading or writing out of bounds. The patch's own CRC32 is checked first; the source and target
CRC32s decide ``validated``."""

from __future__ import annotations

import mmap
import zlib
from pathlib import Path

from romshelf.patching.binio import MappedFile, PatchError, PatchResult, human

CHUNK = 1024 * 1024


def apply(rom: Path, patch: Path, out: Path, max_bytes: int) -> PatchResult:
    with MappedFile(patch) as pm, MappedFile(rom) as sm:
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

        src = sm.view
        have_src = sm.size
        with open(out, "w+b") as fo:
            fo.truncate(tgt_size)
            om = mmap.mmap(fo.fileno(), tgt_size) if tgt_size else None
            o = memoryview(om) if om is not None else memoryview(bytearray())
            try:
                written = _run(p, pos, end, src, have_src, o, tgt_size)
                if written != tgt_size:
                    raise PatchError(f"BPS patch ended after {written} of {tgt_size} output bytes (truncated patch?)")
                src_crc = zlib.crc32(src)
                tgt_crc = zlib.crc32(o)
                if om is not None:
                    om.flush()
            finally:
                o.release()
                if om is not None:
                    om.close()
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


def _run(p, pos, end, src, have_src, o, tgt_size) -> int:  # type: ignore[no-untyped-def]
    """The action loop (hot path: locals only)."""
    out_off = 0
    src_rel = 0
    tgt_rel = 0
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
            o[out_off:stop] = src[out_off:stop]
        elif action == 1:  # TargetRead
            if pos + length > end:
                raise PatchError(f"BPS patch is truncated at byte {pos} in TargetRead data")
            o[out_off:stop] = p[pos : pos + length]
            pos += length
        else:
            q = pos
            # signed relative offset
            d, shift = 0, 1
            for _ in range(10):
                if q >= end:
                    raise PatchError(f"BPS patch is truncated at byte {q} while reading a copy offset")
                x = p[q]
                q += 1
                d += (x & 0x7F) * shift
                if x & 0x80:
                    break
                shift <<= 7
                d += shift
            else:
                raise PatchError(f"BPS patch has an invalid copy offset at byte {q}")
            pos = q
            delta = -(d >> 1) if d & 1 else d >> 1
            if action == 2:  # SourceCopy
                src_rel += delta
                if src_rel < 0 or src_rel + length > have_src:
                    raise PatchError(f"BPS SourceCopy at byte {pos} reads outside the source ROM (wrong ROM?)")
                o[out_off:stop] = src[src_rel : src_rel + length]
                src_rel += length
            else:  # TargetCopy
                tgt_rel += delta
                if tgt_rel < 0 or tgt_rel >= out_off:
                    raise PatchError(f"BPS TargetCopy at byte {pos} reads target bytes not written yet")
                if tgt_rel + length <= out_off:
                    o[out_off:stop] = o[tgt_rel : tgt_rel + length]
                else:  # overlapping: the run repeats with period out_off - tgt_rel
                    period = out_off - tgt_rel
                    pattern = bytes(o[tgt_rel:out_off])
                    block = pattern * max(1, CHUNK // period)
                    at = out_off
                    while at < stop:
                        n = min(len(block), stop - at)
                        o[at : at + n] = block[:n]
                        at += n
                tgt_rel += length
        out_off = stop
    return out_off
