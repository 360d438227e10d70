"""File-name and storage-key hygiene: no name from a client reaches a path unchecked."""

from __future__ import annotations

import re

from romshelf.core.errors import BadRequest

MAX_FILE_NAME_LENGTH = 450  # RomM's column length for file names
_REPLACE = re.compile(r"[\\/:|]")
_DELETE = re.compile(r'[*?"<>+\x00]')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UnsafePath(BadRequest):
    """A client-supplied name or path that would escape its folder or is not a valid name."""


def sanitize_filename(name: str, *, what: str = "file name") -> str:
    """RomM's ``sanitize_filename``: basename; ``\\ / : |`` -> ``-``; drop ``* ? " < > +`` and NUL.

    Raises :class:`UnsafePath` (400) for an empty result, ``.``/``..`` or an over-long name.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _DELETE.sub("", _REPLACE.sub("-", base))
    cleaned = _CONTROL.sub("", cleaned).strip()
    if cleaned in ("", ".", ".."):
        raise UnsafePath(f"Invalid {what}: {name!r}")
    if len(cleaned) > MAX_FILE_NAME_LENGTH:
        raise UnsafePath(f"Invalid {what}: longer than {MAX_FILE_NAME_LENGTH} characters")
    return cleaned


def check_plain_filename(name: str, *, what: str = "file name") -> str:
    """Accept a client name only if it is already a plain, safe file name; never rewrite it.

    Rejects empty names, ``.``/``..``, any slash or backslash, NUL and other control characters,
    and names over the length limit, each with a 400 that says what is wrong.
    """
    if not name or not name.strip():
        raise UnsafePath(f"Invalid {what}: empty")
    if name in (".", ".."):
        raise UnsafePath(f"Invalid {what}: {name!r} is not a file name")
    if "/" in name or "\\" in name:
        raise UnsafePath(f"Invalid {what}: {name!r} must not contain path separators")
    if "\x00" in name:
        raise UnsafePath(f"Invalid {what}: contains a NUL byte")
    if _CONTROL.search(name):
        raise UnsafePath(f"Invalid {what}: contains control characters")
    if ".." in name.split("/"):
        raise UnsafePath(f"Invalid {what}: {name!r}")
    if len(name) > MAX_FILE_NAME_LENGTH:
        raise UnsafePath(f"Invalid {what}: longer than {MAX_FILE_NAME_LENGTH} characters")
    return name


def safe_key(key: str) -> str:
    """Validate a storage key: relative, '/'-separated, no '.', '..', empty parts, NUL or backslash."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise UnsafePath(f"Invalid path: {key!r}")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise UnsafePath(f"Invalid path: {key!r}")
    return key


def join_key(*parts: str) -> str:
    """Join already-safe key parts with '/' and validate the result."""
    return safe_key("/".join(p.strip("/") for p in parts if p not in ("", None)))
