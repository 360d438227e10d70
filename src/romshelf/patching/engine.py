"""The patch engine: detect a patch's format from its magic bytes and apply it to a ROM file.

Formats: IPS (+ IPS32 and the EOF truncation extension), UPS, BPS, PPF 1.0/2.0/3.0, APS (N64
and GBA), RUP (NINJA 2.0), and xdelta3/VCDIFF through the ``xdelta3`` tool. The file name's
extension is never trusted.

Every format writes the result to a new file in bounded memory (streamed, or record writes on
a copy, or memory maps; never several in-memory copies of a ROM), refuses outputs above
``max_bytes`` before writing them, and reports a malformed, truncated or hostile patch as a
:class:`PatchError` (HTTP 400) with a message that says what is wrong. ``validated`` says
whether the checksums the format carries matched (the patch is applied either way).

Used by ``POST /api/roms/{id}/patch`` and by ``romshelf patch``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from romshelf.patching.binio import PatchError, PatchResult, human
from romshelf.patching.formats import aps, bps, ips, ppf, rup, ups, xdelta
from romshelf.patching.formats.xdelta import ToolMissing

__all__ = ["FORMATS", "PatchError", "PatchResult", "ToolMissing", "apply_patch", "detect"]

FORMATS = ("IPS", "UPS", "BPS", "PPF", "APS (N64)", "APS (GBA)", "RUP", "xdelta/VCDIFF")


def detect(head: bytes) -> str:
    """The format named by a patch's first bytes (at least 8 of them, when the file has them)."""
    if head.startswith(b"PATCH") or head.startswith(b"IPS32"):
        return "IPS"
    if head.startswith(b"UPS1"):
        return "UPS"
    if head.startswith(b"BPS1"):
        return "BPS"
    if head[:3] == b"PPF" and head[3:5] in (b"10", b"20", b"30"):
        return "PPF"
    if aps.is_n64(head):
        return "APS (N64)"
    if head.startswith(b"APS1"):
        return "APS (GBA)"
    if head.startswith(b"NINJA2"):
        return "RUP"
    if head[:3] == b"\xd6\xc3\xc4":
        return "xdelta/VCDIFF"
    shown = head[:8].hex(" ") if head else "nothing"
    raise PatchError(
        f"Unsupported or invalid patch format (the file starts with {shown}); "
        "supported: IPS, UPS, BPS, PPF, APS, RUP, xdelta/VCDIFF"
    )


def apply_patch(
    rom: Path,
    patch: Path,
    out: Path,
    *,
    max_bytes: int,
    xdelta3: str = "xdelta3",
    timeout: float = 300,
) -> PatchResult:
    """Apply ``patch`` to ``rom`` into the new file ``out`` (removed again on any failure)."""
    rom_size = os.path.getsize(rom)
    patch_size = os.path.getsize(patch)
    if rom_size > max_bytes:
        raise PatchError(f"ROM file is too large to patch ({rom_size} bytes, max {max_bytes})")
    if patch_size == 0:
        raise PatchError("Patch file is empty")
    if patch_size > max_bytes:
        raise PatchError(f"Patch file is too large ({patch_size} bytes, max {max_bytes})")
    with open(patch, "rb") as fh:
        head = fh.read(16)
    fmt = detect(head)
    try:
        if fmt == "IPS":
            result = ips.apply(rom, patch, out, max_bytes)
        elif fmt == "UPS":
            result = ups.apply(rom, patch, out, max_bytes)
        elif fmt == "BPS":
            result = bps.apply(rom, patch, out, max_bytes)
        elif fmt == "PPF":
            result = ppf.apply(rom, patch, out, max_bytes)
        elif fmt == "APS (N64)":
            result = aps.apply_n64(rom, patch, out, max_bytes)
        elif fmt == "APS (GBA)":
            result = aps.apply_gba(rom, patch, out, max_bytes)
        elif fmt == "RUP":
            result = rup.apply(rom, patch, out, max_bytes)
        else:
            result = xdelta.apply(rom, patch, out, max_bytes, xdelta3=xdelta3, timeout=timeout)
    except BaseException:
        with contextlib.suppress(OSError):
            out.unlink()
        raise
    if result.size > max_bytes:  # belt and braces: every format checks before writing
        with contextlib.suppress(OSError):
            out.unlink()
        raise PatchError(f"Patched output would be {human(result.size)}, more than the limit of {human(max_bytes)}")
    return result
