"""Cross-cutting app behaviour: heartbeat, headers, docs, slashes, errors, settings, migrations."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from romshelf import __version__
from romshelf.config import Settings
from romshelf.core import migrate
from romshelf.core.db import LockTimeout
from romshelf.core.http import content_disposition, etag_matches


def test_heartbeat_is_public_and_reports_engine(client, db):
    r = client.get("/api/heartbeat")
    assert r.status_code == 200
    body = r.json()
    assert body["SYSTEM"]["VERSION"] == __version__
    assert body["ROMSHELF"]["DATABASE_ENGINE"] == db.engine_name
    assert body["SYSTEM"]["SHOW_SETUP_WIZARD"] is True


def test_server_header_everywhere(client):
    for path in ("/api/heartbeat", "/api/users/me", "/nope", "/openapi.json"):
        assert client.get(path).headers["server"] == f"romshelf/{__version__}"


def test_openapi_and_docs(client):
    spec = client.get("/openapi.json").json()
    assert "/api/token" in spec["paths"] and "/api/users/me" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_trailing_slash_answers_without_redirect(client, users):
    admin = users.admin()
    r = client.get("/api/platforms/", headers=users.basic(admin), follow_redirects=False)
    assert r.status_code == 200
    r = client.get("/api/users/me/", headers=users.basic(admin), follow_redirects=False)
    assert r.status_code == 200


def test_unknown_path_and_method(client):
    assert client.get("/api/nothing-here").json() == {"detail": "Not Found"}
    assert client.delete("/api/heartbeat").status_code == 405


def test_timestamps_are_iso_with_offset(client, users):
    admin = users.admin()
    created = client.get("/api/users/me", headers=users.basic(admin)).json()["created_at"]
    assert created.endswith("+00:00")
    parsed = dt.datetime.fromisoformat(created)
    assert abs((dt.datetime.now(dt.UTC) - parsed).total_seconds()) < 60


def test_settings_defaults_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv("ROMSHELF_DATA_DIR", raising=False)
    s = Settings(data_dir=tmp_path / "d")
    assert s.library_path == tmp_path / "d" / "library"
    assert s.db_url.startswith("sqlite:///") and s.db_url.endswith("romshelf.db")
    assert (s.host, s.port) == ("127.0.0.1", 8080)
    monkeypatch.setenv("ROMSHELF_PORT", "9999")
    monkeypatch.setenv("ROMSHELF_GEN1_HASHES", "AA bb,cc")
    monkeypatch.setenv("ROMSHELF_LIBRARY_DIR", str(tmp_path / "lib"))
    s = Settings()
    assert s.port == 9999 and s.gen1_hashes == ("aa", "bb", "cc") and s.library_path == tmp_path / "lib"
    monkeypatch.setenv("ROMSHELF_PORT", "not-a-port")
    with pytest.raises(ValueError):
        Settings()


def test_generated_secret_key_is_kept(tmp_path):
    a = Settings(data_dir=tmp_path).resolved_secret_key()
    b = Settings(data_dir=tmp_path).resolved_secret_key()
    assert a == b and len(a) == 64
    assert oct((tmp_path / "secret.key").stat().st_mode & 0o777) == "0o600"


def test_migrations_are_at_head(db):
    assert migrate.current_revision(db) == migrate.head_revision()


def test_named_lock_excludes_and_times_out(db):
    events: list[str] = []
    with db.lock("test:lock"):

        def other() -> None:
            try:
                with db.lock("test:lock", timeout=0.2):
                    events.append("got")
            except LockTimeout:
                events.append("timeout")

        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert events == ["timeout"]
    with db.lock("test:lock", timeout=0):
        pass


def test_named_lock_waits_for_release(db):
    order: list[str] = []

    def holder() -> None:
        with db.lock("test:wait"):
            order.append("a-in")
            time.sleep(0.3)
            order.append("a-out")

    t = threading.Thread(target=holder)
    t.start()
    time.sleep(0.1)
    with db.lock("test:wait", timeout=5):
        order.append("b-in")
    t.join()
    assert order == ["a-in", "a-out", "b-in"]


def test_content_disposition_and_etag_helpers():
    h = content_disposition('Pokémon "Red" (USA).gb')
    assert "filename*=UTF-8''Pok%C3%A9mon%20%22Red%22%20%28USA%29.gb" in h
    assert h.startswith("attachment; filename=\"Pok_mon 'Red' (USA).gb\"")
    assert etag_matches('"a", W/"b"', '"b"') and etag_matches("*", '"x"') and not etag_matches('"a"', '"b"')


def test_numbers_beyond_the_database_are_422_not_500(client, users):
    admin = users.admin()
    h = users.basic(admin)
    huge = 2**70
    r = client.post("/api/roms/delete", headers=h, json={"roms": [huge]})
    assert r.status_code in (200, 422), r.text  # reported per item, or refused whole: never a 500
    for path in (f"/api/platforms/{huge}", f"/api/roms/{huge}", f"/api/users/{huge}", f"/api/platforms/{2**40}"):
        r = client.get(path, headers=h)
        assert r.status_code in (404, 422), (path, r.status_code, r.text)
