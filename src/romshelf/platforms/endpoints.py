"""/api/platforms"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Response, status
from sqlalchemy.orm import Session

from romshelf.accounts.dependencies import Principal, require
from romshelf.accounts.scopes import Scope
from romshelf.core.context import get_db
from romshelf.core.routing import APIRouter
from romshelf.platforms import catalog, service
from romshelf.platforms.models import Platform
from romshelf.platforms.schemas import PlatformCreate, PlatformSchema, PlatformUpdate, SupportedPlatformSchema

router = APIRouter(prefix="/api/platforms", tags=["platforms"])
Db = Annotated[Session, Depends(get_db)]


@router.get("", response_model=list[PlatformSchema])
def get_platforms(db: Db, _: Principal = require(Scope.PLATFORMS_READ)) -> list[PlatformSchema]:
    return [PlatformSchema.of(p, st) for p, st in service.list_platforms(db)]


@router.get("/identifiers", response_model=list[int])
def get_platform_identifiers(db: Db, _: Principal = require(Scope.PLATFORMS_READ)) -> list[int]:
    return list(db.scalars(sa.select(Platform.id).order_by(Platform.name, Platform.id)))


@router.get("/supported", response_model=list[SupportedPlatformSchema])
def get_supported_platforms(_: Principal = require(Scope.PLATFORMS_READ)) -> list[SupportedPlatformSchema]:
    """Every platform slug romshelf knows, with its display name (folder names may also use aliases)."""
    return [
        SupportedPlatformSchema(
            slug=p.slug,
            name=p.name,
            category=p.category,
            family_name=p.family,
            generation=p.generation,
            playable=p.slug in catalog.PLAYABLE_SLUGS,
        )
        for p in sorted(catalog.PLATFORMS, key=lambda p: p.name.lower())
    ]


@router.post("", response_model=PlatformSchema, status_code=status.HTTP_201_CREATED)
def add_platform(payload: PlatformCreate, db: Db, _: Principal = require(Scope.PLATFORMS_WRITE)) -> PlatformSchema:
    platform = service.get_or_create(db, payload.fs_slug)
    db.commit()
    return PlatformSchema.of(platform, service.stats(db, [platform.id]).get(platform.id, service.PlatformStats()))


@router.get("/{id}", response_model=PlatformSchema)
def get_platform(id: int, db: Db, _: Principal = require(Scope.PLATFORMS_READ)) -> PlatformSchema:
    platform = service.get(db, id)
    return PlatformSchema.of(platform, service.stats(db, [id]).get(id, service.PlatformStats()))


@router.put("/{id}", response_model=PlatformSchema)
def update_platform(
    id: int, payload: PlatformUpdate, db: Db, _: Principal = require(Scope.PLATFORMS_WRITE)
) -> PlatformSchema:
    platform = service.get(db, id)
    if payload.custom_name is not None:
        platform.custom_name = payload.custom_name.strip()
    if payload.description is not None:
        platform.description = payload.description
    db.commit()
    return PlatformSchema.of(platform, service.stats(db, [id]).get(id, service.PlatformStats()))


@router.delete("/{id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_platform(id: int, db: Db, _: Principal = require(Scope.PLATFORMS_WRITE)) -> Response:
    """Remove a platform and its ROM rows from the database; files on disk are left alone."""
    db.delete(service.get(db, id))
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
