"""A small sliding-window request limit per client IP, kept in this process's memory.

Used for the open pairing endpoints (``/api/auth/device/init`` and ``/token``). Each replica
counts on its own, so N replicas allow up to N times the limit: enough to stop a single client
hammering an open endpoint, not a distributed quota.
"""

from __future__ import annotations

import collections
import math
import threading
import time

from fastapi import Request

from romshelf.core.errors import AppError

MAX_TRACKED_CLIENTS = 100_000


class TooManyRequests(AppError):
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many requests", headers={"Retry-After": str(retry_after)})


class RateLimiter:
    def __init__(self, limit: int, window_seconds: float = 60.0) -> None:
        self.limit = limit
        self.window = window_seconds
        self._hits: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, now: float | None = None) -> None:
        """Count one request for ``key``; raise :class:`TooManyRequests` over the limit."""
        if self.limit <= 0:
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= MAX_TRACKED_CLIENTS:
                    self._prune(now)
                hits = self._hits[key] = collections.deque()
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                raise TooManyRequests(max(1, math.ceil(hits[0] + self.window - now)))
            hits.append(now)

    def _prune(self, now: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
            del self._hits[key]
        if len(self._hits) >= MAX_TRACKED_CLIENTS:  # still full of active clients: start over
            self._hits.clear()


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"
