"""Background jobs: huey moves them, our own ``jobs`` table says how they are doing.

* Queue: huey. Without configuration it keeps its queue in SQLite in the data dir and every
  ``romshelf serve`` process runs consumer thread(s) itself (``jobs_workers``, default 1): one
  process, nothing to install. With ``ROMSHELF_REDIS_URL`` the queue lives in Redis, so any
  number of replicas and ``romshelf worker`` processes share it.
* Status: each job is a row in ``jobs`` (kind, params, status, progress, result, error,
  timestamps, heartbeat), written by whoever runs it and read by the API from any replica.
  A started job whose heartbeat is older than :data:`STALE_AFTER` is reported as failed (its
  worker died).
* Tests set ``jobs_immediate``: jobs run inline, synchronously, in the caller's thread.

Domains register what a job kind does with :func:`register` (a handler taking a :class:`JobRun`
and the job's params, returning a JSON-able result) and periodic housekeeping with
:func:`register_housekeeping`. Nothing here imports a domain.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from romshelf.core.db import Base, TimestampMixin, UTCDateTime
from romshelf.core.errors import AppError, NotFound
from romshelf.core.timeutil import utcnow

if TYPE_CHECKING:
    from huey import Huey

    from romshelf.core.context import AppContext

log = logging.getLogger("romshelf.jobs")

QUEUED = "queued"
STARTED = "started"
FINISHED = "finished"
FAILED = "failed"
CANCELED = "canceled"
STOPPED = "stopped"  # the process running it shut down; run it again
ACTIVE = (QUEUED, STARTED)
STALE_AFTER = dt.timedelta(minutes=10)
PROGRESS_INTERVAL = 0.5  # seconds between progress writes
HOUSEKEEPING_MINUTES = 15


def _json_dict() -> dict[str, Any]:
    return {}


class Job(TimestampMixin, Base):
    __tablename__ = "jobs"
    __table_args__ = (sa.Index("ix_jobs_kind_status", "kind", "status"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(50))
    title: Mapped[str] = mapped_column(sa.String(200), default="")
    status: Mapped[str] = mapped_column(sa.String(20), default=QUEUED)
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=_json_dict)
    progress: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=_json_dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    error: Mapped[str | None] = mapped_column(sa.Text)
    user_id: Mapped[int | None] = mapped_column()
    worker: Mapped[str] = mapped_column(sa.String(200), default="")
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    enqueued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    @property
    def is_stale(self) -> bool:
        beat = self.heartbeat_at or self.started_at
        return self.status == STARTED and beat is not None and utcnow() - beat > STALE_AFTER

    @property
    def effective_status(self) -> str:
        return FAILED if self.is_stale else self.status

    @property
    def effective_error(self) -> str | None:
        if self.is_stale:
            return f"The worker running this job stopped responding (last heartbeat {self.heartbeat_at})"
        return self.error


class JobCanceled(Exception):
    """Raised inside a handler (by :meth:`JobRun.check`) when the job should stop now."""


@dataclass(frozen=True)
class JobKind:
    name: str
    title: str
    handler: Callable[[JobRun, dict[str, Any]], dict[str, Any] | None]
    description: str = ""
    task_type: str = "generic"  # RomM's TaskType: scan | cleanup | ... | generic


_KINDS: dict[str, JobKind] = {}
_HOUSEKEEPING: list[Callable[[AppContext], None]] = []


def register(
    name: str,
    handler: Callable[[JobRun, dict[str, Any]], dict[str, Any] | None],
    *,
    title: str,
    description: str = "",
    task_type: str = "generic",
) -> None:
    _KINDS[name] = JobKind(name, title, handler, description, task_type)


def register_housekeeping(fn: Callable[[AppContext], None]) -> None:
    """Run ``fn(ctx)`` periodically (every few minutes) by the job consumers, and at start-up."""
    if fn not in _HOUSEKEEPING:
        _HOUSEKEEPING.append(fn)


def kinds() -> dict[str, JobKind]:
    return dict(_KINDS)


def kind(name: str) -> JobKind | None:
    return _KINDS.get(name)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"


class JobRun:
    """A running job as its handler sees it: report progress, notice cancellation."""

    def __init__(
        self,
        ctx: AppContext,
        job_id: str,
        params: dict[str, Any],
        stop: threading.Event,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.job_id = job_id
        self.params = params
        self._stop = stop
        self._on_progress = on_progress
        self.progress: dict[str, Any] = {}
        self._last_write = 0.0
        self.cancel_requested = False

    @property
    def should_stop(self) -> bool:
        return self.cancel_requested or self._stop.is_set()

    def check(self) -> None:
        """Raise :class:`JobCanceled` if the job was canceled or the process is shutting down."""
        if self.should_stop:
            raise JobCanceled()

    def update(self, *, force: bool = False, **fields: Any) -> None:
        """Merge ``fields`` into the progress; written (with a heartbeat) at most every 0.5 s."""
        self.progress.update(fields)
        if self._on_progress is not None:
            self._on_progress(self.progress)
        now = time.monotonic()
        if not force and now - self._last_write < PROGRESS_INTERVAL:
            return
        self._last_write = now
        self.flush()

    def flush(self) -> None:
        with self.ctx.db.transaction() as s:
            s.execute(
                sa.update(Job)
                .where(Job.id == self.job_id)
                .values(progress=dict(self.progress), heartbeat_at=utcnow(), updated_at=utcnow())
            )
            flag = s.scalar(sa.select(Job.cancel_requested).where(Job.id == self.job_id))
        if flag:
            self.cancel_requested = True


def _import_huey(*, need_redis: bool, need_psycopg: bool) -> None:
    """Import huey without the client libraries it merely probes for.

    ``huey.storage`` tries ``import redis`` and ``import psycopg`` at import time for its optional
    back-ends; in the embedded set-up (SQLite queue, SQLite database) neither is used, and the two
    cost ~13 MB of resident memory in every server process. They are hidden for the duration of
    that import only; if a Redis queue is wanted later in the same process, the Redis names
    ``huey.storage`` looked for are filled in then.
    """
    import sys

    storage = sys.modules.get("huey.storage")
    if storage is not None:
        if need_redis and storage.Redis is None:
            import redis
            import redis.exceptions

            storage.ConnectionPool, storage.Redis = redis.ConnectionPool, redis.Redis
            storage.ConnectionError = redis.exceptions.ConnectionError
            storage.TimeoutError = redis.exceptions.TimeoutError
            storage.RedisStorage.redis_client = redis.Redis  # bound at class definition
        return
    hidden = [
        m for m, needed in (("redis", need_redis), ("psycopg", need_psycopg)) if not needed and m not in sys.modules
    ]
    for m in hidden:
        sys.modules[m] = None  # type: ignore[assignment]  # makes "import m" raise ImportError
    try:
        import huey  # noqa: F401
    finally:
        for m in hidden:
            if sys.modules.get(m, ...) is None:
                del sys.modules[m]


class JobQueue:
    """The job queue of one AppContext (``jobs_of(ctx)``)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.stop_event = threading.Event()
        self.huey = self._make_huey()
        self._run_task = self.huey.task(name="romshelf.run_job")(self._run_job)
        from huey import crontab

        self.huey.periodic_task(crontab(minute=f"*/{HOUSEKEEPING_MINUTES}"), name="romshelf.housekeeping")(
            self._housekeeping
        )
        self._consumer: Any = None

    def _make_huey(self) -> Huey:
        _import_huey(need_redis=bool(self.ctx.settings.redis_url), need_psycopg=self.ctx.db.engine_name == "postgresql")
        from huey import MemoryHuey, RedisHuey, SqliteHuey

        s = self.ctx.settings
        name = s.jobs_queue_name
        if s.jobs_immediate:
            return MemoryHuey(name, immediate=True)
        if s.redis_url:
            return RedisHuey(name, url=s.redis_url)
        s.data_dir.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(name, filename=str(s.data_dir / "jobs-queue.sqlite3"))

    # --- creating ------------------------------------------------------------------------------
    def create(self, kind_name: str, params: dict[str, Any] | None = None, *, user_id: int | None = None) -> Job:
        """A job row in state ``queued`` (not yet sent to the queue)."""
        k = _KINDS.get(kind_name)
        if k is None:
            raise NotFound(f"Task '{kind_name}' not found")
        now = utcnow()
        job = Job(
            id=str(uuid.uuid4()),
            kind=k.name,
            title=k.title,
            status=QUEUED,
            params=params or {},
            progress={},
            user_id=user_id,
            enqueued_at=now,
            created_at=now,
            updated_at=now,
        )
        with self.ctx.db.transaction() as s:
            s.add(job)
        return job

    def send(self, job: Job) -> None:
        """Hand a created job to the queue (runs inline when ``jobs_immediate``)."""
        self._run_task(job.id)

    def enqueue(self, kind_name: str, params: dict[str, Any] | None = None, *, user_id: int | None = None) -> Job:
        job = self.create(kind_name, params, user_id=user_id)
        self.send(job)
        return self.get(job.id)

    # --- reading ---------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        with self.ctx.db.read() as s:
            job = s.get(Job, job_id)
        if job is None:
            raise NotFound(f"Task with id '{job_id}' not found")
        return job

    def list(self, *, kind_name: str | None = None, limit: int = 100) -> list[Job]:
        q = sa.select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit)
        if kind_name:
            q = q.where(Job.kind == kind_name)
        with self.ctx.db.read() as s:
            return list(s.scalars(q))

    def active(self, kind_name: str) -> Job | None:
        """A queued or running (not stale) job of this kind, if any."""
        with self.ctx.db.read() as s:
            jobs = s.scalars(
                sa.select(Job).where(Job.kind == kind_name, Job.status.in_(ACTIVE)).order_by(Job.created_at)
            ).all()
        for job in jobs:
            if not job.is_stale:
                return job
        return None

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued job at once; ask a running one to stop at its next check."""
        with self.ctx.db.transaction() as s:
            job = s.get(Job, job_id)
            if job is None:
                raise NotFound(f"Task with id '{job_id}' not found")
            if job.status == QUEUED:
                job.status = CANCELED
                job.ended_at = utcnow()
            elif job.status == STARTED:
                job.cancel_requested = True
        return self.get(job_id)

    # --- running ---------------------------------------------------------------------------------
    def _run_job(self, job_id: str) -> None:
        self.execute(job_id)

    def execute(self, job_id: str, on_progress: Callable[[dict[str, Any]], None] | None = None) -> Job:
        """Run a queued job here and now, recording its status, progress and outcome."""
        now = utcnow()
        with self.ctx.db.transaction() as s:
            claimed = s.execute(
                sa.update(Job)
                .where(Job.id == job_id, Job.status == QUEUED)
                .values(status=STARTED, started_at=now, heartbeat_at=now, updated_at=now, worker=worker_name()[:200])
            ).rowcount
            job = s.get(Job, job_id)
        if job is None:
            log.warning("job %s vanished before it ran", job_id)
            raise NotFound(f"Task with id '{job_id}' not found")
        if not claimed:
            return job  # canceled while queued, or run by someone else already
        k = _KINDS.get(job.kind)
        run = JobRun(self.ctx, job_id, dict(job.params or {}), self.stop_event, on_progress)
        status, result, error = FINISHED, None, None
        try:
            if k is None:
                raise AppError(f"No handler for job kind {job.kind!r} in this process")
            result = k.handler(run, dict(job.params or {}))
        except JobCanceled:
            status = CANCELED if run.cancel_requested else STOPPED
            error = "Canceled" if status == CANCELED else "Stopped: the server shut down while it ran"
        except AppError as e:
            status, error = FAILED, str(e.detail)
        except Exception as e:
            log.exception("job %s (%s) failed", job_id, job.kind)
            status, error = FAILED, f"{type(e).__name__}: {e}"
        end = utcnow()
        with self.ctx.db.transaction() as s:
            s.execute(
                sa.update(Job)
                .where(Job.id == job_id)
                .values(
                    status=status,
                    result=result,
                    error=error,
                    progress=dict(run.progress),
                    ended_at=end,
                    heartbeat_at=end,
                    updated_at=end,
                )
            )
        log.info("job %s (%s) %s", job_id, job.kind, status, extra={"error": error} if error else None)
        return self.get(job_id)

    def _housekeeping(self) -> None:
        run_housekeeping(self.ctx)

    # --- consumers -------------------------------------------------------------------------------
    def consumer(self, workers: int = 1, *, embedded: bool = False) -> Any:
        from huey.consumer import Consumer

        stop_event = self.stop_event

        class _Consumer(Consumer):  # type: ignore[misc]
            def _set_signal_handlers(self) -> None:
                if not embedded:
                    super()._set_signal_handlers()

            def stop(self, graceful: bool = False) -> None:
                stop_event.set()  # running jobs stop at their next check
                super().stop(graceful=graceful)

        return _Consumer(
            self.huey,
            workers=workers,
            periodic=True,
            worker_type="thread",
            initial_delay=0.1,
            backoff=1.15,
            max_delay=1.0,
            check_worker_health=not embedded,
            shutdown_timeout=15,
        )

    def start_consumer(self, workers: int = 1) -> None:
        """Consumer threads in this process (``romshelf serve``); no signal handlers taken."""
        if self._consumer is not None or self.ctx.settings.jobs_immediate or workers < 1:
            return
        self.stop_event.clear()
        self._consumer = self.consumer(workers, embedded=True)
        self._consumer.start()

    def stop_consumer(self) -> None:
        if self._consumer is None:
            return
        self._consumer.stop(graceful=True)
        self._consumer = None


def jobs_of(ctx: AppContext) -> JobQueue:
    q = ctx.extras.get("jobs")
    if q is None:
        q = ctx.extras["jobs"] = JobQueue(ctx)
    return q  # type: ignore[no-any-return]


def run_housekeeping(ctx: AppContext) -> None:
    for fn in list(_HOUSEKEEPING):
        try:
            fn(ctx)
        except Exception:
            log.exception("housekeeping %s failed", getattr(fn, "__name__", fn))


def prune_jobs(ctx: AppContext, keep_days: int = 14) -> int:
    """Forget finished jobs older than ``keep_days``."""
    cutoff = utcnow() - dt.timedelta(days=keep_days)
    with ctx.db.transaction() as s:
        return s.execute(  # type: ignore[attr-defined, no-any-return]
            sa.delete(Job).where(Job.status.not_in(ACTIVE), Job.created_at < cutoff)
        ).rowcount


register_housekeeping(prune_jobs)
