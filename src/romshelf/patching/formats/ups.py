"""UPS (byuu): ``UPS1``, input size, output size (variable-length numbers), then hunks: a skip
count, then XOR bytes up to a terminating 0x00 (which stands for one unchanged byte). The last
12 bytes are the CRC32s of the input, the output and the patch itself.

Applied in one streaming pass (ROM in, output out, 1 MiB buffers): memory does not grow with
the ROM. The patch's own CRC32 is checked first (a damaged or truncated patch is refused); the
input and output CRC32s decide ``validated`` (the patch is applied either way, as RomPatcher
does). Bytes past the end of a shorter input read as zeros."""

from __future__ import annotations

import zlib
from pathlib import Path

from romshelf.patching.binio import CHUNK, PatchError, PatchResult, Reader, file_crc32, human, xor


class _Source:
    """Sequential reads from the ROM, zero-padded past its end, with a running CRC32."""

    def __init__(self, path: Path) -> None:
        self.fh = open(path, "rb")  # noqa: SIM115 - closed in close()
        self.crc = 0
        self.eof = False

    def read(self, n: int) -> bytes:
        data = b"" if self.eof else self.fh.read(n)
        if len(data) < n:
            self.eof = True
        self.crc = zlib.crc32(data, self.crc)
        return data + bytes(n - len(data)) if len(data) < n else data

    def finish(self) -> int:
        while not self.eof:
            self.read(CHUNK)
        self.fh.close()
        return self.crc & 0xFFFFFFFF

    def close(self) -> None:
        self.fh.close()


def apply(rom: Path, patch: Path, out: Path, max_bytes: int) -> PatchResult:
    with Reader(patch, "UPS") as r:
        if r.size < 4 + 2 + 12 or r.read(4) != b"UPS1":
            raise PatchError("UPS patch is truncated or not a UPS patch")
        footer_at = r.size - 12
        r.end = footer_at
        in_size = r.varint("the input size")
        out_size = r.varint("the output size")
        if out_size > max_bytes:
            raise PatchError(
                f"UPS patch claims an output of {human(out_size)}, more than the limit of {human(max_bytes)}"
            )
        r.fh.seek(footer_at)
        footer = r.fh.read(12)
        r.seek(r.pos)
        want_in, want_out, want_patch = (int.from_bytes(footer[i : i + 4], "little") for i in (0, 4, 8))
        if file_crc32(patch, 0, r.size - 4) != want_patch:
            raise PatchError("UPS patch is damaged or truncated: its own CRC32 does not match")

        src = _Source(rom)
        out_crc = 0
        written = 0
        try:
            with open(out, "wb", buffering=CHUNK) as fo:

                def emit(data: bytes) -> None:
                    nonlocal out_crc, written
                    if written + len(data) > out_size:
                        data = data[: max(0, out_size - written)]
                    fo.write(data)
                    out_crc = zlib.crc32(data, out_crc)
                    written += len(data)

                while r.remaining > 0:
                    skip = r.varint("a hunk offset")
                    if written + skip > out_size:
                        raise PatchError(
                            f"UPS hunk at byte {r.pos} starts past the end of the output ({out_size} bytes)"
                        )
                    while skip:
                        n = min(skip, CHUNK)
                        emit(src.read(n))
                        skip -= n
                    for part in r.chunks_until_zero("hunk data"):
                        if written + len(part) > out_size:
                            raise PatchError(f"UPS hunk at byte {r.pos} writes past the end of the output")
                        emit(xor(src.read(len(part)), part))
                    emit(src.read(1))  # the terminator: one unchanged byte (dropped past the end)
                while written < out_size:
                    emit(src.read(min(CHUNK, out_size - written)))
            in_crc = src.finish()
        finally:
            src.close()
    in_ok = in_crc == want_in
    out_ok = (out_crc & 0xFFFFFFFF) == want_out
    notes = []
    if not in_ok:
        notes.append(f"input CRC32 is {in_crc:08x}, the patch expects {want_in:08x}")
    if in_size != rom.stat().st_size:
        notes.append(f"input is {rom.stat().st_size} bytes, the patch expects {in_size}")
    if not out_ok:
        notes.append(f"output CRC32 is {out_crc & 0xFFFFFFFF:08x}, the patch expects {want_out:08x}")
    return PatchResult("UPS", in_ok and out_ok, written, notes)
