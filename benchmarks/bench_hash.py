"""Hashing throughput and memory: CRC32 + MD5 + SHA-1 of a 1 GiB file in one pass, against
``md5sum`` on the same file (page cache warm for both). Target: >= 0.85x md5sum's throughput,
peak RSS < 100 MB.

Our hashing runs in a fresh child process (``python -m benchmarks.bench_hash FILE``) so its peak
RSS (VmHWM) is its own. Each side runs three times; the best run counts (the machine is shared).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._util import ROOT, emit

MiB = 1024 * 1024


def make_file(path: Path, size: int) -> None:
    block = os.urandom(8 * MiB)
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            n = min(left, len(block))
            fh.write(block[:n])
            left -= n


def _md5sum(path: Path) -> float:
    t = time.perf_counter()
    subprocess.run(["md5sum", str(path)], check=True, capture_output=True)
    return time.perf_counter() - t


def _ours(path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_hash", str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run(quick: bool) -> None:
    size = (256 if quick else 1024) * MiB
    if shutil.which("md5sum") is None:
        print("md5sum not found; skipping", file=sys.stderr)
        return
    with tempfile.TemporaryDirectory(prefix="romshelf-bench-hash-") as tmp:
        path = Path(tmp) / "big.bin"
        make_file(path, size)
        _md5sum(path)  # warm the page cache
        md5sum_best = min(_md5sum(path) for _ in range(3))
        runs = [_ours(path) for _ in range(3)]
        best = min(runs, key=lambda r: r["seconds"])
        mb = size / 1e6
        ours_rate = mb / best["seconds"]
        md5_rate = mb / md5sum_best
        emit("hash_md5sum", md5_rate, "MB/s", bytes=size, seconds=round(md5sum_best, 3))
        emit("hash_crc_md5_sha1", ours_rate, "MB/s", bytes=size, seconds=round(best["seconds"], 3))
        emit("hash_vs_md5sum", ours_rate / md5_rate, "x", target=">= 0.85")
        emit("hash_peak_rss", max(r["peak_rss_mb"] for r in runs), "MB", target="< 100")


def _child(path: str) -> None:
    from romshelf.core.hashing import hash_file

    t = time.perf_counter()
    digests = hash_file(path)
    seconds = time.perf_counter() - t
    peak = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "md5": digests.md5}))


if __name__ == "__main__":
    _child(sys.argv[1])
