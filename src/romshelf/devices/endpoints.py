"""HTTP surface of the devices domain: ``/api/devices`` (register, list, get, update, delete)
and ``/api/auth/device`` (pairing: a device gets a device-bound client token after a user
approves it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response, status
from sqlalchemy.orm import Session

from romshelf.accounts.dependencies import Principal, require
from romshelf.accounts.scopes import Scope, parse_scopes
from romshelf.core.context import AppContext, app_ctx, get_db
from romshelf.core.routing import APIRouter
from romshelf.devices import pairing, service
from romshelf.devices.ratelimit import RateLimiter, client_ip
from romshelf.devices.schemas import (
    DeviceAuthApprovePayload,
    DeviceAuthApproveResponse,
    DeviceAuthDenyPayload,
    DeviceAuthInitPayload,
    DeviceAuthInitResponse,
    DeviceAuthPendingSchema,
    DeviceAuthTokenPayload,
    DeviceAuthTokenResponse,
    DeviceCreatePayload,
    DeviceCreateResponse,
    DeviceSchema,
    DeviceUpdatePayload,
)

router = APIRouter(tags=["devices"])  # mounted by the app; holds the two below
devices_router = APIRouter(prefix="/api/devices", tags=["devices"])
pairing_router = APIRouter(prefix="/api/auth/device", tags=["device-auth"])

Db = Annotated[Session, Depends(get_db)]
Ctx = Annotated[AppContext, Depends(app_ctx)]


@devices_router.post(
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


@devices_router.get("", response_model=list[DeviceSchema])
def list_devices(db: Db, principal: Principal = require(Scope.DEVICES_READ)) -> list[DeviceSchema]:
    """The caller's devices, oldest first."""
    return [DeviceSchema.model_validate(d) for d in service.list_devices(db, principal.user_id)]


@devices_router.get("/{device_id}", response_model=DeviceSchema)
def get_device(device_id: str, db: Db, principal: Principal = require(Scope.DEVICES_READ)) -> DeviceSchema:
    return DeviceSchema.model_validate(service.get_owned_device(db, principal.user_id, device_id))


@devices_router.put("/{device_id}", response_model=DeviceSchema)
def update_device(
    device_id: str, payload: DeviceUpdatePayload, db: Db, principal: Principal = require(Scope.DEVICES_WRITE)
) -> DeviceSchema:
    """Change the fields sent (others stay). A ``sync_config`` secret sent back as
    ``"********"`` keeps the stored value."""
    device = service.get_owned_device(db, principal.user_id, device_id)
    device = service.update_device(db, device, payload.model_dump(exclude_unset=True))
    return DeviceSchema.model_validate(device)


@devices_router.delete("/{device_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_device(device_id: str, db: Db, principal: Principal = require(Scope.DEVICES_WRITE)) -> Response:
    service.delete_device(db, service.get_owned_device(db, principal.user_id, device_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- pairing ------------------------------------------------------------------------------------


def _limiters(ctx: AppContext) -> tuple[RateLimiter, RateLimiter]:
    limiters = ctx.extras.get("devices.pairing_limits")
    if limiters is None:
        settings = ctx.settings
        limiters = ctx.extras["devices.pairing_limits"] = (
            RateLimiter(settings.device_pairing_init_per_minute),
            RateLimiter(settings.device_pairing_poll_per_minute),
        )
    return limiters  # type: ignore[no-any-return]


@pairing_router.post("/init", response_model=DeviceAuthInitResponse, status_code=status.HTTP_201_CREATED)
def pairing_init(request: Request, payload: DeviceAuthInitPayload, ctx: Ctx, db: Db) -> DeviceAuthInitResponse:
    """Open (no credentials): start pairing. Show ``user_code`` (or a QR of
    ``verification_path_complete``) to the user, then poll ``/token`` with ``device_code`` every
    ``interval`` seconds until approved, denied or ``expires_in`` has passed. Limited per client IP
    (``ROMSHELF_DEVICE_PAIRING_INIT_PER_MINUTE``, default 10/min, per process): 429 over it."""
    _limiters(ctx)[0].hit(client_ip(request))
    started = pairing.start(db, ctx.settings, payload)
    return DeviceAuthInitResponse(**vars(started))


@pairing_router.get("/pending/{user_code}", response_model=DeviceAuthPendingSchema)
def pairing_pending(user_code: str, db: Db, principal: Principal = require(Scope.ME_READ)) -> DeviceAuthPendingSchema:
    """What a device asked for, for the approval screen; ``allowed_scopes`` are the requested
    scopes the caller may grant. 404 unknown or expired code, 410 already decided."""
    row, allowed = pairing.pending(db, user_code, principal.scopes)
    return DeviceAuthPendingSchema(
        client_device_identifier=row.client_device_identifier,
        name=row.name,
        client=row.client,
        platform=row.platform,
        client_version=row.client_version,
        requested_scopes=sorted(parse_scopes(row.requested_scopes)),
        allowed_scopes=allowed,
        expires_at=row.expires_at,
    )


@pairing_router.post("/approve", response_model=DeviceAuthApproveResponse)
def pairing_approve(
    payload: DeviceAuthApprovePayload, ctx: Ctx, db: Db, principal: Principal = require(Scope.ME_WRITE)
) -> DeviceAuthApproveResponse:
    """Approve a pairing: the caller's Device for the request's ``client_device_identifier`` is
    created (or renamed and touched), and the device's next poll gets a client token bound to
    it with ``approved_scopes`` (each must be requested by the device and held by the caller,
    else 403), expiring after ``expires_in`` (30d, 90d, 1y, never/null). 404 unknown or expired
    code, 410 already decided."""
    device = pairing.approve(db, ctx.settings, principal.user_id, principal.scopes, payload)
    return DeviceAuthApproveResponse(device_id=device.id, device_name=device.name)


@pairing_router.post("/deny")
def pairing_deny(payload: DeviceAuthDenyPayload, db: Db, principal: Principal = require(Scope.ME_WRITE)) -> None:
    """Deny a pairing: the device's next poll gets ``access_denied``."""
    pairing.deny(db, principal.user_id, payload.user_code)


@pairing_router.post("/token", response_model=DeviceAuthTokenResponse)
def pairing_token(request: Request, payload: DeviceAuthTokenPayload, ctx: Ctx, db: Db) -> DeviceAuthTokenResponse:
    """Open (no credentials): poll a pairing. 400 with ``detail`` ``authorization_pending``
    (ask again after ``interval``), ``slow_down`` (asked sooner than ``interval``),
    ``access_denied`` or ``expired_token``. Once approved, the first poll gets the token
    (``access_token``, an ``rmm_`` client token bound to ``device_id``), and only that one.
    Limited per client IP (``ROMSHELF_DEVICE_PAIRING_POLL_PER_MINUTE``, default 60/min)."""
    _limiters(ctx)[1].hit(client_ip(request))
    issued = pairing.redeem(db, ctx.settings, payload.device_code)
    return DeviceAuthTokenResponse(
        access_token=issued.access_token, device_id=issued.device_id, scopes=issued.scopes, expires_at=issued.expires_at
    )


router.include_router(devices_router)
router.include_router(pairing_router)
