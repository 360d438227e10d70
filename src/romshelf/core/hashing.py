"""CRC32, MD5 and SHA-1 of a stream in one read pass, in constant memory.

Speed comes from the design, not from a faster library (zlib and OpenSSL are as fast as it gets):

* large reads into a few reused buffers (no per-chunk allocation, no whole-file reads);
* MD5, the slowest of the three, runs on its own helper thread while the calling thread reads
  the next buffer and updates CRC32 and SHA-1 (hashlib and zlib release the GIL on large
  buffers, so two cores are busy);
* small inputs (the common ROM) skip the thread: one ``read()`` and three updates.

Formats match RomM's: CRC32 as 8 lowercase hex digits, MD5/SHA-1 lowercase hex digests, and a
hasher that never saw a byte yields ``""`` for all three.

A :class:`Hasher` may skip a prefix of the stream (``skip=16`` gives No-Intro's headerless hash
of an iNES file) and several hashers can be fed from the same pass (a folder ROM's file hash and
the ROM's hash over its concatenated files).
"""

from __future__ import annotations

import hashlib
import queue
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

MiB = 1024 * 1024
READ_SIZE = 4 * MiB  # bytes per read on the threaded path
BUFFERS = 3  # buffers in flight on the threaded path: memory = READ_SIZE * BUFFERS
INLINE_MAX = 2 * MiB  # inputs up to this size are read at once and hashed on the calling thread


@dataclass(frozen=True, slots=True)
class Digests:
    crc: str
    md5: str
    sha1: str
    size: int

    def columns(self, prefix: str = "") -> dict[str, str]:
        """``{"crc_hash": ..., "md5_hash": ..., "sha1_hash": ...}`` (RomM's column names)."""
        return {f"{prefix}crc_hash": self.crc, f"{prefix}md5_hash": self.md5, f"{prefix}sha1_hash": self.sha1}

    @property
    def empty(self) -> bool:
        return not (self.crc or self.md5 or self.sha1)

    @property
    def hash_key(self) -> tuple[str, str, str]:
        return (self.crc, self.md5, self.sha1)


NO_DIGESTS = Digests("", "", "", 0)


class Hasher:
    """CRC32 + MD5 + SHA-1 of one byte stream, optionally skipping its first ``skip`` bytes.

    ``update_main`` (CRC32, SHA-1) and ``update_md5`` may be called from two threads, each with
    the same sequence of chunks; ``update`` does both.
    """

    __slots__ = ("_crc", "_md5", "_pos_main", "_pos_md5", "_sha1", "size", "skip", "touched")

    def __init__(self, skip: int = 0) -> None:
        self._crc = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self.skip = skip
        self._pos_main = 0
        self._pos_md5 = 0
        self.size = 0
        self.touched = False

    @staticmethod
    def _cut(data: Any, pos: int, skip: int) -> Any:
        if pos >= skip:
            return data
        drop = skip - pos
        return data[drop:] if drop < len(data) else b""

    def update_main(self, data: Any) -> None:
        n = len(data)
        if self.skip and self._pos_main < self.skip:
            data = self._cut(data, self._pos_main, self.skip)
        self._pos_main += n
        if len(data):
            self.touched = True
            self.size += len(data)
            self._crc = zlib.crc32(data, self._crc)
            self._sha1.update(data)

    def update_md5(self, data: Any) -> None:
        n = len(data)
        if self.skip and self._pos_md5 < self.skip:
            data = self._cut(data, self._pos_md5, self.skip)
        self._pos_md5 += n
        if len(data):
            self._md5.update(data)

    def update(self, data: Any) -> None:
        self.update_main(data)
        self.update_md5(data)

    def digests(self) -> Digests:
        if not self.touched:
            return NO_DIGESTS
        return Digests(
            (self._crc & 0xFFFFFFFF).to_bytes(4, "big").hex(), self._md5.hexdigest(), self._sha1.hexdigest(), self.size
        )


class Readable(Protocol):
    def readinto(self, buffer: Any, /) -> int | None: ...
    def read(self, size: int = -1, /) -> bytes: ...


ChunkHook = Callable[[memoryview], None]
# Called once with the first chunk (the whole input, or at least READ_SIZE bytes of it):
# returns more hashers and chunk hooks to feed from the start of the stream.
FirstChunkHook = Callable[[memoryview], tuple[Sequence[Hasher], Sequence[ChunkHook]]]


