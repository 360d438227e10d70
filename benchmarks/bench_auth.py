"""Authentication overhead: GET /api/users/me with each credential type; token issuance."""

from __future__ import annotations

import base64
import time

from benchmarks._util import admin_token, emit, server, summarize_ms


def _time(client, path: str, headers: dict[str, str], n: int) -> list[float]:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(path, headers=headers)
        samples.append(time.perf_counter() - t)
        assert r.status_code == 200, r.text
    return samples


def run(quick: bool) -> None:
    n = 50 if quick else 500
    with server() as srv, srv.client() as c:
        token = admin_token(srv)
        basic = "Basic " + base64.b64encode(b"admin:bench-password").decode()
        jwt = c.post("/api/token", data={"username": "admin", "password": "bench-password"}).json()["access_token"]
        for label, header in (("client_token", f"Bearer {token}"), ("jwt", f"Bearer {jwt}"), ("basic", basic)):
            _time(c, "/api/users/me", {"Authorization": header}, 5)  # warm up
            stats = summarize_ms(_time(c, "/api/users/me", {"Authorization": header}, n))
            emit(f"users_me_{label}", stats["median_ms"], "ms median", **stats)
        samples = []
        for _ in range(max(5, n // 10)):
            t = time.perf_counter()
            assert c.post("/api/token", data={"username": "admin", "password": "bench-password"}).status_code == 200
            samples.append(time.perf_counter() - t)
        stats = summarize_ms(samples)
        emit("token_password_grant", stats["median_ms"], "ms median", **stats)
