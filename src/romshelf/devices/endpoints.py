"""HTTP surface of the devices domain: ``/api/devices`` (register, list, get, update, delete)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Response, status
from sqlalchemy.orm import Session

from romshelf.accounts.dependencies import Principal, require
from romshelf.accounts.scopes import Scope
from romshelf.core.context import AppContext, get_ctx, get_db
from romshelf.core.routing import APIRouter
from romshelf.devices import service
from romshelf.devices.schemas import (
    DeviceCreatePayload,
    DeviceCreateResponse,
    DeviceSchema,
    DeviceUpdatePayload,
)

router = APIRouter(prefix="/api/devices", tags=["devices"])

Db = Annotated[Session, Depends(get_db)]
Ctx = Annotated[AppContext, Depends(get_ctx)]


@router.post(
    "",
    response_model=DeviceCreateResponse,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": DeviceCreateResponse, "description": "An existing device with this fingerprint"}},
)
def register_device(
    response: Response,
    ctx: Ctx,
    db: Db,
    payload: DeviceCreatePayload | None = None,
    principal: Principal = require(Scope.DEVICES_WRITE),
) -> DeviceCreateResponse:
    """Register a device (201), or return the caller's device with the same fingerprint (200):
    same ``mac_address``, else same ``hostname`` and ``platform``. ``allow_existing=false`` makes a
    match a 409 (``detail.error == "device_exists"``, with its ``device_id``);
    ``allow_duplicate=true`` always registers a new device; ``reset_syncs=true`` clears the
    matched device's save sync records."""
    payload = payload or DeviceCreatePayload()
    # One registration per user at a time, on every replica: a client retrying in parallel
    # gets the device the first request made instead of a twin.
    with ctx.db.lock(f"devices:register:{principal.user_id}", timeout=10):
        device, created = service.register_device(db, principal.user_id, payload)
    if not created:
        response.status_code = status.HTTP_200_OK
    return DeviceCreateResponse(device_id=device.id, name=device.name, created_at=device.created_at)


@router.get("", response_model=list[DeviceSchema])
def list_devices(db: Db, principal: Principal = require(Scope.DEVICES_READ)) -> list[DeviceSchema]:
    """The caller's devices, oldest first."""
    return [DeviceSchema.model_validate(d) for d in service.list_devices(db, principal.user_id)]


@router.get("/{device_id}", response_model=DeviceSchema)
def get_device(device_id: str, db: Db, principal: Principal = require(Scope.DEVICES_READ)) -> DeviceSchema:
    return DeviceSchema.model_validate(service.get_owned_device(db, principal.user_id, device_id))


@router.put("/{device_id}", response_model=DeviceSchema)
def update_device(
    device_id: str, payload: DeviceUpdatePayload, db: Db, principal: Principal = require(Scope.DEVICES_WRITE)
) -> DeviceSchema:
    """Change the fields sent (others stay). A ``sync_config`` secret sent back as
    ``"********"`` keeps the stored value."""
    device = service.get_owned_device(db, principal.user_id, device_id)
    device = service.update_device(db, device, payload.model_dump(exclude_unset=True))
    return DeviceSchema.model_validate(device)


@router.delete("/{device_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_device(device_id: str, db: Db, principal: Principal = require(Scope.DEVICES_WRITE)) -> Response:
    service.delete_device(db, service.get_owned_device(db, principal.user_id, device_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
