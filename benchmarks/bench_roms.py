"""ROMs API latency and throughput on a large synthetic library (SQLite, real server).

Figures (issue 4 targets on 100,000 ROMs):
  list_default            GET /api/roms?limit=50 (default options: char index, filter values,
                          id index, total), sequential, median < 10 ms
  list_default_8c         the same with 8 concurrent keep-alive clients, >= 300 req/s
  list_search_filters     + search_term and two filters, median < 25 ms
  detail                  GET /api/roms/{id} (random ids), median < 3 ms
  by_hash                 GET /api/roms/by-hash?md5_hash=... (random ROMs), median < 3 ms
and, for context, the cold paths (right after a write invalidated the caches, or a search term
never seen before), 304 revalidation, and response sizes.

The library is bulk-inserted with SQLAlchemy Core (rows only, one file row per ROM; no files
on disk: list speed does not read them). ``--quick`` uses 10,000 ROMs.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from benchmarks._util import admin_token, emit, server, summarize_ms

WORDS = [
    "super",
    "mario",
    "zelda",
    "metroid",
    "sonic",
    "castle",
    "dragon",
    "quest",
    "final",
    "fantasy",
    "star",
    "ocean",
    "tales",
    "legend",
    "hero",
    "world",
    "kart",
    "party",
    "wars",
    "force",
    "racing",
    "soccer",
    "puzzle",
    "fighter",
    "street",
    "king",
    "kong",
    "pac",
    "man",
    "tetris",
    "pokemon",
    "red",
    "blue",
    "green",
    "yellow",
    "gold",
    "silver",
    "crystal",
    "ruby",
    "sapphire",
    "emerald",
    "golf",
    "tennis",
    "baseball",
    "hockey",
    "ninja",
    "turtles",
    "contra",
    "gradius",
    "mega",
    "man",
    "bomber",
    "wario",
    "kirby",
    "yoshi",
    "donkey",
    "samus",
    "link",
]
REGIONS = ("USA", "Europe", "Japan", "World")
TAGS = ("Proto", "Beta", "Demo", "Rev 1", "!", "Hack", "Virtual Console")
GENRES = ("Action", "RPG", "Puzzle", "Racing", "Sports", "Shooter", "Platform", "Adventure", "Fighting", "Strategy")
COMPANIES = ("Nintendo", "Sega", "Capcom", "Konami", "Namco", "Hudson", "Taito")
PLATFORMS = ("gb", "gbc", "gba", "nes", "snes", "n64", "genesis", "psx", "nds", "sms")


def build_library(db_file: Path, n: int, seed: int = 4) -> dict[str, object]:
    """Migrate a fresh SQLite database and bulk-insert ``n`` ROMs (+ one file row each)."""
    import romshelf.models  # noqa: F401
    from romshelf.core import migrate
    from romshelf.core.db import Database
    from romshelf.core.timeutil import utcnow
    from romshelf.platforms.models import Platform
    from romshelf.roms import derived, naming
    from romshelf.roms.models import Rom, RomFile

    rnd = random.Random(seed)
    db = Database(f"sqlite:///{db_file}")
    migrate.upgrade(db)
    now = utcnow()
    samples: dict[str, list[object]] = {"md5": [], "ids": []}
    with db.write_engine.begin() as conn:
        plat_ids = []
        for slug in PLATFORMS:
            pid = conn.execute(
                sa.insert(Platform.__table__).values(
                    slug=slug,
                    fs_slug=slug,
                    name=slug.upper(),
                    custom_name="",
                    description="",
                    aspect_ratio="2 / 3",
                    missing_from_fs=False,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
            plat_ids.append(pid)
        batch: list[dict[str, object]] = []
        files: list[dict[str, object]] = []
        next_id = 1
        for i in range(n):
            name = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 4))).title()
            if rnd.random() < 0.5:
                name += f" {rnd.randint(1, 99)}"
            regions = rnd.sample(REGIONS, rnd.randint(1, 2))
            tags = [rnd.choice(TAGS)] if rnd.random() < 0.12 else []
            fs_name = f"{name} ({', '.join(regions)})" + "".join(f" ({t})" for t in tags) + f" (v{i}).bin"
            parsed = naming.parse_tags(fs_name)
            meta: dict[str, object] = {}
            igdb_id = None
            if rnd.random() < 0.35:
                igdb_id = rnd.randint(1, n // 3 + 1)
                meta = {
                    "genres": rnd.sample(GENRES, rnd.randint(1, 3)),
                    "companies": [rnd.choice(COMPANIES)],
                    "franchises": [name.split()[0]],
                    "total_rating": str(rnd.randint(40, 95)),
                    "first_release_date": rnd.randint(500_000_000, 1_500_000_000),
                    "player_count": rnd.choice(["1", "1", "2", "1-4"]),
                }
            md5 = f"{rnd.getrandbits(128):032x}"
            crc = f"{rnd.getrandbits(32):08x}"
            sha1 = f"{rnd.getrandbits(160):040x}"
            platform_id = rnd.choice(plat_ids)
            fs_path = f"roms/{PLATFORMS[plat_ids.index(platform_id)]}"
            row: dict[str, object] = {
                "id": next_id,
                "platform_id": platform_id,
                "fs_name": fs_name,
                "fs_name_no_tags": naming.name_no_tags(fs_name),
                "fs_name_no_ext": naming.name_no_ext(fs_name),
                "fs_extension": "bin",
                "fs_path": fs_path,
                "fs_size_bytes": rnd.randint(32_768, 64 * 1024 * 1024),
                "name": name,
                "name_sort_key": naming.name_sort_key(name),
                "slug": "",
                "summary": "",
                "igdb_id": igdb_id,
                "igdb_metadata": meta,
                "regions": parsed.regions,
                "languages": parsed.languages,
                "tags": parsed.tags,
                "revision": parsed.revision,
                "version": parsed.version,
                "crc_hash": crc,
                "md5_hash": md5,
                "sha1_hash": sha1,
                "missing_from_fs": False,
                "created_at": now,
                "updated_at": now,
                **derived.derive({"igdb_metadata": meta}),
            }
            batch.append(row)
            files.append(
                {
                    "rom_id": next_id,
                    "file_name": fs_name,
                    "file_path": fs_path,
                    "file_size_bytes": row["fs_size_bytes"],
                    "last_modified": time.time(),
                    "crc_hash": crc,
                    "md5_hash": md5,
                    "sha1_hash": sha1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            if rnd.random() < 0.01:
                samples["md5"].append(md5)
            if rnd.random() < 0.01:
                samples["ids"].append(next_id)
            next_id += 1
            if len(batch) >= 5000:
                conn.execute(sa.insert(Rom.__table__), batch)
                conn.execute(sa.insert(RomFile.__table__), files)
                batch, files = [], []
        if batch:
            conn.execute(sa.insert(Rom.__table__), batch)
            conn.execute(sa.insert(RomFile.__table__), files)
    with db.write_engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    db.dispose()
    return {"platform_ids": plat_ids, **samples}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc; resolution 1/CLK_TCK)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_SERVER_PID = 0
_LAST_CPU_MS: list[float] = [0.0]


def _time(client: httpx.Client, urls: list[str], headers: dict[str, str]) -> tuple[list[float], int]:
    """Sequential requests; wall time per request, and (in ``_LAST_CPU_MS``) the server's CPU
    milliseconds per request, which the noise of a shared machine disturbs much less."""
    samples, size = [], 0
    cpu0 = _cpu_seconds(_SERVER_PID) if _SERVER_PID else 0.0
    for url in urls:
        t = time.perf_counter()
        r = client.get(url, headers=headers)
        samples.append(time.perf_counter() - t)
        assert r.status_code in (200, 304), (url, r.status_code, r.text[:300])
        size = len(r.content)
    if _SERVER_PID:
        _LAST_CPU_MS[0] = round((_cpu_seconds(_SERVER_PID) - cpu0) * 1000 / max(1, len(urls)), 3)
    return samples, size


async def _load(host: str, port: int, path: str, auth: str, clients: int, seconds: float) -> tuple[int, list[float]]:
    """``clients`` keep-alive connections sending ``GET path`` back to back for ``seconds``."""
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n\r\n").encode()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                writer.write(request)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                if status != 200:
                    raise RuntimeError(f"status {status} for {path}")
                latencies.append(time.perf_counter() - t)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(clients)))
    return len(latencies), latencies


def run(quick: bool) -> None:
    n = 10_000 if quick else 100_000
    reps = 60 if quick else 300
    load_seconds = 3.0 if quick else 10.0
    with tempfile.TemporaryDirectory(prefix="romshelf-bench-roms-") as tmp:
        data = Path(tmp)
        t0 = time.perf_counter()
        info = build_library(data / "romshelf.db", n)
        emit("roms_build_library", time.perf_counter() - t0, "s", roms=n)
        with server(data_dir=data) as srv, srv.client() as c:
            global _SERVER_PID
            _SERVER_PID = srv.pid
            token = admin_token(srv)
            auth = f"Bearer {token}"
            h = {"Authorization": auth}
            rnd = random.Random(7)
            ids = [int(i) for i in info["ids"]] or [1]  # type: ignore[union-attr]
            md5s = [str(m) for m in info["md5"]] or [""]  # type: ignore[union-attr]
            plats = info["platform_ids"]
            default = "/api/roms?limit=50"
            search = (
                f"/api/roms?limit=50&search_term=mario&platform_ids={plats[0]}&platform_ids={plats[1]}&genres=Action"  # type: ignore[index]
            )

            # cold: the first request after start-up (nothing cached)
            samples, size = _time(c, [default], h)
            emit("list_default_first", samples[0] * 1000, "ms", roms=n, bytes=size)

            _time(c, [default] * 10, h)  # warm up
            samples, size = _time(c, [default] * reps, h)
            stats = summarize_ms(samples)
            emit("list_default", stats["median_ms"], "ms median", roms=n, bytes=size, cpu_ms=_LAST_CPU_MS[0], **stats)

            port = int(srv.url.rsplit(":", 1)[1])
            count, lat = asyncio.run(_load("127.0.0.1", port, default, auth, 8, load_seconds))
            emit(
                "list_default_8c",
                count / load_seconds,
                "req/s",
                roms=n,
                clients=8,
                seconds=load_seconds,
                median_ms=round(statistics.median(lat) * 1000, 3),
            )

            _time(c, [search] * 5, h)
            samples, size = _time(c, [search] * reps, h)
            stats = summarize_ms(samples)
            emit(
                "list_search_filters",
                stats["median_ms"],
                "ms median",
                roms=n,
                bytes=size,
                cpu_ms=_LAST_CPU_MS[0],
                **stats,
            )
            count, lat = asyncio.run(_load("127.0.0.1", port, search, auth, 8, load_seconds / 2))
            emit("list_search_filters_8c", count / (load_seconds / 2), "req/s", roms=n, clients=8)

            # cold paths: a search term never seen before; a list right after a write
            cold = [f"/api/roms?limit=50&search_term={rnd.choice(WORDS)}+{rnd.choice(WORDS)[:3]}" for _ in range(20)]
            samples, _ = _time(c, cold, h)
            emit("list_search_uncached", summarize_ms(samples)["median_ms"], "ms median", roms=n, n=len(cold))
            cold_samples = []
            for i in range(15):
                r = c.put(f"/api/roms/{ids[i % len(ids)]}/props", json={"rating": i % 10}, headers=h)
                assert r.status_code == 200, r.text
                s, _ = _time(c, [default], h)
                cold_samples += s
            emit("list_default_after_write", summarize_ms(cold_samples)["median_ms"], "ms median", roms=n)

            etag = c.get(default, headers=h).headers["etag"]
            samples, _ = _time(c, [default] * reps, {**h, "If-None-Match": etag})
            emit("list_default_304", summarize_ms(samples)["median_ms"], "ms median", roms=n, cpu_ms=_LAST_CPU_MS[0])

            urls = [f"/api/roms/{rnd.choice(ids)}" for _ in range(reps)]
            _time(c, urls[:10], h)
            samples, size = _time(c, urls, h)
            stats = summarize_ms(samples)
            emit("detail", stats["median_ms"], "ms median", roms=n, bytes=size, cpu_ms=_LAST_CPU_MS[0], **stats)

            urls = [f"/api/roms/by-hash?md5_hash={rnd.choice(md5s)}" for _ in range(reps)]
            _time(c, urls[:10], h)
            samples, size = _time(c, urls, h)
            stats = summarize_ms(samples)
            emit("by_hash", stats["median_ms"], "ms median", roms=n, cpu_ms=_LAST_CPU_MS[0], **stats)

            samples, _ = _time(c, ["/api/users/me"] * reps, h)
            emit("users_me_baseline", summarize_ms(samples)["median_ms"], "ms median", cpu_ms=_LAST_CPU_MS[0])
