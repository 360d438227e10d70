"""Bounded binary I/O for the patch formats: exact reads that say where a patch is truncated,
byuu-style variable-length numbers with an overflow check, and an output file written by
records with every offset checked against the size limit before a byte lands on disk."""

from __future__ import annotations

import contextlib
import mmap
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from romshelf.core.errors import BadRequest

CHUNK = 1024 * 1024
MAX_VARINT_BYTES = 10  # 7 bits each: enough for 2**64; anything longer is hostile


class PatchError(BadRequest):
    """The patch cannot be applied (malformed, truncated, hostile, unsupported): a 400."""


@dataclass
class PatchResult:
    format: str
    validated: bool
    size: int
    notes: list[str] = field(default_factory=list)
    description: str = ""


def human(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


class Reader:
    """Sequential reads from a patch file, in 1 MiB buffers, that fail with a clear message."""

    def __init__(self, path: Path, fmt: str, *, start: int = 0, end: int | None = None) -> None:
        self.fmt = fmt
        self.fh: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by close()/with
        self.size = os.fstat(self.fh.fileno()).st_size
        self.end = self.size if end is None else end
        self.fh.seek(start)
        self.buf = b""
        self.i = 0
        self.base = start  # file offset of buf[0]

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.fh.close()

    @property
    def pos(self) -> int:
        return self.base + self.i

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def truncated(self, what: str = "") -> PatchError:
        where = f" while reading {what}" if what else ""
        return PatchError(f"{self.fmt} patch is truncated at byte {self.pos}{where}")

    def _fill(self) -> bool:
        if self.i < len(self.buf):
            return True
        self.base += len(self.buf)
        want = min(CHUNK, self.end - self.base)
        self.buf = self.fh.read(want) if want > 0 else b""
        self.i = 0
        return bool(self.buf)

    def seek(self, pos: int) -> None:
        self.fh.seek(pos)
        self.buf, self.i, self.base = b"", 0, pos

    def read(self, n: int, what: str = "") -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise self.truncated(what)
        if self.i + n <= len(self.buf):
            out = self.buf[self.i : self.i + n]
            self.i += n
            return out
        parts = []
        need = n
        while need:
            if not self._fill():
                raise self.truncated(what)
            take = min(need, len(self.buf) - self.i)
            parts.append(self.buf[self.i : self.i + take])
            self.i += take
            need -= take
        return b"".join(parts)

    def u8(self, what: str = "") -> int:
        if self.i < len(self.buf) and self.pos < self.end:
            b = self.buf[self.i]
            self.i += 1
            return b
        return self.read(1, what)[0]

    def uint(self, n: int, what: str = "", *, big: bool = False) -> int:
        return int.from_bytes(self.read(n, what), "big" if big else "little")

    def varint(self, what: str = "number") -> int:
        """byuu's encoding (UPS, BPS): 7 bits a byte, high bit ends, each continuation adds 1."""
        data, shift = 0, 1
        for _ in range(MAX_VARINT_BYTES):
            x = self.u8(what)
            data += (x & 0x7F) * shift
            if x & 0x80:
                return data
            shift <<= 7
            data += shift
        raise PatchError(f"{self.fmt} patch has an invalid {what} at byte {self.pos} (number too long)")

    def chunks_until_zero(self, what: str = "data") -> list[bytes]:
        """The bytes up to the next 0x00 (consumed, not returned), as buffer slices."""
        out = []
        while True:
            if self.pos >= self.end or not self._fill():
                raise self.truncated(what)
            limit = min(len(self.buf), self.i + (self.end - self.pos))
            j = self.buf.find(b"\x00", self.i, limit)
            if j >= 0:
                if j > self.i:
                    out.append(self.buf[self.i : j])
                self.i = j + 1
                return out
            out.append(self.buf[self.i : limit])
            self.i = limit


def xor(a: bytes, b: bytes) -> bytes:
    """Byte-wise XOR of two equal-length strings (at C speed, through big integers)."""
    n = len(a)
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(n, "little")


class RecordOutput:
    """The patched file, built as a copy of the ROM then written record by record (pwrite).

    Every write is checked against ``max_bytes`` first: a patch that claims offsets of
    terabytes is refused before the file grows. Gaps past the old end read as zeros.
    """

    def __init__(self, rom: Path, out: Path, fmt: str, max_bytes: int) -> None:
        self.fmt = fmt
        self.max = max_bytes
        shutil.copyfile(rom, out)
        self.fd = os.open(out, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        self.size = os.fstat(self.fd).st_size

    def check(self, end: int, what: str = "record") -> None:
        if end > self.max:
            raise PatchError(
                f"{self.fmt} patch {what} would make the output {human(end)}, more than the limit of {human(self.max)}"
            )

    def write(self, offset: int, data: bytes, what: str = "record") -> None:
        end = offset + len(data)
        self.check(end, what)
        if data:
            os.pwrite(self.fd, data, offset)
            if end > self.size:
                self.size = end

    def fill(self, offset: int, value: int, count: int, what: str = "RLE record") -> None:
        self.check(offset + count, what)
        block = bytes([value]) * min(count, CHUNK)
        pos = offset
        remaining = count
        while remaining:
            n = min(remaining, len(block))
            os.pwrite(self.fd, block[:n], pos)
            pos += n
            remaining -= n
        self.size = max(self.size, offset + count)

    def read(self, offset: int, n: int) -> bytes:
        return os.pread(self.fd, n, offset)

    def resize(self, size: int, what: str = "output size") -> None:
        self.check(size, what)
        os.ftruncate(self.fd, size)
        self.size = size

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def __enter__(self) -> RecordOutput:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class MappedFile:
    """A read-only memory map of a whole file (an empty file maps to ``b""``)."""

    def __init__(self, path: Path) -> None:
        self.fh = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.size = os.fstat(self.fh.fileno()).st_size
        self.mm: mmap.mmap | None = mmap.mmap(self.fh.fileno(), 0, access=mmap.ACCESS_READ) if self.size else None
        self.view = memoryview(self.mm) if self.mm is not None else memoryview(b"")

    def close(self) -> None:
        self.view.release()
        if self.mm is not None:
            self.mm.close()
        self.fh.close()

    def __enter__(self) -> MappedFile:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def file_crc32(path: Path, start: int = 0, end: int | None = None) -> int:
    import zlib

    crc = 0
    with open(path, "rb") as fh:
        fh.seek(start)
        remaining = None if end is None else end - start
        while remaining is None or remaining > 0:
            data = fh.read(CHUNK if remaining is None else min(CHUNK, remaining))
            if not data:
                break
            crc = zlib.crc32(data, crc)
            if remaining is not None:
                remaining -= len(data)
    return crc & 0xFFFFFFFF


def read_at(path: Path, offset: int, n: int) -> bytes:
    """``n`` bytes at ``offset`` (fewer at the end of the file)."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(n)
