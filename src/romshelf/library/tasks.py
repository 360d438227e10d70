"""The library's background jobs: scans, and upload housekeeping."""

from __future__ import annotations

from typing import Any

from romshelf.core import jobs
from romshelf.core.errors import BadRequest
from romshelf.library import scanner, uploads

SCAN = "scan"
CLEANUP_UPLOADS = "cleanup_uploads"
# RomM's task API names its library scan task this way; both names run the same job.
ALIASES = {"scan_library": SCAN}


def _scan(run: jobs.JobRun, params: dict[str, Any]) -> dict[str, Any]:
    platforms = params.get("platforms") or None
    if platforms is not None and not (isinstance(platforms, list) and all(isinstance(p, str) for p in platforms)):
        raise BadRequest("platforms must be a list of platform folder names")
    stats = scanner.scan(
        run.ctx,
        platforms=platforms,
        full=bool(params.get("full", False)),
        report=lambda progress: run.update(**progress),
        check=run.check,
    )
    return stats.as_dict()


def _cleanup_uploads(run: jobs.JobRun, params: dict[str, Any]) -> dict[str, Any]:
    return {"removed_sessions": uploads.cleanup_expired(run.ctx)}


jobs.register(
    SCAN,
    _scan,
    title="Scan library",
    description="Find new, changed, renamed and missing ROMs in the library folder (params: platforms, full)",
    task_type="scan",
)
jobs.register(
    CLEANUP_UPLOADS,
    _cleanup_uploads,
    title="Clean up uploads",
    description="Remove expired upload sessions and their chunks",
    task_type="cleanup",
)
jobs.register_housekeeping(uploads.cleanup_expired)
