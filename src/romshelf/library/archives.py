"""Hashes of what is inside archives and disc images (RomM's rules, reference/romm_roms.md §5.4).

* A single-file ROM that is an archive (zip, tar, tar.gz/tgz, tar.bz2/tbz2, tar.xz/txz) is
  hashed over the concatenation of its eligible members (excluded names dropped) in ASCII path
  order, and each member's own hashes are listed in ``archive_members``. An archive that cannot
  be read (corrupt, encrypted, or a format the standard library does not read: 7z, rar) falls
  back to the raw bytes with ``archive_members = None``.
* A lone ``.gz`` / ``.bz2`` / ``.xz`` (not a tarball) is hashed over its decompressed content.
* CHD v5 images carry the SHA-1 of their raw data and metadata in the header: ``chd_sha1_hash``.

Everything streams: archive members are decompressed in chunks, never held whole in memory.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from romshelf.core.hashing import Digests, Hasher, hash_stream
from romshelf.library.layout import is_excluded_dir, is_excluded_file

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".7z", ".rar")
COMPRESSED_SUFFIXES = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
CHD_MAGIC = b"MComprHD"


def archive_kind(name: str) -> str | None:
    """'zip' | 'tar' | 'unreadable' (7z, rar) for an archive name, 'compressed' for a lone
    .gz/.bz2/.xz, None otherwise."""
    low = name.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if low.endswith(suffix):
            if suffix == ".zip":
                return "zip"
            if suffix in (".7z", ".rar"):
                return "unreadable"
            return "tar"
    for suffix in COMPRESSED_SUFFIXES:
        if low.endswith(suffix):
            return "compressed"
    return None


@dataclass
class ArchiveHashes:
    digests: Digests
    members: list[dict[str, Any]] | None


class ArchiveError(Exception):
    pass


def _member_allowed(path: str) -> bool:
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    if not parts:
        return False
    return not is_excluded_file(parts[-1]) and not any(is_excluded_dir(p) for p in parts[:-1])


def hash_archive(fh: BinaryIO, name: str, progress: Callable[[int], None] | None = None) -> ArchiveHashes | None:
    """Hashes of an archive's content (``fh``: the archive, seekable), or None if ``name`` is not
    an archive we can read. A bad archive raises nothing: callers hash the raw bytes instead.
    """
    kind = archive_kind(name)
    try:
        if kind == "zip":
            return _hash_zip(fh, progress)
        if kind == "tar":
            return _hash_tar(fh, progress)
        if kind == "compressed":
            opener = next(fn for suffix, fn in COMPRESSED_SUFFIXES.items() if name.lower().endswith(suffix))
            h = Hasher()
            with opener(fh, "rb") as inner:  # type: ignore[operator]
                hash_stream(inner, [h], progress=progress)
            return ArchiveHashes(h.digests(), None) if h.touched else None
    except (
        OSError,
        EOFError,
        zipfile.BadZipFile,
        tarfile.TarError,
        lzma.LZMAError,
        ValueError,
        RuntimeError,
        ArchiveError,
    ):
        return None
    return None


def _hash_members(
    members: list[tuple[str, int, Callable[[], BinaryIO]]], progress: Callable[[int], None] | None
) -> ArchiveHashes:
    whole = Hasher()
    out: list[dict[str, Any]] = []
    for member_name, size, opener in sorted(members, key=lambda m: m[0]):
        h = Hasher()
        with opener() as fh:
            hash_stream(fh, [h, whole], size_hint=size, progress=progress)
        d = h.digests()
        out.append({"name": member_name, "size": d.size, "crc_hash": d.crc, "md5_hash": d.md5, "sha1_hash": d.sha1})
    if not out:
        raise ArchiveError("archive has no eligible members")
    return ArchiveHashes(whole.digests(), out)


def _hash_zip(fh: BinaryIO, progress: Callable[[int], None] | None) -> ArchiveHashes | None:
    with zipfile.ZipFile(fh) as zf:
        members = [
            (info.filename, info.file_size, lambda info=info: zf.open(info))
            for info in zf.infolist()
            if not info.is_dir() and _member_allowed(info.filename)
        ]
        if not members:
            return None
        return _hash_members(members, progress)  # type: ignore[arg-type]


def _hash_tar(fh: BinaryIO, progress: Callable[[int], None] | None) -> ArchiveHashes | None:
    with tarfile.open(fileobj=fh, mode="r:*") as tf:
        infos = [m for m in tf.getmembers() if m.isfile() and _member_allowed(m.name)]
        if not infos:
            return None

        def opener(m: tarfile.TarInfo) -> BinaryIO:
            fh = tf.extractfile(m)
            if fh is None:
                raise ArchiveError(f"cannot read {m.name}")
            return fh

        # Compressed tarballs are read sequentially; sorting by name may seek backwards, which
        # tarfile handles by re-reading the stream (correct, if slower for huge .tar.gz).
        members = [(m.name, m.size, lambda m=m: opener(m)) for m in infos]
        return _hash_members(members, progress)  # type: ignore[arg-type]


def chd_sha1(first: memoryview | bytes) -> str:
    """The combined raw+metadata SHA-1 stored in a CHD v5 header, or ""."""
    head = bytes(first[:124])
    if len(head) < 104 or head[:8] != CHD_MAGIC:
        return ""
    version = int.from_bytes(head[12:16], "big")
    if version != 5:
        return ""
    return head[84:104].hex()
