"""CRC32s the database does not vouch for, computed once per process and remembered.

A zip member needs its CRC32 in its local header. The scan stores one per file
(``rom_files.crc_hash``); when a row has none (platforms romshelf does not hash) or the file on
disk is no longer the one that was hashed (different size or mtime), the CRC is computed from
the file the first time a download needs it, and kept here keyed by the file's identity
(storage, key, size, mtime), so a resumed or repeated download does not read the file again.
A CRC found wrong while streaming (the file changed in place) replaces the cached one too.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from romshelf.downloads.ziplayout import ZipMember, file_crc32

_MAX = 8192
_lock = threading.Lock()
_cache: OrderedDict[tuple[str, str, int, float], int] = OrderedDict()


def _key(member: ZipMember) -> tuple[str, str, int, float]:
    return (repr(member.storage), member.key or "", member.size, member.mtime)


def cached(member: ZipMember) -> int | None:
    with _lock:
        value = _cache.get(_key(member))
        if value is not None:
            _cache.move_to_end(_key(member))
        return value


def remember(member: ZipMember, crc: int) -> None:
    with _lock:
        _cache[_key(member)] = crc
        _cache.move_to_end(_key(member))
        while len(_cache) > _MAX:
            _cache.popitem(last=False)


def crc_of(member: ZipMember) -> int:
    """The member's CRC32: cached, or read from its file (and cached)."""
    value = cached(member)
    if value is None:
        value = file_crc32(member)
        remember(member, value)
    return value


def clear() -> None:
    with _lock:
        _cache.clear()
