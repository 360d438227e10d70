"""Slots, dedup, autocleanup, same-second and concurrent uploads, failures half-way, quota and
size limits: every accepted upload stays downloadable, nothing half-written is left behind."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from factories import count
from saves_helpers import get_save

from romshelf.core.errors import Conflict
from romshelf.saves import service
from romshelf.saves.models import DeviceSaveSync, Save, Screenshot

FROZEN = dt.datetime(2026, 1, 31, 12, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def frozen(monkeypatch):
    monkeypatch.setattr(service, "_now", lambda: FROZEN)


def _staging_empty(env) -> bool:
    st = env.ctx.storages.assets
    return list(st.list(service.INCOMING)) == [] and list(st.list(service.TRASH)) == []


def _all_downloadable(env, headers=None) -> None:
    """Every save row of the ROM has its file, with the bytes its hash says."""
    import hashlib

    with env.ctx.db.read() as s:
        rows = s.scalars(sa.select(Save)).all()
    for row in rows:
        r = env.client.get(f"/api/saves/{row.id}/content", headers=headers or env.a)
        assert r.status_code == 200, (row.file_name, r.text)
        assert hashlib.md5(r.content).hexdigest() == row.content_hash
    assert len(env.files()) >= len(rows)


# --- dedup -----------------------------------------------------------------------------------------
def test_dedup_same_bytes_same_slot(env):
    dev = env.device()
    first = env.upload(b"same", slot="main").json()
    again = env.upload(b"same", slot="main", device_id=None)
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert count(env.ctx, Save) == 1 and len(env.files()) == 1 and _staging_empty(env)
    # the dedup path records the device's sync (RomM skips it)
    set_first = env.client.get(f"/api/saves/{first['id']}", headers=env.a).json()
    with env.ctx.db.transaction() as s:
        s.add(
            DeviceSaveSync(
                device_id=dev, save_id=first["id"], last_synced_at=dt.datetime.fromisoformat(set_first["updated_at"])
            )
        )
    r = env.upload(b"same", slot="main", device_id=dev)
    assert r.status_code == 200 and r.json()["id"] == first["id"]
    assert r.json()["device_syncs"][0]["is_current"] is True
    # other slot: a copy; overwrite: a new row; different bytes: a new row
    other = env.upload(b"same", slot="slot2").json()
    assert other["id"] != first["id"] and other["slot"] == "slot2" and other["content_hash"] == first["content_hash"]
    forced = env.upload(b"same", slot="main", overwrite=True).json()
    assert forced["id"] != first["id"]
    different = env.upload(b"different", slot="main").json()
    assert different["id"] not in (first["id"], forced["id"])
    _all_downloadable(env)


def test_dedup_restores_a_missing_file_and_keeps_the_screenshot(env):
    first = env.upload(b"same", "g.srm", slot="main").json()
    env.ctx.storages.assets.delete(first["full_path"])
    again = env.upload(b"same", "g.srm", slot="main", screenshot=("g.png", b"png")).json()
    assert again["id"] == first["id"]
    assert env.ctx.storages.assets.open(first["full_path"]).read() == b"same"
    assert again["screenshot"] is not None and again["screenshot"]["file_name_no_ext"] == again["file_name_no_ext"]
    assert _staging_empty(env)


def test_slotless_uploads_never_dedup_and_are_not_blocked(env):
    a = env.upload(b"same", "a.sav").json()
    b = env.upload(b"same", "b.sav").json()
    assert a["id"] != b["id"] and count(env.ctx, Save) == 2


def test_dedup_in_the_same_second_keeps_the_file(env, frozen):
    first = env.upload(b"same", slot="main").json()
    again = env.upload(b"same", slot="main").json()  # RomM deletes the first row's file here
    assert again["id"] == first["id"]
    assert env.ctx.storages.assets.open(first["full_path"]).read() == b"same"


# --- same second, concurrency ----------------------------------------------------------------------
def test_same_second_uploads_both_survive(env, frozen):
    one = env.upload(b"first", "test.sav", slot="main").json()
    two = env.upload(b"second", "test.sav", slot="main").json()
    three = env.upload(b"third", "test [2020-01-01_00-00-00] (2).sav", slot="main").json()
    assert one["file_name"] == "test [2026-01-31_12-00-00].sav"
    assert two["file_name"] == "test [2026-01-31_12-00-00] (2).sav"
    assert three["file_name"] == "test [2026-01-31_12-00-00] (3).sav"
    assert len({one["id"], two["id"], three["id"]}) == 3
    assert two["file_name_no_tags"] == "test"
    store = env.ctx.storages.assets
    assert store.open(one["full_path"]).read() == b"first"
    assert store.open(two["full_path"]).read() == b"second"
    assert store.open(three["full_path"]).read() == b"third"
    _all_downloadable(env)


def test_concurrent_uploads_to_one_slot_lose_nothing(env, frozen):
    n = 16
    results: list[object] = [None] * n
    barrier = threading.Barrier(n)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = service.store_save_stream(
                env.ctx,
                user_id=env.alice.id,
                rom_id=env.rom.id,
                filename="race.sav",
                source=f"data {i}".encode(),
                slot="main",
            )
        except Exception as e:
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(r, service.StoredSave) for r in results), results
    assert count(env.ctx, Save) == n
    with env.ctx.db.read() as s:
        names = set(s.scalars(sa.select(Save.file_name)))
    assert len(names) == n
    _all_downloadable(env)
    assert _staging_empty(env)


def test_concurrent_devices_accepted_or_409(env):
    n = 16
    devices = [env.device(name=f"d{i}") for i in range(n)]
    results: list[object] = [None] * n
    barrier = threading.Barrier(n)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = service.store_save_stream(
                env.ctx,
                user_id=env.alice.id,
                rom_id=env.rom.id,
                filename="race.sav",
                source=f"dev {i}".encode(),
                slot="main",
                device_id=devices[i],
            )
        except Conflict as e:
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepted = [r for r in results if isinstance(r, service.StoredSave)]
    rejected = [r for r in results if isinstance(r, Conflict)]
    assert len(accepted) + len(rejected) == n
    assert len(accepted) == 1  # the first into the empty slot; everyone else is behind it
    assert count(env.ctx, Save) == 1
    _all_downloadable(env)
    assert _staging_empty(env)


# --- autocleanup -----------------------------------------------------------------------------------
def _fill_slot(env, n: int, slot: str = "main") -> list[int]:
    return [env.upload(f"fill {i}".encode(), f"f{i}.sav", slot=slot).json()["id"] for i in range(n)]


def test_autocleanup_keeps_the_newest(env):
    old = _fill_slot(env, 15)
    r = env.upload(b"new", "new.sav", slot="main", autocleanup=True, autocleanup_limit=10)
    assert r.status_code == 200
    left = [x["id"] for x in env.client.get("/api/saves", params={"slot": "main"}, headers=env.a).json()]
    assert left == [*old[6:], r.json()["id"]]  # 6 removed
    assert len(env.files()) == 10
    _all_downloadable(env)


@pytest.mark.parametrize("limit", [0, -1])
def test_autocleanup_limit_is_clamped_to_one(env, limit):
    _fill_slot(env, 3)
    r = env.upload(b"new", "new.sav", slot="main", autocleanup=True, autocleanup_limit=limit).json()
    assert [x["id"] for x in env.client.get("/api/saves", headers=env.a).json()] == [r["id"]]


def test_autocleanup_limit_clamped_to_the_setting(env):
    env.ctx.settings.max_autocleanup_limit = 2
    _fill_slot(env, 4)
    env.upload(b"new", "new.sav", slot="main", autocleanup=True, autocleanup_limit=50)
    assert count(env.ctx, Save) == 2


def test_autocleanup_default_limit_and_off_by_default(env):
    _fill_slot(env, 11)
    env.upload(b"x", "x.sav", slot="main")
    assert count(env.ctx, Save) == 12  # off by default
    env.upload(b"y", "y.sav", slot="main", autocleanup=True)
    assert count(env.ctx, Save) == 10  # default limit 10


def test_autocleanup_needs_a_slot_and_stays_in_its_slot(env):
    _fill_slot(env, 3, slot="other")
    env.upload(b"a", "a.sav")
    env.upload(b"b", "b.sav", autocleanup=True, autocleanup_limit=1)
    assert count(env.ctx, Save) == 5
    env.upload(b"c", "c.sav", slot="main", autocleanup=True, autocleanup_limit=1)
    assert count(env.ctx, Save) == 6


def test_autocleanup_removes_screenshots_too(env):
    for i in range(3):
        env.upload(f"s{i}".encode(), "game.srm", slot="main", screenshot=("shot.png", f"png{i}".encode()))
    assert count(env.ctx, Screenshot) == 3
    env.upload(b"last", "game.srm", slot="main", autocleanup=True, autocleanup_limit=1, screenshot=("s.png", b"p"))
    assert count(env.ctx, Save) == 1 and count(env.ctx, Screenshot) == 1
    assert len(env.files()) == 2
    save = env.client.get("/api/saves", headers=env.a).json()[0]
    assert save["screenshot"] is not None  # linked by the tagged stem


# --- failures half-way -----------------------------------------------------------------------------
def _boom(*_a, **_k):
    raise RuntimeError("injected failure")


def test_failure_leaves_no_row_and_no_file(env, monkeypatch):
    monkeypatch.setattr(service, "_touch_rom_user", _boom)
    with pytest.raises(RuntimeError):
        service.store_save_stream(
            env.ctx,
            user_id=env.alice.id,
            rom_id=env.rom.id,
            filename="x.sav",
            source=b"data",
            slot="main",
            screenshot=service.stage(env.ctx, b"png", "x.png", label="Screenshot"),
        )
    assert count(env.ctx, Save) == 0 and count(env.ctx, Screenshot) == 0
    assert env.files() == [] and _staging_empty(env)


def test_failure_while_replacing_keeps_the_old_file(env, monkeypatch):
    save = env.upload(b"original", "keep.sav").json()
    monkeypatch.setattr(service, "_touch_rom_user", _boom)
    with pytest.raises(RuntimeError):
        service.store_save_stream(env.ctx, user_id=env.alice.id, rom_id=env.rom.id, filename="keep.sav", source=b"new")
    row = get_save(env.ctx, save["id"])
    assert row.content_hash == save["content_hash"] and row.file_size_bytes == len(b"original")
    assert env.ctx.storages.assets.open(save["full_path"]).read() == b"original"
    assert _staging_empty(env)


def test_failure_during_autocleanup_restores_everything(env, monkeypatch):
    ids = _fill_slot(env, 3)
    before = env.files()
    monkeypatch.setattr(service, "_touch_rom_user", _boom)
    with pytest.raises(RuntimeError):
        service.store_save_stream(
            env.ctx,
            user_id=env.alice.id,
            rom_id=env.rom.id,
            filename="n.sav",
            source=b"n",
            slot="main",
            autocleanup=True,
            autocleanup_limit=1,
        )
    assert [x["id"] for x in env.client.get("/api/saves", headers=env.a).json()] == ids
    assert env.files() == before and _staging_empty(env)


def test_failure_through_http_is_a_500_without_leftovers(env, monkeypatch):
    monkeypatch.setattr(service, "_touch_rom_user", _boom)
    from fastapi.testclient import TestClient

    with TestClient(env.client.app, raise_server_exceptions=False) as c:
        r = c.post("/api/saves", params={"rom_id": env.rom.id}, files={"saveFile": ("x.sav", b"x")}, headers=env.a)
    assert r.status_code == 500
    assert count(env.ctx, Save) == 0 and env.files() == [] and _staging_empty(env)


# --- quota and size ----------------------------------------------------------------------------------
def test_quota(env):
    env.ctx.settings.user_quota_bytes = 20
    assert env.upload(b"x" * 15, "a.sav").status_code == 200
    r = env.upload(b"y" * 10, "b.sav")
    assert r.status_code == 413 and "quota" in r.json()["detail"].lower()
    assert count(env.ctx, Save) == 1 and len(env.files()) == 1 and _staging_empty(env)
    r = env.upload_state(b"z" * 10, "s.state")
    assert r.status_code == 413
    assert env.upload(b"q" * 5, "c.sav").status_code == 200  # exactly at the quota
    assert env.upload(b"r" * 15, "a.sav").status_code == 200  # replacing a file counts the difference
    assert env.upload(b"r" * 16, "a.sav").status_code == 413
    assert env.upload(b"q" * 5, "d.sav", headers=env.b).status_code == 200  # per user


def test_size_limit(env):
    env.ctx.settings.max_asset_upload_bytes = 100
    r = env.upload(b"x" * 101)
    assert r.status_code == 413
    assert r.json()["detail"] == "Save file exceeds the maximum allowed size of 100 bytes"
    r = env.upload(b"x" * 100, screenshot=("s.png", b"p" * 101))
    assert r.status_code == 413
    assert r.json()["detail"] == "Screenshot file exceeds the maximum allowed size of 100 bytes"
    r = env.upload_state(b"x" * 101)
    assert r.status_code == 413 and r.json()["detail"].startswith("State file exceeds")
    # a body far over the limit is refused from its Content-Length, before reading
    r = env.upload(b"x" * 200_000)
    assert r.status_code == 413
    assert r.json()["detail"] == "Request body exceeds the maximum allowed size of 100 bytes"
    assert count(env.ctx, Save) == 0 and env.files() == [] and _staging_empty(env)
    env.ctx.settings.max_asset_upload_bytes = 0  # off
    assert env.upload(b"x" * 200_000).status_code == 200


def test_invalid_content_length(env):
    r = env.client.post(
        "/api/saves", params={"rom_id": env.rom.id}, content=b"", headers={**env.a, "content-length": "abc"}
    )
    assert r.status_code == 400


def test_concurrent_http_uploads_to_one_slot(env, frozen):
    """16 clients POST to the same slot in the same second through HTTP: every one is kept."""
    n = 16
    statuses: list[int] = [0] * n
    barrier = threading.Barrier(n)

    def worker(i: int) -> None:
        barrier.wait()
        r = env.upload(f"http {i}".encode(), "race.sav", slot="main")
        statuses[i] = r.status_code

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * n
    assert count(env.ctx, Save) == n
    _all_downloadable(env)
    assert _staging_empty(env)
