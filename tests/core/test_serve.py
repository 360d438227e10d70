"""`romshelf serve` as a real process: migrates an empty data dir, creates the admin, answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_on_fresh_data_dir(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROMSHELF_")}
    env.update(
        {
            "ROMSHELF_DATA_DIR": str(tmp_path / "data"),
            "ROMSHELF_ARGON2_TIME_COST": "1",
            "ROMSHELF_ARGON2_MEMORY_COST_KIB": "64",
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "romshelf.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(url + "/api/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.time() < deadline, "server did not start"
            time.sleep(0.2)
        password = (tmp_path / "data" / "initial-admin-password").read_text().strip()
        assert oct((tmp_path / "data" / "initial-admin-password").stat().st_mode & 0o777) == "0o600"
        r = httpx.get(url + "/api/users/me", auth=("admin", password))
        assert r.status_code == 200 and r.json()["role"] == "admin"
        assert r.headers["server"].startswith("romshelf/")
        assert httpx.get(url + "/api/users/me").status_code == 401
        assert (tmp_path / "data" / "romshelf.db").exists() and (tmp_path / "data" / "library").is_dir()
    finally:
        proc.terminate()
        proc.wait(10)
