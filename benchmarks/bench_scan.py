"""Library scans through a real server: first scan and unchanged rescan of 10,000 small ROMs.

Builds a library of 10,000 ROMs of a few KB in 10 platform folders (layout A), starts
``romshelf serve`` on it, runs ``POST /api/scan`` (the job runs in the server's own consumer
thread) and reads the job's own start/end times and counters. Then rescans the unchanged
library. Targets: first scan >= 1,000 ROMs/s; unchanged rescan < 1 s.

SQLite always; also PostgreSQL / MariaDB when ROMSHELF_TEST_POSTGRES_URL /
ROMSHELF_TEST_MARIADB_URL are set (a scratch database is created and dropped).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks._util import admin_token, emit, server

PLATFORMS = ("gb", "gbc", "gba", "nes", "snes", "n64", "genesis", "sms", "gamegear", "psx")
EXT = {"gb": "gb", "gbc": "gbc", "gba": "gba", "nes": "nes", "snes": "sfc", "n64": "z64", "genesis": "md"}


def make_library(root: Path, n: int) -> int:
    """n ROMs of 2-8 KB, spread over 10 platforms; returns total bytes."""
    total = 0
    per = n // len(PLATFORMS)
    for p, slug in enumerate(PLATFORMS):
        folder = root / "library" / "roms" / slug
        folder.mkdir(parents=True, exist_ok=True)
        ext = EXT.get(slug, "bin")
        regions = ("USA", "Europe", "Japan", "World")
        for i in range(per):
            size = 2048 + (i * 97 % 6144)
            data = os.urandom(size)
            name = f"Game {p * per + i:05d} ({regions[i % 4]}) (Rev {i % 3}).{ext}"
            (folder / name).write_bytes(data)
            total += size
    return total


@contextlib.contextmanager
def scratch_database(engine: str) -> Iterator[str | None]:
    """A fresh database URL on the given engine (None: SQLite in the data dir)."""
    if engine == "sqlite":
        yield None
        return
    import sqlalchemy as sa

    name = f"romshelf_bench_{secrets.token_hex(3)}"
    if engine == "postgresql":
        server_url = os.environ["ROMSHELF_TEST_POSTGRES_URL"]
        admin = sa.create_engine(
            sa.make_url(server_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
        )
        create, drop = f'CREATE DATABASE "{name}"', f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    else:
        server_url = os.environ["ROMSHELF_TEST_MARIADB_URL"]
        admin = sa.create_engine(sa.make_url(server_url).set(drivername="mysql+pymysql"), isolation_level="AUTOCOMMIT")
        create = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        drop = f"DROP DATABASE IF EXISTS `{name}`"
    with admin.connect() as c:
        c.execute(sa.text(create))
    try:
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(sa.text(drop))
        admin.dispose()


def _scan(client, headers: dict[str, str]) -> dict:  # type: ignore[no-untyped-def, type-arg]
    r = client.post("/api/scan", headers=headers)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    while True:
        job = client.get(f"/api/jobs/{job_id}", headers=headers).json()
        if job["status"] not in ("queued", "started"):
            break
        time.sleep(0.02)
    assert job["status"] == "finished", job
    return job  # type: ignore[no-any-return]


def _seconds(job: dict) -> float:  # type: ignore[type-arg]
    start = dt.datetime.fromisoformat(job["started_at"])
    end = dt.datetime.fromisoformat(job["ended_at"])
    return (end - start).total_seconds()


def run(quick: bool) -> None:
    n = 1000 if quick else 10_000
    engines = ["sqlite"]
    if os.environ.get("ROMSHELF_TEST_POSTGRES_URL"):
        engines.append("postgresql")
    if os.environ.get("ROMSHELF_TEST_MARIADB_URL"):
        engines.append("mariadb")
    with tempfile.TemporaryDirectory(prefix="romshelf-bench-scan-") as tmp:
        base = Path(tmp)
        t = time.perf_counter()
        total_bytes = make_library(base / "seed", n)
        emit("scan_library_generate", time.perf_counter() - t, "s", roms=n, bytes=total_bytes)
        for engine in engines:
            data_dir = base / engine
            data_dir.mkdir()
            os.rename(base / "seed" / "library", data_dir / "library")
            with scratch_database(engine) as url:
                settings = {"database_url": url} if url else {}
                with server(data_dir=data_dir, **settings) as srv, srv.client() as c:
                    headers = {"Authorization": f"Bearer {admin_token(srv, 'tasks.run')}"}
                    first = _scan(c, headers)
                    secs = _seconds(first)
                    assert first["result"]["new_roms"] == n, first["result"]
                    emit(
                        "scan_first",
                        n / secs,
                        "ROMs/s",
                        engine=engine,
                        roms=n,
                        seconds=round(secs, 3),
                        mib=round(total_bytes / 2**20, 1),
                    )
                    for attempt in range(3):
                        again = _scan(c, headers)
                        assert again["result"]["unchanged_roms"] == n, again["result"]
                        emit("scan_rescan_unchanged", _seconds(again), "s", engine=engine, roms=n, attempt=attempt)
            os.rename(data_dir / "library", base / "seed" / "library")
