"""Scans as background jobs: romshelf's /api/scan and /api/jobs, RomM's /api/tasks, the real huey
queue (SQLite and Redis consumers), and ``romshelf scan`` on the command line."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
from factories import count, make_platform
from typer.testing import CliRunner

from romshelf.app import create_app
from romshelf.core import jobs
from romshelf.core.jobs import Job, jobs_of
from romshelf.core.timeutil import utcnow
from romshelf.library import tasks
from romshelf.library.scanner import SCAN_LOCK
from romshelf.roms.models import Rom


@pytest.fixture
def admin(users):
    return users.headers(users.admin())


def test_scan_job_runs_and_reports(client, ctx, library, admin):
    for i in range(3):
        library.add("gb", f"Game {i} (USA).gb", b"x" * (100 + i))
    r = client.post("/api/scan", headers=admin)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["kind"] == "scan" and job["status"] == "finished"  # jobs run inline in tests
    assert job["result"]["new_roms"] == 3
    p = job["progress"]
    assert p["phase"] == "done" and p["files_done"] == p["files_total"] == 3
    assert p["bytes_done"] == p["bytes_total"] == 303
    assert {"rate_bytes_per_s", "eta_seconds", "files_per_s"} <= set(p)
    assert job["started_at"] and job["ended_at"] and job["params"] == {"platforms": [], "full": False}
    assert client.get(f"/api/jobs/{job['id']}", headers=admin).json()["status"] == "finished"
    assert client.get("/api/scan", headers=admin).json()["id"] == job["id"]
    assert [j["id"] for j in client.get("/api/jobs", headers=admin).json()] == [job["id"]]
    assert client.get(f"/api/jobs/{uuid.uuid4()}", headers=admin).status_code == 404
    assert count(ctx, Rom) == 3


def test_scan_request_options(client, ctx, library, admin):
    library.add("gb", "a.gb", b"a")
    library.add("nes", "b.nes", b"b")
    gb = make_platform(ctx, "gb")
    r = client.post("/api/scan", headers=admin, json={"platforms": [gb.id]})
    assert r.json()["result"]["total_platforms"] == 1 and r.json()["params"]["platforms"] == ["gb"]
    r = client.post("/api/scan", headers=admin, json={"platforms": ["nes"], "full": True})
    assert r.json()["result"]["new_roms"] == 1
    assert client.post("/api/scan", headers=admin, json={"platforms": [999]}).status_code == 404
    r = client.post("/api/scan", headers=admin, json={"platforms": ["nothing"]})
    assert r.json()["status"] == "failed" and "No platform folder" in r.json()["error"]
    assert client.get("/api/scan", headers=admin).json()["status"] == "failed"


def test_scan_needs_tasks_run(client, users):
    editor = users.headers(users.editor())
    assert client.post("/api/scan", headers=editor).status_code == 403
    assert client.get("/api/jobs", headers=editor).status_code == 403
    assert client.get("/api/tasks", headers=editor).status_code == 403
    assert client.post("/api/scan").status_code == 401


def test_only_one_scan(client, ctx, library, admin):
    with ctx.db.lock(SCAN_LOCK, timeout=0):
        r = client.post("/api/scan", headers=admin)
    assert r.status_code == 409 and "already running" in r.json()["detail"]
    queued = jobs_of(ctx).create(tasks.SCAN, {})
    r = client.post("/api/scan", headers=admin)
    assert r.status_code == 409 and queued.id in r.json()["detail"]
    r = client.post("/api/tasks/run/scan_library", headers=admin)
    assert r.status_code == 409
    canceled = client.post(f"/api/jobs/{queued.id}/cancel", headers=admin).json()
    assert canceled["status"] == "canceled"
    assert client.post("/api/scan", headers=admin).status_code == 202


def test_stale_job_is_failed_and_does_not_block(client, ctx, admin):
    job = jobs_of(ctx).create(tasks.SCAN, {})
    long_ago = utcnow() - dt.timedelta(hours=1)
    with ctx.db.transaction() as s:
        row = s.get(Job, job.id)
        row.status, row.started_at, row.heartbeat_at = jobs.STARTED, long_ago, long_ago
    got = client.get(f"/api/jobs/{job.id}", headers=admin).json()
    assert got["status"] == "failed" and "stopped responding" in got["error"]
    assert client.post("/api/scan", headers=admin).status_code == 202


def test_romm_task_api(client, ctx, library, admin):
    library.add("gb", "a.gb", b"a")
    listed = client.get("/api/tasks", headers=admin).json()
    assert set(listed) == {"scheduled", "manual", "watcher"}
    names = {t["name"]: t for t in listed["manual"]}
    assert names["scan"]["type"] == "scan" and names["scan"]["manual_run"] is True
    assert "cleanup_uploads" in names
    r = client.post("/api/tasks/run/scan_library", headers=admin)
    assert r.status_code == 200, r.text
    run = r.json()
    assert set(run) == {"task_name", "task_id", "status", "created_at", "enqueued_at"}
    assert run["task_name"] == "scan_library" and run["status"] == "finished"
    st = client.get(f"/api/tasks/{run['task_id']}", headers=admin).json()
    assert st["task_type"] == "scan" and st["status"] == "finished"
    assert st["meta"]["scan_stats"] == {
        "total_platforms": 1,
        "total_roms": 1,
        "scanned_platforms": 1,
        "new_platforms": 1,
        "identified_platforms": 0,
        "scanned_roms": 1,
        "new_roms": 1,
        "identified_roms": 0,
        "scanned_firmware": 0,
        "new_firmware": 0,
    }
    assert st["created_at"].endswith("+00:00")
    r = client.post("/api/tasks/run/cleanup_uploads", headers=admin, json={})
    assert r.json()["status"] == "finished"
    statuses = client.get("/api/tasks/status", headers=admin).json()
    assert {s["task_name"] for s in statuses} == {"scan", "cleanup_uploads"}
    assert client.post("/api/tasks/run/nope", headers=admin).status_code == 404
    assert client.get(f"/api/tasks/{uuid.uuid4()}", headers=admin).status_code == 404


def _wait_for(client, headers, job_id, deadline=60.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        job = client.get(f"/api/jobs/{job_id}", headers=headers).json()
        if job["status"] not in ("queued", "started"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def _real_queue_scan(ctx, users, library):
    library.add("gb", "Queued (USA).gb", b"q" * 1000)
    app = create_app(ctx=ctx)
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        headers = users.headers(users.admin())
        r = client.post("/api/scan", headers=headers)
        assert r.status_code == 202
        assert r.json()["status"] in ("queued", "started", "finished")
        job = _wait_for(client, headers, r.json()["id"])
    assert job["status"] == "finished", job
    assert job["result"]["new_roms"] == 1
    assert job["worker"]
    assert count(ctx, Rom) == 1


def test_real_sqlite_queue_with_consumer_thread(ctx, users, library):
    ctx.settings.jobs_immediate = False
    _real_queue_scan(ctx, users, library)
    assert (ctx.settings.data_dir / "jobs-queue.sqlite3").exists()


def test_real_redis_queue(ctx, users, library):
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    ctx.settings.jobs_immediate = False
    ctx.settings.redis_url = url
    ctx.settings.jobs_queue_name = f"romshelf-test-{uuid.uuid4().hex}"
    try:
        _real_queue_scan(ctx, users, library)
    finally:
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(f"huey.*{ctx.settings.jobs_queue_name}*"):
            client.delete(key)


def test_cli_scan(ctx, library, monkeypatch):
    from romshelf.cli import app as cli

    library.add("gb", "Cli (USA).gb", b"c" * 100)
    library.add("gb", "Folder/disc.bin", b"d" * 100)
    env = {
        "ROMSHELF_DATA_DIR": str(ctx.settings.data_dir),
        "ROMSHELF_DATABASE_URL": ctx.settings.db_url,
        "ROMSHELF_SECRET_KEY": "x" * 40,
    }
    runner = CliRunner()
    r = runner.invoke(cli, ["scan", "--platform", "gb"], env=env)
    assert r.exit_code == 0, r.output
    assert "2 ROMs in 1 platforms: 2 new" in r.output
    assert count(ctx, Rom) == 2
    r = runner.invoke(cli, ["scan", "--full"], env=env)
    assert r.exit_code == 0 and "2 changed" in r.output
    with ctx.db.lock(SCAN_LOCK, timeout=0):
        r = runner.invoke(cli, ["scan"], env=env)
    assert r.exit_code == 1 and "already running" in r.output
    r = runner.invoke(cli, ["scan", "--platform", "nope"], env=env)
    assert r.exit_code == 1 and "No platform folder" in r.output
    # the CLI's scans show up in the API's job list
    assert [j.kind for j in jobs_of(ctx).list()] == ["scan", "scan", "scan"]


def test_running_job_cancel_and_shutdown(ctx):
    """A handler that checks between units of work stops when canceled (API) or on shut-down."""
    queue = jobs_of(ctx)
    steps: list[int] = []

    def handler(run: jobs.JobRun, params: dict) -> dict:
        for i in range(100):
            steps.append(i)
            run.update(force=True, done=i)
            if i == 3 and params.get("cancel"):
                queue.cancel(run.job_id)  # what POST /api/jobs/{id}/cancel does from another request
            if i == 3 and params.get("shutdown"):
                queue.stop_event.set()
            run.check()
        return {"steps": len(steps)}

    jobs.register("test_loop", handler, title="Test loop")
    try:
        job = queue.create("test_loop", {"cancel": True})
        done = queue.execute(job.id)
        assert done.status == "canceled" and done.error == "Canceled"
        assert done.progress["done"] == 4 and len(steps) == 5
        steps.clear()
        job = queue.create("test_loop", {"shutdown": True})
        done = queue.execute(job.id)
        assert done.status == "stopped" and "shut down" in done.error
        queue.stop_event.clear()
        steps.clear()
        job = queue.create("test_loop", {})
        done = queue.execute(job.id)
        assert done.status == "finished" and done.result == {"steps": 100}
        # a finished job is not run twice (e.g. a duplicate delivery from the queue)
        assert queue.execute(job.id).result == {"steps": 100} and len(steps) == 100
    finally:
        jobs._KINDS.pop("test_loop", None)


def test_failing_job_records_the_error(ctx):
    def handler(run: jobs.JobRun, params: dict) -> dict:
        raise RuntimeError("disk on fire")

    jobs.register("test_fail", handler, title="Test fail")
    try:
        queue = jobs_of(ctx)
        done = queue.execute(queue.create("test_fail").id)
        assert done.status == "failed" and done.error == "RuntimeError: disk on fire" and done.ended_at
    finally:
        jobs._KINDS.pop("test_fail", None)


def test_prune_old_jobs(ctx):
    queue = jobs_of(ctx)
    old = queue.create(tasks.CLEANUP_UPLOADS)
    queue.execute(old.id)
    with ctx.db.transaction() as s:
        s.get(Job, old.id).created_at = utcnow() - dt.timedelta(days=30)
    recent = queue.enqueue(tasks.CLEANUP_UPLOADS)
    assert jobs.prune_jobs(ctx) == 1
    assert [j.id for j in queue.list()] == [recent.id]