def _read_full(fh: Readable, buf: bytearray) -> int:
    """Fill ``buf`` as far as the stream allows (a pipe or decompressor may return short reads)."""
    view = memoryview(buf)
    got = 0
    while got < len(buf):
        n = fh.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def hash_stream(
    fh: Readable,
    hashers: Sequence[Hasher],
    *,
    size_hint: int | None = None,
    first_chunk: FirstChunkHook | None = None,
    hooks: Sequence[ChunkHook] = (),
    progress: Callable[[int], None] | None = None,
    threaded: bool | None = None,
) -> int:
    """Read ``fh`` to the end once, feeding every hasher and hook; return the number of bytes.

    ``threaded=None`` picks the helper-thread path for inputs larger than :data:`INLINE_MAX`
    (or of unknown size). Memory stays at ``READ_SIZE * BUFFERS`` whatever the input size.
    """
    hashers = list(hashers)
    hooks = list(hooks)
    if threaded is None:
        threaded = size_hint is None or size_hint > INLINE_MAX
    if threaded:
        first = bytearray(READ_SIZE)
    else:
        # One read for a small input of known size (size + 1 bytes: a short read means the end).
        first = bytearray(READ_SIZE if size_hint is None else min(size_hint + 1, READ_SIZE))
    n = _read_full(fh, first)
    if n == 0:
        return 0
    view = memoryview(first)[:n]
    if first_chunk is not None:
        more_hashers, more_hooks = first_chunk(view)
        hashers += more_hashers
        hooks += more_hooks
    if not threaded or n < len(first):
        # Everything fit in one read: no thread needed.
        total = n
        while True:
            for h in hashers:
                h.update(view)
            for hook in hooks:
                hook(view)
            if progress is not None:
                progress(len(view))
            if n < len(first):
                break
            n = _read_full(fh, first)
            if n == 0:
                break
            view = memoryview(first)[:n]
            total += n
        return total
    return _hash_threaded(fh, hashers, hooks, progress, first, n)


def _hash_threaded(
    fh: Readable,
    hashers: list[Hasher],
    hooks: list[ChunkHook],
    progress: Callable[[int], None] | None,
    first: bytearray,
    first_n: int,
) -> int:
    free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
    work: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
    for _ in range(BUFFERS - 1):
        free.put(bytearray(READ_SIZE))
    failure: list[BaseException] = []

    def md5_worker() -> None:
        while True:
            item = work.get()
            if item is None:
                return
            buf, size = item
            try:
                if not failure:
                    mv = memoryview(buf)[:size]
                    for h in hashers:
                        h.update_md5(mv)
            except BaseException as e:  # pragma: no cover - hashlib does not fail on bytes
                failure.append(e)
            finally:
                free.put(buf)

    thread = threading.Thread(target=md5_worker, name="romshelf-md5", daemon=True)
    thread.start()
    total = 0
    try:
        buf, n = first, first_n
        while True:
            mv = memoryview(buf)[:n]
            for h in hashers:
                h.update_main(mv)
            for hook in hooks:
                hook(mv)
            work.put((buf, n))
            total += n
            if progress is not None:
                progress(n)
            if n < len(buf):
                break
            buf = free.get()
            n = _read_full(fh, buf)
            if n == 0:
                free.put(buf)
                break
    finally:
        work.put(None)
        thread.join()
    if failure:
        raise failure[0]
    return total


def hash_bytes(data: bytes, skip: int = 0) -> Digests:
    h = Hasher(skip)
    h.update(data)
    return h.digests()


def hash_file(path: str | Any, *, progress: Callable[[int], None] | None = None) -> Digests:
    """CRC32/MD5/SHA-1 of a whole file (constant memory, MD5 on a helper thread for big files)."""
    import os

    h = Hasher()
    with open(path, "rb", buffering=0) as fh:
        size = os.fstat(fh.fileno()).st_size
        hash_stream(fh, [h], size_hint=size, progress=progress)
    return h.digests()


class ConcatReader:
    """Read several streams one after the other as one (upload chunks -> one file)."""

    def __init__(self, openers: Iterable[Callable[[], BinaryIO]]) -> None:
        self._openers = iter(openers)
        self._current: BinaryIO | None = None

    def _next(self) -> bool:
        if self._current is not None:
            self._current.close()
            self._current = None
        opener = next(self._openers, None)
        if opener is None:
            return False
        self._current = opener()
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            if self._current is None and not self._next():
                return 0
            assert self._current is not None
            n = self._current.readinto(buffer)
            if n:
                return n
            if not self._next():
                return 0

    def read(self, size: int = -1) -> bytes:
        buf = bytearray(size if size > 0 else READ_SIZE)
        n = self.readinto(buf)
        return bytes(buf[:n])

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None

    def __enter__(self) -> ConcatReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
