"""Patch engine speed and memory: BPS and IPS (plus UPS) applied to a 64 MiB ROM.

Targets (issue 5): under 1 s each, peak RSS under 3x the ROM size. Each patch is applied in a
fresh Python process (``romshelf.patching.engine.apply_patch``, exactly what the endpoint and
``romshelf patch`` run) so the peak RSS (VmHWM of that process) is the engine's own and
not this script's test data. The ROM and patches are synthetic: ``changes`` scattered edits of
1-64 bytes (IPS edits stay in the first 16 MiB, all a 3-byte IPS offset can reach).

    python -m benchmarks.run patch            # 64 MiB ROM
    python -m benchmarks.run --quick patch    # 16 MiB ROM
"""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

from benchmarks._util import emit

MiB = 1024 * 1024

# Peak RSS is read from /proc/self/status (VmHWM: this process's own address space). ru_maxrss
# would not do: Linux carries the parent's high-water mark across fork + exec.
HWM = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024"

CHILD = r"""
import json, sys, time
from pathlib import Path
from romshelf.patching.engine import apply_patch
rom, patch, out = map(Path, sys.argv[1:4])
t = time.perf_counter()
r = apply_patch(rom, patch, out, max_bytes=4 << 30)
elapsed = time.perf_counter() - t
print(json.dumps({"seconds": elapsed, "validated": r.validated, "format": r.format, "size": r.size,
                  "maxrss_mb": HWM}))
""".replace("HWM", HWM)

BASELINE = r"""
import json
import romshelf.patching.engine  # noqa: F401  (what the child imports before patching)
print(json.dumps({"maxrss_mb": HWM}))
""".replace("HWM", HWM)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        x = n & 0x7F
        n >>= 7
        if n == 0:
            out.append(0x80 | x)
            return bytes(out)
        out.append(x)
        n -= 1


def _edits(size: int, limit: int, changes: int, seed: int) -> list[tuple[int, bytes]]:
    rnd = random.Random(seed)
    offsets = sorted(rnd.sample(range(0, limit - 64, 80), changes))  # spaced: edits never touch
    return [(off, rnd.randbytes(rnd.randint(1, 64))) for off in offsets]


def _apply_edits(rom: bytes, edits: list[tuple[int, bytes]]) -> bytes:
    out = bytearray(rom)
    for off, data in edits:
        out[off : off + len(data)] = data
    return bytes(out)


def build_ips(edits: list[tuple[int, bytes]]) -> bytes:
    parts = [b"PATCH"]
    for off, data in edits:
        parts.append(off.to_bytes(3, "big") + len(data).to_bytes(2, "big") + data)
    parts.append(b"EOF")
    return b"".join(parts)


def build_bps(src: bytes, tgt: bytes, edits: list[tuple[int, bytes]]) -> bytes:
    parts = [b"BPS1", _varint(len(src)), _varint(len(tgt)), _varint(0)]
    pos = 0
    for off, data in edits:
        if off > pos:
            parts.append(_varint(((off - pos - 1) << 2) | 0))  # SourceRead
        parts.append(_varint(((len(data) - 1) << 2) | 1) + data)  # TargetRead
        pos = off + len(data)
    if pos < len(tgt):
        parts.append(_varint(((len(tgt) - pos - 1) << 2) | 0))
    body = b"".join(parts) + struct.pack("<II", zlib.crc32(src), zlib.crc32(tgt))
    return body + struct.pack("<I", zlib.crc32(body))


def build_ups(src: bytes, tgt: bytes, edits: list[tuple[int, bytes]]) -> bytes:
    parts = [b"UPS1", _varint(len(src)), _varint(len(tgt))]
    pos = 0
    for off, data in edits:
        x = bytes(a ^ b for a, b in zip(src[off : off + len(data)], data, strict=True))
        # XOR runs cannot hold zero bytes: split the edit where a byte did not change
        start = 0
        for i in range(len(x) + 1):
            if i == len(x) or x[i] == 0:
                if i > start:
                    parts.append(_varint(off + start - pos) + x[start:i] + b"\0")
                    pos = off + i + 1
                start = i + 1
    body = b"".join(parts) + struct.pack("<II", zlib.crc32(src), zlib.crc32(tgt))
    return body + struct.pack("<I", zlib.crc32(body))


def _child(code: str, *args: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run(quick: bool) -> None:
    size = (16 if quick else 64) * MiB
    changes = 5_000 if quick else 20_000
    rnd = random.Random(1)
    rom = rnd.randbytes(size)
    with tempfile.TemporaryDirectory(prefix="romshelf-bench-patch-") as d:
        base = Path(d)
        rom_path = base / "rom.bin"
        rom_path.write_bytes(rom)
        cases = []
        e_all = _edits(size, size, changes, seed=2)
        tgt = _apply_edits(rom, e_all)
        cases.append(("bps", build_bps(rom, tgt, e_all), tgt))
        e_ips = _edits(size, min(size, 0xFFFFFF), changes, seed=3)
        cases.append(("ips", build_ips(e_ips), _apply_edits(rom, e_ips)))
        cases.append(("ups", build_ups(rom, tgt, e_all), tgt))
        del rom
        baseline = _child(BASELINE)["maxrss_mb"]
        emit("patch_process_baseline_rss", float(baseline), "MiB", note="python + romshelf.patching imported")  # type: ignore[arg-type]
        for name, patch, expected in cases:
            patch_path = base / f"patch.{name}"
            patch_path.write_bytes(patch)
            best: dict[str, object] | None = None
            for i in range(3):
                out = base / f"out-{name}-{i}"
                res = _child(CHILD, str(rom_path), str(patch_path), str(out))
                assert res["validated"], res
                assert out.read_bytes() == expected, f"{name}: wrong output"
                out.unlink()
                if best is None or float(res["seconds"]) < float(best["seconds"]):  # type: ignore[arg-type]
                    best = res
            assert best is not None
            rss = float(best["maxrss_mb"])  # type: ignore[arg-type]
            emit(
                f"patch_{name}_seconds",
                float(best["seconds"]),  # type: ignore[arg-type]
                "s (best of 3)",
                rom_mib=size // MiB,
                changes=changes,
                patch_bytes=len(patch),
            )
            emit(
                f"patch_{name}_peak_rss",
                rss,
                "MiB",
                rom_mib=size // MiB,
                x_rom_size=round(rss / (size / MiB), 2),
                baseline_mib=baseline,
            )
        os.sync()
