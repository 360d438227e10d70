"""Download throughput and server memory: a 1 GiB file, and a 3-file 1 GiB folder ROM as a zip.

Targets (issue 5): single file >= 500 MB/s with the server's peak RSS under 100 MB; the zip
>= 300 MB/s. A real ``romshelf serve`` (uvicorn, SQLite) on loopback; the files are written into
its library and registered in its database directly (hashes computed while writing, as a scan
would). The client is curl writing to /dev/null (so the client is not the bottleneck); each
figure is the best of 3 runs after a warm-up, with the page cache warm. Also measured: a resumed
zip download (Range from the middle, If-Range), and that the zip unzips to the right bytes.

    python -m benchmarks.run download            # 1 GiB
    python -m benchmarks.run --quick download    # 128 MiB
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import zipfile
import zlib
from pathlib import Path
from urllib.parse import quote

import httpx

from benchmarks._util import Server, admin_token, emit, peak_rss_mb, rss_mb, server

MiB = 1024 * 1024
MB = 1_000_000


def _write(path: Path, size: int, seed: int) -> dict[str, str]:
    """Write ``size`` pseudo-random bytes; return the hashes a scan would store."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = hashlib.shake_256(seed.to_bytes(8, "little")).digest(16 * MiB)
    crc, md5, sha1 = 0, hashlib.md5(), hashlib.sha1()
    with open(path, "wb") as fh:
        left = size
        i = 0
        while left:
            n = min(left, len(block))
            chunk = block[:n] if i % 2 == 0 else block[n - 1 :: -1][:n]
            fh.write(chunk)
            crc = zlib.crc32(chunk, crc)
            md5.update(chunk)
            sha1.update(chunk)
            left -= n
            i += 1
    return {"crc_hash": f"{crc:08x}", "md5_hash": md5.hexdigest(), "sha1_hash": sha1.hexdigest()}


def _register(srv: Server, files: dict[str, int]) -> dict[str, int]:
    """Create the ROMs (one per top-level name) in the server's library and database."""
    from romshelf.config import Settings
    from romshelf.core.context import AppContext
    from romshelf.platforms import service as platforms
    from romshelf.roms.models import Rom, RomFile

    ctx = AppContext.create(Settings(data_dir=srv.data_dir))
    lib = ctx.storages.library
    ids: dict[str, int] = {}
    try:
        with ctx.db.session() as s:
            platform = platforms.get_or_create(s, "ps2")
            s.commit()
            groups: dict[str, list[tuple[str, int]]] = {}
            for rel, size in files.items():
                groups.setdefault(rel.split("/", 1)[0], []).append((rel, size))
            for top, members in groups.items():
                rom_files = []
                for rel, size in members:
                    key = f"roms/ps2/{rel}"
                    hashes = _write(lib.path(key), size, seed=len(rel) * 7 + size)
                    folder, _, name = key.rpartition("/")
                    rom_files.append(
                        RomFile(
                            file_name=name,
                            file_path=folder,
                            file_size_bytes=size,
                            last_modified=lib.stat(key).mtime,
                            **hashes,
                        )
                    )
                rom = Rom(
                    platform_id=platform.id,
                    fs_name=top,
                    fs_path="roms/ps2",
                    fs_size_bytes=sum(sz for _r, sz in members),
                    name=top,
                    name_sort_key=top.lower(),
                )
                rom.files = rom_files
                s.add(rom)
                s.commit()
                ids[top] = rom.id
    finally:
        ctx.close()
    return ids


