"""/api/heartbeat: unauthenticated server facts (RomM's shape plus romshelf's own block)."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends
from sqlalchemy.orm import Session

from romshelf import __version__
from romshelf.accounts.service import count_users
from romshelf.core.context import AppContext, app_ctx, get_db
from romshelf.core.routing import APIRouter
from romshelf.platforms.models import Platform

router = APIRouter(prefix="/api", tags=["system"])


@router.get("/heartbeat")
def heartbeat(ctx: Annotated[AppContext, Depends(app_ctx)], db: Annotated[Session, Depends(get_db)]) -> dict[str, Any]:
    fs_platforms = list(db.scalars(sa.select(Platform.fs_slug).order_by(Platform.fs_slug)))
    return {
        "SYSTEM": {"VERSION": __version__, "SHOW_SETUP_WIZARD": count_users(db) == 0},
        "ROMSHELF": {
            "VERSION": __version__,
            "DATABASE_ENGINE": ctx.db.engine_name,
            "JOBS_BACKEND": "redis" if ctx.settings.redis_url else "sqlite",
        },
        "METADATA_SOURCES": {"ANY_SOURCE_ENABLED": False},
        "FILESYSTEM": {"FS_PLATFORMS": fs_platforms},
        "EMULATION": {"DISABLE_EMULATOR_JS": True, "DISABLE_RUFFLE_RS": True},
        "FRONTEND": {"DISABLE_USERPASS_LOGIN": False, "DISABLE_LOGS_VIEWER": True},
        "OIDC": {"ENABLED": False, "AUTOLOGIN": False, "PROVIDER": "", "RP_INITIATED_LOGOUT": False},
        "TASKS": {"ENABLE_SCHEDULED_RESCAN": False},
    }
