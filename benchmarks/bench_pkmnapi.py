"""The pkmnapi /v1 workspace: GET /v1/roms latency, upload/delete cycle, 8 MiB upload
throughput, over-limit rejection, and the server's memory while many 8 MiB bodies stream in.

Tokens come from open sign-up (POST /v1/access_tokens), one account per concurrent client.
"""

from __future__ import annotations

import hashlib
import threading
import time

from benchmarks._util import emit, rss_mb, server, summarize_ms

MiB = 1024 * 1024
LOGO = bytes.fromhex("CEED6666CC0D000B03730083000C000D0008111F8889000EDCCC6EE6DDDDD999BBBB67636E0EECCCDDDC999FBBB9333E")


def gb_rom(size: int, seed: int) -> bytes:
    """A Game Boy ROM of ``size`` bytes; the body is pseudo-random so every seed hashes apart."""
    head = bytearray(0x100) + b"\x00\xc3\x50\x01" + LOGO + b"BENCHMARK".ljust(16, b"\x00") + bytes(16)
    body = bytearray()
    block = seed.to_bytes(8, "little")
    while len(body) < size - len(head):
        block = hashlib.sha256(block).digest()
        body += block * 64
    return bytes(head + body[: size - len(head)])


def _token(client, email: str) -> str:  # type: ignore[no-untyped-def]
    body = {"data": {"type": "access_tokens", "attributes": {"email_address": email}}}
    r = client.post("/v1/access_tokens", json=body)
    assert r.status_code == 201, r.text
    return str(r.json())


def _cycle(client, headers: dict[str, str], rom: bytes) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    r = client.post("/v1/roms", content=rom, headers=headers)
    up = time.perf_counter() - t
    assert r.status_code == 201, r.text
    t = time.perf_counter()
    d = client.delete("/v1/roms", headers={**headers, "If-Match": r.headers["etag"]})
    down = time.perf_counter() - t
    assert d.status_code == 204, d.text
    return up, down


def run(quick: bool) -> None:
    n = 50 if quick else 500
    cycles = 5 if quick else 40
    concurrency = 4 if quick else 8
    with server(v1_open_signup="true") as srv, srv.client() as c:
        headers = {"Authorization": f"Bearer {_token(c, 'bench@example.org')}"}
        rom_1m = gb_rom(MiB, 1)
        assert c.post("/v1/roms", content=rom_1m, headers=headers).status_code == 201
        for _ in range(10):
            c.get("/v1/roms", headers=headers)
        samples = []
        for _ in range(n):
            t = time.perf_counter()
            r = c.get("/v1/roms", headers=headers)
            samples.append(time.perf_counter() - t)
            assert r.status_code == 200
        stats = summarize_ms(samples)
        emit("v1_get_rom", stats["median_ms"], "ms median", **stats)
        etag = c.get("/v1/roms", headers=headers).headers["etag"]
        assert c.delete("/v1/roms", headers={**headers, "If-Match": etag}).status_code == 204

        ups, downs = [], []
        for i in range(cycles):
            up, down = _cycle(c, headers, gb_rom(MiB, 100 + i))
            ups.append(up)
            downs.append(down)
        stats = summarize_ms(ups)
        emit("v1_post_rom_1mib", stats["median_ms"], "ms median", **stats)
        stats = summarize_ms(downs)
        emit("v1_delete_rom", stats["median_ms"], "ms median", **stats)

        rom_8m = gb_rom(8 * MiB, 2)
        times = [_cycle(c, headers, rom_8m)[0] for _ in range(max(3, cycles // 4))]
        best = min(times)
        emit("v1_post_rom_8mib_throughput", 8 / best, "MiB/s", best_ms=round(best * 1000, 1), n=len(times))

        too_big = gb_rom(9 * MiB, 3)
        samples = []
        for _ in range(max(3, cycles // 4)):
            t = time.perf_counter()
            r = c.post("/v1/roms", content=too_big, headers=headers)
            samples.append(time.perf_counter() - t)
            assert r.status_code == 400
        stats = summarize_ms(samples)
        emit("v1_post_rom_9mib_rejected", stats["median_ms"], "ms median", **stats)

        # Many clients streaming 8 MiB bodies at once: memory stays about one chunk per upload.
        tokens = [_token(c, f"bench{i}@example.org") for i in range(concurrency)]
        roms = [gb_rom(8 * MiB, 1000 + i) for i in range(concurrency)]
        base_rss = rss_mb(srv.pid)
        errors: list[str] = []
        # VmHWM is set by start-up (imports, migrations), so sample the RSS while uploads run.
        samples_rss: list[float] = []
        done = threading.Event()

        def sampler() -> None:
            while not done.is_set():
                samples_rss.append(rss_mb(srv.pid))
                time.sleep(0.005)

        def worker(i: int) -> None:
            with srv.client() as wc:
                h = {"Authorization": f"Bearer {tokens[i]}"}
                for _ in range(3):
                    try:
                        _cycle(wc, h, roms[i])
                    except AssertionError as e:  # pragma: no cover - reported below
                        errors.append(str(e))

        watcher = threading.Thread(target=sampler)
        watcher.start()
        t = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        elapsed = time.perf_counter() - t
        done.set()
        watcher.join()
        assert not errors, errors[:3]
        total = concurrency * 3 * 8
        emit("v1_concurrent_8mib_uploads", total / elapsed, "MiB/s", clients=concurrency, uploads=concurrency * 3)
        emit(
            "v1_server_rss_during_concurrent_uploads",
            max(samples_rss) - base_rss,
            "MiB above idle (max)",
            idle_rss_mb=round(base_rss, 1),
            samples=len(samples_rss),
            clients=concurrency,
        )
