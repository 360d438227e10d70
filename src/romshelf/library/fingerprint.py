"""Everything the library learns from a ROM's bytes, in one read of each file.

For each file: CRC32/MD5/SHA-1, the headerless hashes No-Intro uses (when the file has an
emulator/copier header), the console header (title and checks), the CHD v5 SHA-1. For the ROM:
its hashes by RomM's rules (reference/romm_roms.md §5.4) -

* single plain file: the file's hashes;
* single archive: the hashes over its eligible members' concatenated content (ASCII path
  order), with ``archive_members``; unreadable archives fall back to the raw bytes;
* folder: each file hashed on its own, the ROM hash over the concatenation of its top-level
  files in sorted name order (sub-folder files such as ``translation/`` are left out). RomM uses
  the unsorted directory order, which makes the hash depend on the file system; sorted is stable.

Non-hashable platforms (PC, modern consoles: huge installs) are not read at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from romshelf.core.hashing import NO_DIGESTS, Digests, Hasher, hash_stream
from romshelf.core.storage import Storage
from romshelf.library import archives, headers
from romshelf.library.layout import FsFile, FsRom

Progress = Callable[[int], None]


@dataclass(slots=True)
class FileResult:
    file: FsFile
    digests: Digests = NO_DIGESTS
    headerless: Digests = NO_DIGESTS
    header: dict[str, Any] | None = None
    chd_sha1: str = ""
    archive_members: list[dict[str, Any]] | None = None
    hashed: bool = False  # False: not read this time (unchanged file of a changed folder ROM)

    def columns(self) -> dict[str, Any]:
        """RomFile column values from what was read."""
        return {
            **self.digests.columns(),
            **self.headerless.columns("headerless_"),
            "chd_sha1_hash": self.chd_sha1,
            "archive_members": self.archive_members,
            "header": self.header,
            "header_valid": None if self.header is None else self.header.get("valid"),
        }


@dataclass(slots=True)
class RomResult:
    rom: FsRom
    digests: Digests
    files: list[FileResult]
    complete: bool = True  # False: not every top-level file was read, ``digests`` is not the ROM's


class _FirstChunk:
    """Decides from the first bytes which extra work the pass does (headerless hash, header)."""

    __slots__ = ("chd", "file", "headerless", "inspection")

    def __init__(self, file: FsFile) -> None:
        self.file = file
        self.headerless: Hasher | None = None
        self.inspection: headers.Inspection | None = None
        self.chd = ""

    def __call__(self, mv: memoryview) -> tuple[Sequence[Hasher], Sequence[Callable[[memoryview], None]]]:
        name, size = self.file.file_name, self.file.size
        more: list[Hasher] = []
        hooks: list[Callable[[memoryview], None]] = []
        skip = headers.headerless_skip(name, size, mv)
        if skip:
            self.headerless = Hasher(skip)
            more.append(self.headerless)
        try:
            self.inspection = headers.inspect(name, size, mv)
        except (IndexError, ValueError, KeyError):
            self.inspection = None
        if self.inspection is not None:
            hooks.append(self.inspection.feed)
        if mv[:8] == archives.CHD_MAGIC:
            self.chd = archives.chd_sha1(mv)
        return more, hooks


def read_stream(
    fh: Any,
    file: FsFile,
    *,
    also: Sequence[Hasher] = (),
    hooks: Sequence[Callable[[memoryview], None]] = (),
    progress: Progress | None = None,
) -> tuple[FileResult, int]:
    """One pass over an open stream holding ``file``'s bytes (``file.size`` must be known):
    hashes, headerless hashes, header, CHD SHA-1; ``hooks`` see every chunk too (e.g. a writer).
    Returns the result and the number of bytes read."""
    result = FileResult(file, hashed=True)
    h = Hasher()
    first = _FirstChunk(file)
    n = hash_stream(fh, [h, *also], size_hint=file.size, first_chunk=first, hooks=hooks, progress=progress)
    result.digests = h.digests()
    if first.headerless is not None:
        result.headerless = first.headerless.digests()
    if first.inspection is not None:
        try:
            result.header = first.inspection.finish()
        except (IndexError, ValueError, KeyError):
            result.header = None
    result.chd_sha1 = first.chd
    return result, n


def hash_file(
    storage: Storage,
    file: FsFile,
    *,
    also: Sequence[Hasher] = (),
    progress: Progress | None = None,
    archive: bool = False,
) -> FileResult:
    """Read one stored file once and return what it holds. ``also``: more hashers fed the same
    bytes (a folder ROM's hash). ``archive``: hash an archive's members, not its raw bytes."""
    with storage.open(file.key) as fh:
        if archive:
            found = archives.hash_archive(fh, file.file_name)
            if found is not None:
                if progress is not None:
                    progress(file.size)
                return FileResult(file, found.digests, archive_members=found.members, hashed=True)
            fh.seek(0)
        result, _n = read_stream(fh, file, also=also, progress=progress)
    return result


def fingerprint(
    storage: Storage,
    rom: FsRom,
    *,
    hashable: bool = True,
    only: set[str] | None = None,
    progress: Progress | None = None,
) -> RomResult:
    """Hash a ROM's files. ``only``: keys of the files to read (the others are left unread and
    marked ``hashed=False``); a folder ROM's own hash needs all its top-level files in it."""
    if not hashable:
        return RomResult(rom, NO_DIGESTS, [FileResult(f) for f in rom.files])
    if not rom.is_dir:
        file = rom.files[0]
        fr = hash_file(storage, file, progress=progress, archive=archives.archive_kind(file.file_name) is not None)
        return RomResult(rom, fr.digests, [fr])
    whole = Hasher()
    results = []
    top_complete = True
    # Top-level files in sorted name order feed the ROM hash; nested files only their own.
    for file in sorted(rom.files, key=lambda f: (not f.top_level, f.file_name if f.top_level else f.key)):
        if only is not None and file.key not in only:
            results.append(FileResult(file))
            if file.top_level:
                top_complete = False
            continue
        results.append(hash_file(storage, file, also=(whole,) if file.top_level else (), progress=progress))
    results.sort(key=lambda r: r.file.key)
    return RomResult(rom, whole.digests() if top_complete else NO_DIGESTS, results, top_complete)
