"""Helpers for benchmarks: a real server in a subprocess, latency stats, peak RSS.

Benchmarks run against a real ``romshelf serve`` process (uvicorn, loopback TCP), never an
in-process test client, so the figures include HTTP parsing and the network stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def emit(name: str, value: float, unit: str, **extra: object) -> dict[str, object]:
    """Print one figure as a JSON line (the runner collects them) and return it."""
    row = {"benchmark": name, "value": round(value, 3), "unit": unit, **extra}
    print(json.dumps(row), flush=True)
    return row


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of a live process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summarize_ms(samples: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(samples) * 1000, 3),
        "p95_ms": round(percentile(samples, 95) * 1000, 3),
        "n": len(samples),
    }


@dataclass
class Server:
    url: str
    pid: int
    data_dir: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes]

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120, **kw)  # type: ignore[arg-type]

    def cli(self, *args: str, input: str | None = None) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "romshelf.cli", *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout


@contextlib.contextmanager
def server(data_dir: Path | None = None, **settings: str) -> Iterator[Server]:
    """Start ``romshelf serve`` on a free port with its own data dir (SQLite unless overridden)."""
    tmp = tempfile.TemporaryDirectory(prefix="romshelf-bench-") if data_dir is None else None
    base = Path(tmp.name) if tmp else data_dir
    assert base is not None
    port = free_port()
    env = {
        **os.environ,
        "ROMSHELF_DATA_DIR": str(base),
        "ROMSHELF_PORT": str(port),
        "ROMSHELF_LOG_LEVEL": "warning",
        "ROMSHELF_INITIAL_ADMIN_PASSWORD": "bench-password",
    }
    env.update({f"ROMSHELF_{k.upper()}": v for k, v in settings.items()})
    # The server's output goes to a file: a pipe nobody reads would fill up and stall the server.
    log = open(base / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "romshelf.cli", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(url + "/api/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                err = (base / "server.log").read_text(errors="replace")
                raise RuntimeError(f"server did not start: {err[-2000:]}")
            time.sleep(0.1)
        yield Server(url, _serving_pid(proc.pid), base, env, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        if tmp:
            tmp.cleanup()


def _serving_pid(pid: int) -> int:
    """uvicorn with one worker serves in the process itself."""
    return pid


def admin_token(srv: Server, scopes: str = "") -> str:
    """A client API token for the bench admin (all scopes unless given)."""
    args = ["token", "create", "admin", "--name", f"bench-{time.time_ns()}"]
    if scopes:
        args += ["--scopes", scopes]
    return srv.cli(*args).strip().splitlines()[-1]


class RawHTTP:
    """A minimal HTTP/1.1 keep-alive client over one socket, for latency figures that should
    show the server, not the client: httpx spends about a millisecond of Python building a
    multipart request, which on a 2-core machine also competes with the server for CPU."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        import socket

        host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
        self._host = host
        self._sock = socket.create_connection((host, int(port)))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._file = self._sock.makefile("rb")
        self._headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())

    def request(self, method: str, path: str, body: bytes = b"", content_type: str = "") -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self._host}\r\n{self._headers}"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        head += f"Content-Length: {len(body)}\r\n\r\n"
        self._sock.sendall(head.encode() + body)
        status = int(self._file.readline().split(b" ", 2)[1])
        length = 0
        while True:
            line = self._file.readline()
            if line in (b"\r\n", b""):
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return status, self._file.read(length)

    @staticmethod
    def multipart(
        field: str, filename: str, data: bytes, boundary: str = "romshelf-bench-boundary"
    ) -> tuple[bytes, str]:
        """A one-file multipart/form-data body and its content type."""
        b = boundary.encode()
        body = (
            b"--"
            + b
            + f'\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'.encode()
            + b"Content-Type: application/octet-stream\r\n\r\n"
            + data
            + b"\r\n--"
            + b
            + b"--\r\n"
        )
        return body, f"multipart/form-data; boundary={boundary}"

    def close(self) -> None:
        self._file.close()
        self._sock.close()
