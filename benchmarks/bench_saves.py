"""Saves API latency on a large table, and 16 devices racing for one slot (SQLite, real server).

Figures (issue 6 targets):
  save_upload_32k        POST /api/saves (32 KiB saveFile, a slot, autocleanup off), sequential,
                         median < 5 ms, with 100,000 saves already in the table: uploads to 20
                         games that already have saves (the usual case); also reported:
                         save_upload_32k_first_for_game (a game's first save creates its folders
                         and the player's rom_user row). The upload figures use prebuilt requests
                         on a raw keep-alive socket (the server's latency);
                         save_upload_32k_httpx is the same through httpx, whose multipart
                         encoding adds about a millisecond of client CPU.
  saves_list_by_rom      GET /api/saves?rom_id=N (10 saves per ROM), median < 3 ms
  slot_race_16_devices   16 devices, each in its own thread, syncing one slot for 30 s
                         (download the newest with its device id, upload new bytes with its
                         device id): every request answers 200 or 409, and afterwards every
                         accepted upload is downloadable with exactly the bytes sent. ``lost``
                         must be 0.

The ROMs and the 100,000 existing saves are bulk-inserted with SQLAlchemy Core (rows only; the
list does not read files). ``--quick`` uses 10,000 saves and a 5 s race.
"""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
import threading
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from benchmarks._util import RawHTTP, admin_token, emit, server, summarize_ms
from benchmarks.bench_roms import _cpu_seconds, build_library

SAVES_PER_ROM = 10


