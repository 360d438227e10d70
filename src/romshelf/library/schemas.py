"""Request and response shapes of the library endpoints (uploads, scans, jobs, RomM tasks)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from romshelf.core.jobs import Job
from romshelf.core.jobs import kind as job_kind
from romshelf.core.schema import Schema, UTCDatetime


class UploadStarted(BaseModel):
    upload_id: str


class ChunkReceived(BaseModel):
    received: int
    total: int


class UploadedFile(Schema):
    id: int
    file_name: str
    file_path: str
    file_size_bytes: int
    category: str | None
    crc_hash: str
    md5_hash: str
    sha1_hash: str
    chd_sha1_hash: str
    headerless_crc_hash: str
    headerless_md5_hash: str
    headerless_sha1_hash: str
    archive_members: list[dict[str, Any]] | None
    header: dict[str, Any] | None
    header_valid: bool | None


class UploadedRom(Schema):
    """The ROM an upload created (RomM answers 201 with no body; clients may ignore this)."""

    id: int
    platform_id: int
    fs_name: str
    fs_path: str
    fs_size_bytes: int
    name: str
    regions: list[str]
    languages: list[str]
    tags: list[str]
    revision: str
    version: str
    crc_hash: str
    md5_hash: str
    sha1_hash: str
    files: list[UploadedFile]


class ScanRequest(BaseModel):
    platforms: list[int | str] = Field(
        default_factory=list, description="Platform ids or folder names (fs_slug) to scan; empty: the whole library"
    )
    full: bool = Field(default=False, description="Re-read every file, not only new and changed ones")


class JobSchema(Schema):
    """A background job and its progress (files, bytes, rate, ETA for scans)."""

    id: str
    kind: str
    title: str
    status: str
    params: dict[str, Any]
    progress: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    user_id: int | None
    worker: str
    created_at: UTCDatetime
    enqueued_at: UTCDatetime | None
    started_at: UTCDatetime | None
    ended_at: UTCDatetime | None
    updated_at: UTCDatetime

    @classmethod
    def of(cls, job: Job) -> JobSchema:
        return cls(
            id=job.id,
            kind=job.kind,
            title=job.title,
            status=job.effective_status,
            params=job.params or {},
            progress=job.progress or {},
            result=job.result,
            error=job.effective_error,
            user_id=job.user_id,
            worker=job.worker,
            created_at=job.created_at,
            enqueued_at=job.enqueued_at,
            started_at=job.started_at,
            ended_at=job.ended_at,
            updated_at=job.updated_at,
        )


# --- RomM's task API ------------------------------------------------------------------------------
class TaskInfo(BaseModel):
    name: str
    type: str
    manual_run: bool
    title: str
    description: str
    enabled: bool
    cron_string: str


class TaskExecution(BaseModel):
    task_name: str
    task_id: str
    status: str
    created_at: str | None
    enqueued_at: str | None


class TaskStatus(TaskExecution):
    started_at: str | None
    ended_at: str | None
    task_type: str
    meta: dict[str, Any]

    @classmethod
    def of(cls, job: Job) -> TaskStatus:
        k = job_kind(job.kind)
        task_type = k.task_type if k else "generic"
        meta: dict[str, Any] = {}
        if task_type == "scan":
            stats = (job.result or (job.progress or {}).get("stats")) or None
            meta["scan_stats"] = _scan_stats(stats) if stats else None
        meta["progress"] = job.progress or {}
        if job.effective_error:
            meta["error"] = job.effective_error
        return cls(
            task_name=job.kind,
            task_id=job.id,
            status=job.effective_status,
            created_at=_iso(job.created_at),
            enqueued_at=_iso(job.enqueued_at),
            started_at=_iso(job.started_at),
            ended_at=_iso(job.ended_at),
            task_type=task_type,
            meta=meta,
        )


def _iso(value: Any) -> str | None:
    from romshelf.core.timeutil import isoformat

    return isoformat(value)


def _scan_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """RomM's ScanStats from romshelf's scan statistics."""
    return {
        "total_platforms": stats.get("total_platforms", 0),
        "total_roms": stats.get("total_roms", 0),
        "scanned_platforms": stats.get("scanned_platforms", 0),
        "new_platforms": stats.get("new_platforms", 0),
        "identified_platforms": 0,
        "scanned_roms": stats.get("scanned_roms", 0),
        "new_roms": stats.get("new_roms", 0),
        "identified_roms": 0,
        "scanned_firmware": 0,
        "new_firmware": 0,
    }