def _reset_peak(pid: int) -> bool:
    """Reset the process's VmHWM (Linux >= 4.0), so the peak measured is the downloads' own."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _curl(url: str, token: str, *extra: str) -> tuple[int, float]:
    """(bytes, seconds) of one download to /dev/null."""
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-H",
            f"Authorization: Bearer {token}",
            *extra,
            "-w",
            "%{http_code} %{size_download} %{time_total}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[0] in ("200", "206"), out
    return int(out[1]), float(out[2])


def _httpx(url: str, token: str, *extra: str) -> tuple[int, float]:
    import time

    headers = {"Authorization": f"Bearer {token}"}
    for i in range(0, len(extra), 2):
        k, _, v = extra[i + 1].partition(": ")
        headers[k] = v
    t = time.perf_counter()
    n = 0
    with httpx.stream("GET", url, headers=headers, timeout=600) as r:
        for chunk in r.iter_raw(4 * MiB):
            n += len(chunk)
    return n, time.perf_counter() - t


def _best(fetch, url: str, token: str, expected: int, *extra: str) -> float:  # type: ignore[no-untyped-def]
    fetch(url, token, *extra)  # warm-up
    best = 0.0
    for _ in range(3):
        n, seconds = fetch(url, token, *extra)
        assert n == expected, (n, expected)
        best = max(best, n / seconds / MB)
    return best


def run(quick: bool) -> None:
    total = (128 if quick else 1024) * MiB
    single = {"Big Game (USA).iso": total}
    parts = [total * 40 // 100, total * 35 // 100]
    parts.append(total - sum(parts))
    multi = {f"Multi Disc (USA)/Multi Disc (Disc {i + 1}).bin": size for i, size in enumerate(parts)}
    fetch = _curl if shutil.which("curl") else _httpx
    with server() as srv:
        ids = _register(srv, {**single, **multi})
        token = admin_token(srv)
        base = f"{srv.url}/api/roms"
        httpx.get(
            f"{base}/{ids['Big Game (USA).iso']}/content/x",
            headers={"Authorization": f"Bearer {token}"},
            params={"file_ids": "0"},
            timeout=30,
        )
        idle_rss = rss_mb(srv.pid)
        emit("download_server_idle_rss", idle_rss, "MiB", note="after start-up and one request")
        emit(
            "download_server_startup_peak_rss",
            peak_rss_mb(srv.pid),
            "MiB",
            note="VmHWM before any download (start-up hashes the admin password: argon2, 64 MiB)",
        )
        reset = _reset_peak(srv.pid)

        url = f"{base}/{ids['Big Game (USA).iso']}/content/{quote('Big Game (USA).iso')}"
        mbps = _best(fetch, url, token, total)
        emit("download_file_throughput", mbps, "MB/s", size_mib=total // MiB, client=fetch.__name__.strip("_"))
        emit(
            "download_file_peak_rss",
            peak_rss_mb(srv.pid),
            "MiB",
            note="server VmHWM during the file downloads" if reset else "server VmHWM since start (reset refused)",
        )

        zurl = f"{base}/{ids['Multi Disc (USA)']}/content/{quote('Multi Disc (USA)')}"
        head = httpx.head(zurl, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        zsize, etag = int(head.headers["content-length"]), head.headers["etag"]
        mbps = _best(fetch, zurl, token, zsize)
        emit("download_zip_throughput", mbps, "MB/s", size_mib=round(zsize / MiB, 1), members=3)
        half = zsize // 2
        mbps = _best(fetch, zurl, token, zsize - half, "-H", f"Range: bytes={half}-", "-H", f"If-Range: {etag}")
        emit("download_zip_resume_throughput", mbps, "MB/s", note="Range from the middle with If-Range (206)")
        emit(
            "download_zip_peak_rss",
            peak_rss_mb(srv.pid),
            "MiB",
            note="server VmHWM during all downloads" if reset else "server VmHWM since start (reset refused)",
        )

        # the archive is right: sizes, CRCs (zipfile checks them while reading)
        tmp = srv.data_dir / "check.zip"
        subprocess.run(["curl", "-sS", "-o", str(tmp), "-H", f"Authorization: Bearer {token}", zurl], check=True)
        with zipfile.ZipFile(tmp) as zf:
            assert zf.testzip() is None
            assert sorted(i.file_size for i in zf.infolist() if i.filename.endswith(".bin")) == sorted(parts)
        os.unlink(tmp)