def _seed_saves(db_file: Path, user_id: int, n_saves: int) -> list[int]:
    """Insert ``n_saves`` save rows for ``user_id``, ``SAVES_PER_ROM`` per ROM; the ROM ids used."""
    from romshelf.core.timeutil import utcnow
    from romshelf.saves.models import Save

    engine = sa.create_engine(f"sqlite:///{db_file}")
    now = utcnow()
    rom_ids = list(range(1, n_saves // SAVES_PER_ROM + 1))
    with engine.begin() as conn:
        batch: list[dict[str, object]] = []
        for rom_id in rom_ids:
            for k in range(SAVES_PER_ROM):
                name = f"game {rom_id} [2026-01-01_00-00-{k:02d}].srm"
                batch.append(
                    {
                        "rom_id": rom_id,
                        "user_id": user_id,
                        "file_name": name,
                        "file_name_no_tags": f"game {rom_id}",
                        "file_name_no_ext": name[:-4],
                        "file_extension": "srm",
                        "file_path": f"users/bench/saves/gb/{rom_id}/mgba",
                        "file_size_bytes": 32768,
                        "missing_from_fs": False,
                        "is_public": False,
                        "emulator": "mgba",
                        "slot": f"slot{k % 3}",
                        "content_hash": hashlib.md5(name.encode()).hexdigest(),
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                if len(batch) >= 10_000:
                    conn.execute(sa.insert(Save.__table__), batch)
                    batch = []
        if batch:
            conn.execute(sa.insert(Save.__table__), batch)
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return rom_ids


def _race(url: str, headers: dict[str, str], rom_id: int, seconds: float, devices: list[str]) -> dict[str, object]:
    """Each device loops: list the slot with its id, download the newest (optimistic sync), upload."""
    accepted: dict[int, str] = {}  # save id -> md5 of the bytes sent
    lock = threading.Lock()
    counts = {"ok": 0, "conflict": 0, "other": 0, "downloads": 0}
    others: list[str] = []
    deadline = time.monotonic() + seconds

    def device_loop(device_id: str, seed: int) -> None:
        rnd = random.Random(seed)
        with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
            while time.monotonic() < deadline:
                rows = c.get("/api/saves", params={"rom_id": rom_id, "slot": "race", "device_id": device_id})
                if rows.status_code == 200 and rows.json():
                    newest = max(rows.json(), key=lambda s: (s["updated_at"], s["id"]))
                    got = c.get(f"/api/saves/{newest['id']}/content", params={"device_id": device_id})
                    with lock:
                        counts["downloads"] += got.status_code == 200
                body = rnd.randbytes(8192)
                r = c.post(
                    "/api/saves",
                    params={"rom_id": rom_id, "slot": "race", "device_id": device_id, "emulator": "mgba"},
                    files={"saveFile": ("race.srm", body, "application/octet-stream")},
                )
                with lock:
                    if r.status_code == 200:
                        counts["ok"] += 1
                        accepted[r.json()["id"]] = hashlib.md5(body).hexdigest()
                    elif r.status_code == 409:
                        counts["conflict"] += 1
                    else:
                        counts["other"] += 1
                        others.append(f"{r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=device_loop, args=(d, i)) for i, d in enumerate(devices)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lost = 0
    with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        for save_id, md5 in accepted.items():
            r = c.get(f"/api/saves/{save_id}/content")
            if r.status_code != 200 or hashlib.md5(r.content).hexdigest() != md5:
                lost += 1
    return {**counts, "accepted": len(accepted), "lost": lost, "other_examples": others[:3]}


def run(quick: bool) -> None:
    n_saves = 10_000 if quick else 100_000
    race_seconds = 5.0 if quick else 30.0
    reps = 100 if quick else 300
    with tempfile.TemporaryDirectory(prefix="romshelf-bench-saves-") as tmp:
        data = Path(tmp)
        build_library(data / "romshelf.db", max(1_000, n_saves // SAVES_PER_ROM + 100))
        with server(data_dir=data) as srv, srv.client() as c:
            h = {"Authorization": f"Bearer {admin_token(srv)}"}
            user_id = c.get("/api/users/me", headers=h).json()["id"]
            t0 = time.perf_counter()
            rom_ids = _seed_saves(data / "romshelf.db", user_id, n_saves)
            emit("saves_seed", time.perf_counter() - t0, "s", saves=n_saves)

            rnd = random.Random(6)
            urls = [f"/api/saves?rom_id={rnd.choice(rom_ids)}" for _ in range(reps)]
            for u in urls[:10]:
                c.get(u, headers=h)
            samples = []
            cpu0 = _cpu_seconds(srv.pid)
            for u in urls:
                t = time.perf_counter()
                r = c.get(u, headers=h)
                samples.append(time.perf_counter() - t)
                assert r.status_code == 200 and len(r.json()) == SAVES_PER_ROM, (r.status_code, r.text[:300])
            cpu_ms = round((_cpu_seconds(srv.pid) - cpu0) * 1000 / len(urls), 3)
            stats = summarize_ms(samples)
            emit(
                "saves_list_by_rom",
                stats["median_ms"],
                "ms median",
                saves=n_saves,
                items=SAVES_PER_ROM,
                server_cpu_ms=cpu_ms,
                **stats,
            )

            payload = os.urandom(32 * 1024)
            counter = iter(range(10**9))
            raw = RawHTTP(srv.url, h)

            def uploads(targets: list[int], lean: bool = True) -> tuple[list[float], float]:
                """Sequential uploads; ``lean``: prebuilt requests on a raw keep-alive socket (the
                server's latency), else through httpx (what a Python client sees end to end)."""
                samples, cpu0 = [], _cpu_seconds(srv.pid)
                for rom_id in targets:
                    data = payload[:-8] + next(counter).to_bytes(8, "big")  # distinct: no dedup shortcut
                    path = f"/api/saves?rom_id={rom_id}&slot=bench&emulator=mgba"
                    if lean:
                        body, ctype = RawHTTP.multipart("saveFile", "bench.srm", data)
                        t = time.perf_counter()
                        status, text = raw.request("POST", path, body, ctype)
                    else:
                        t = time.perf_counter()
                        r = c.post(path, files={"saveFile": ("bench.srm", data, "application/octet-stream")}, headers=h)
                        status, text = r.status_code, r.content
                    samples.append(time.perf_counter() - t)
                    assert status == 200, (status, text[:300])
                return samples, round((_cpu_seconds(srv.pid) - cpu0) * 1000 / len(targets), 3)

            # The usual upload: a game already played here (its save folder and the player's
            # rom_user row exist), into a slot that already holds saves.
            games = rom_ids[:20]
            uploads(games)  # each game's first save: folders, rom_user rows
            samples, cpu_ms = uploads([games[i % len(games)] for i in range(reps)])
            stats = summarize_ms(samples)
            emit(
                "save_upload_32k",
                stats["median_ms"],
                "ms median",
                saves=n_saves,
                server_cpu_ms=cpu_ms,
                client="raw keep-alive socket, prebuilt multipart",
                **stats,
            )
            samples, cpu_ms = uploads([games[i % len(games)] for i in range(reps)], lean=False)
            stats = summarize_ms(samples)
            emit("save_upload_32k_httpx", stats["median_ms"], "ms median", saves=n_saves, server_cpu_ms=cpu_ms, **stats)
            # For context: the first save ever made for a game (creates its folders and the
            # rom_user row as well).
            samples, cpu_ms = uploads(rom_ids[20 : 20 + min(reps, len(rom_ids) - 20)])
            stats = summarize_ms(samples)
            emit(
                "save_upload_32k_first_for_game",
                stats["median_ms"],
                "ms median",
                saves=n_saves,
                server_cpu_ms=cpu_ms,
                **stats,
            )

            raw.close()
            devices = []
            for i in range(16):
                r = c.post("/api/devices", json={"name": f"handheld {i}", "allow_duplicate": True}, headers=h)
                assert r.status_code == 201, (r.status_code, r.text[:300])
                devices.append(r.json()["device_id"])
            result = _race(srv.url, h, rom_ids[0], race_seconds, devices)
            emit("slot_race_16_devices", float(result["lost"]), "lost uploads", seconds=race_seconds, **result)
            assert result["lost"] == 0 and result["other"] == 0, result
