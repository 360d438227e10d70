"""Chunked upload of a 1 GiB ROM in 64 MiB chunks over loopback to a real ``romshelf serve``:
wall time, throughput, time to assemble (complete), and the server's peak RSS (VmHWM).
Target: peak server RSS < 150 MB. A single-request upload of a small ROM is timed too.

The server's high-water mark is reset (``/proc/PID/clear_refs``) just before the upload, so the
peak is the upload's, not start-up's (creating the first admin hashes a password with argon2's
64 MiB memory cost). The idle RSS before the upload is reported beside it.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks._util import admin_token, emit, peak_rss_mb, rss_mb, server

MiB = 1024 * 1024
CHUNK = 64 * MiB


def _file_part(path: Path, offset: int, length: int, piece: int = MiB) -> Iterator[bytes]:
    """Stream one chunk of the file from disk (the client does not hold 64 MiB either)."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        left = length
        while left > 0:
            data = fh.read(min(piece, left))
            if not data:
                return
            left -= len(data)
            yield data


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def run(quick: bool) -> None:
    size = (256 if quick else 1024) * MiB
    with tempfile.TemporaryDirectory(prefix="romshelf-bench-upload-") as tmp:
        src = Path(tmp) / "big.bin"
        block = os.urandom(8 * MiB)
        with open(src, "wb") as fh:
            for _ in range(size // len(block)):
                fh.write(block)
        with server() as srv, srv.client() as c:
            auth = {"Authorization": f"Bearer {admin_token(srv, 'roms.write platforms.write')}"}
            platform = c.post("/api/platforms", headers=auth, json={"fs_slug": "psx"}).json()
            base_rss = rss_mb(srv.pid)
            reset = reset_peak_rss(srv.pid)
            chunks = -(-size // CHUNK)
            t0 = time.perf_counter()
            r = c.post(
                "/api/roms/upload/start",
                headers={
                    **auth,
                    "x-upload-platform": str(platform["id"]),
                    "x-upload-filename": "Big Game (USA).bin",
                    "x-upload-total-size": str(size),
                    "x-upload-total-chunks": str(chunks),
                },
            )
            assert r.status_code == 201, r.text
            upload_id = r.json()["upload_id"]
            for i in range(chunks):
                length = min(CHUNK, size - i * CHUNK)
                r = c.put(
                    f"/api/roms/upload/{upload_id}",
                    headers={
                        **auth,
                        "x-chunk-index": str(i),
                        "content-length": str(length),
                        "content-type": "application/octet-stream",
                    },
                    content=_file_part(src, i * CHUNK, length),
                )
                assert r.status_code == 200, r.text
            t1 = time.perf_counter()
            r = c.post(f"/api/roms/upload/{upload_id}/complete", headers=auth)
            assert r.status_code == 201, r.text
            t2 = time.perf_counter()
            assert r.json()["fs_size_bytes"] == size
            peak = peak_rss_mb(srv.pid)
            emit("upload_chunked_total", size / 1e6 / (t2 - t0), "MB/s", bytes=size, seconds=round(t2 - t0, 3))
            emit("upload_chunks_transfer", size / 1e6 / (t1 - t0), "MB/s", seconds=round(t1 - t0, 3), chunks=chunks)
            emit("upload_complete_assemble_hash", t2 - t1, "s", bytes=size)
            emit(
                "upload_server_peak_rss",
                peak,
                "MB",
                target="< 150",
                idle_rss_before_mb=round(base_rss, 1),
                peak_is_upload_only=reset,
            )
            small = os.urandom(256 * 1024)
            samples = []
            for i in range(10 if quick else 30):
                t = time.perf_counter()
                r = c.post(
                    "/api/roms/upload",
                    headers={**auth, "x-upload-platform": str(platform["id"]), "x-upload-filename": f"Small {i}.bin"},
                    content=small,
                )
                samples.append(time.perf_counter() - t)
                assert r.status_code == 201, r.text
            samples.sort()
            emit("upload_single_256k", samples[len(samples) // 2] * 1000, "ms median", n=len(samples))
