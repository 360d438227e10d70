"""Device pairing: an RFC 8628-style device authorization flow that ends in a device-bound
client token.

1. The device calls :func:`start` (open): it gets a secret ``device_code`` to poll with and a
   short ``user_code`` to show (as text or QR).
2. A signed-in user looks the request up (:func:`pending`) and approves it (:func:`approve`,
   which creates or updates the Device) or denies it (:func:`deny`).
3. The device polls :func:`redeem` with its ``device_code``; after approval the first poll gets a
   new ``rmm_`` client token bound to the device, exactly once.

State is one ``device_pairings`` row per request, changed by conditional UPDATEs, so concurrent
approvals, denials and polls on any replica decide exactly once. The row holds a SHA-256 of the
device code and no token: the token is created at redemption, inside the transaction that marks
the row redeemed.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from romshelf.accounts import service as accounts
from romshelf.accounts.models import ClientToken, User
from romshelf.accounts.scopes import parse_scopes, sort_scopes
from romshelf.accounts.security import sha256_hex
from romshelf.config import Settings
from romshelf.core.db import is_unique_violation
from romshelf.core.errors import AppError, BadRequest, Forbidden, Gone, NotFound
from romshelf.core.timeutil import to_utc, utcnow
from romshelf.devices.models import Device, DevicePairing
from romshelf.devices.schemas import DeviceAuthApprovePayload, DeviceAuthInitPayload, SyncMode

log = logging.getLogger("romshelf.devices.pairing")

USER_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: easy to read out
USER_CODE_LENGTH = 8
VERIFICATION_PATH = "/pair/device"

PENDING, APPROVED, DENIED, REDEEMED = "pending", "approved", "denied", "redeemed"


def new_device_code() -> str:
    return secrets.token_hex(32)


def new_user_code() -> str:
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


def normalize_user_code(code: str) -> str:
    """Accept what a person types: any case, with the dashes or spaces a UI may show."""
    return "".join(code.split()).replace("-", "").upper()


@dataclass
class Started:
    device_code: str
    user_code: str
    verification_path: str
    verification_path_complete: str
    expires_in: int
    interval: int


def start(session: Session, settings: Settings, payload: DeviceAuthInitPayload) -> Started:
    """Open a pairing request; also deletes requests that have expired."""
    now = utcnow()
    session.execute(sa.delete(DevicePairing).where(DevicePairing.expires_at <= now))
    session.commit()
    for _attempt in range(5):
        device_code, user_code = new_device_code(), new_user_code()
        session.add(
            DevicePairing(
                device_code_hash=sha256_hex(device_code),
                user_code=user_code,
                status=PENDING,
                client_device_identifier=payload.client_device_identifier,
                name=payload.name,
                client=payload.client,
                platform=payload.platform,
                client_version=payload.client_version,
                requested_scopes=" ".join(payload.requested_scopes),
                poll_interval=settings.device_pairing_interval_seconds,
                created_at=now,
                expires_at=now + dt.timedelta(seconds=settings.device_pairing_ttl_seconds),
            )
        )
        try:
            session.commit()
        except IntegrityError as exc:  # a live user code drawn twice (1 in 8.5e11): draw again
            session.rollback()
            if not is_unique_violation(exc):
                raise
            continue
        log.info("device pairing started", extra={"client": payload.client, "code_prefix": device_code[:8]})
        return Started(
            device_code=device_code,
            user_code=user_code,
            verification_path=VERIFICATION_PATH,
            verification_path_complete=f"{VERIFICATION_PATH}?user_code={user_code}",
            expires_in=settings.device_pairing_ttl_seconds,
            interval=settings.device_pairing_interval_seconds,
        )
    raise AppError("Could not allocate a pairing code, try again", status_code=503)


def _live_by_user_code(session: Session, user_code: str) -> DevicePairing:
    """The unexpired request for a user code and still undecided; 404 if unknown or expired,
    410 if already approved or denied."""
    row = session.scalar(sa.select(DevicePairing).where(DevicePairing.user_code == normalize_user_code(user_code)))
    if row is None or to_utc(row.expires_at) <= utcnow():
        raise NotFound("Unknown or expired code")
    if row.status != PENDING:
        shown = APPROVED if row.status == REDEEMED else row.status
        raise Gone(f"Code already {shown}")
    return row


def allowed_scopes(row: DevicePairing, approver_scopes: frozenset[str]) -> list[str]:
    """What the approver may grant: the scopes the device asked for that the approver holds."""
    return sort_scopes(set(parse_scopes(row.requested_scopes)) & approver_scopes)


def pending(session: Session, user_code: str, approver_scopes: frozenset[str]) -> tuple[DevicePairing, list[str]]:
    row = _live_by_user_code(session, user_code)
    return row, allowed_scopes(row, approver_scopes)


def _decide(session: Session, row: DevicePairing, **values: object) -> None:
    """Move a pending request on; exactly one of several concurrent deciders wins, the others
    get 410 (the transaction is rolled back, so a losing approval leaves nothing behind)."""
    done = session.execute(
        sa.update(DevicePairing)
        .where(DevicePairing.id == row.id, DevicePairing.status == PENDING)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if done != 1:
        session.rollback()
        raise Gone("Code already decided")


def approve(
    session: Session, settings: Settings, user_id: int, approver_scopes: frozenset[str], body: DeviceAuthApprovePayload
) -> Device:
    """Approve a request: create the user's Device for this ``client_device_identifier`` (or
    update the one they already have) and record what the device's token will carry."""
    row = _live_by_user_code(session, body.user_code)
    approved = set(body.approved_scopes)
    if not approved <= set(allowed_scopes(row, approver_scopes)):
        raise Forbidden("Approved scopes exceed what's allowed for this user")
    accounts.parse_expires_in(body.expires_in)  # 400 on a bad value, before anything changes
    tokens = session.scalar(sa.select(sa.func.count()).select_from(ClientToken).where(ClientToken.user_id == user_id))
    if (tokens or 0) >= settings.max_client_tokens_per_user:
        raise BadRequest(f"Maximum of {settings.max_client_tokens_per_user} tokens per user reached")
    now = utcnow()
    name = (body.device_name or "").strip() or row.name
    device = session.scalar(
        sa.select(Device)
        .where(Device.user_id == user_id, Device.client_device_identifier == row.client_device_identifier)
        .order_by(Device.created_at, Device.id)
        .limit(1)
    )
    if device is None:
        device = Device(
            id=str(uuid.uuid4()),
            user_id=user_id,
            name=name,
            client=row.client,
            platform=row.platform,
            client_version=row.client_version,
            client_device_identifier=row.client_device_identifier,
            sync_mode=SyncMode.API.value,
            sync_enabled=True,
            last_seen=now,
        )
        session.add(device)
    else:
        device.name = name
        device.last_seen = now
        if row.client_version is not None:
            device.client_version = row.client_version
    session.flush()
    _decide(
        session,
        row,
        status=APPROVED,
        approved_by_id=user_id,
        device_id=device.id,
        approved_scopes=" ".join(sort_scopes(approved)),
        token_name=name,
        token_expires_in=body.expires_in,
    )
    session.commit()
    log.info("device pairing approved", extra={"user_id": user_id, "device_id": device.id})
    return device


def deny(session: Session, user_id: int, user_code: str) -> None:
    row = _live_by_user_code(session, user_code)
    _decide(session, row, status=DENIED, approved_by_id=user_id)
    session.commit()


class PollError(BadRequest):
    """RFC 8628 §3.5 polling answers: 400 with ``detail`` one of the error codes."""


@dataclass
class Redeemed:
    access_token: str
    device_id: str
    scopes: list[str]
    expires_at: dt.datetime | None


def redeem(session: Session, settings: Settings, device_code: str) -> Redeemed:
    """Answer a device's poll: ``authorization_pending`` / ``slow_down`` while undecided,
    ``access_denied`` after a denial, ``expired_token`` once expired (or after the token was
    issued); after approval, a new device-bound client token, once."""
    row = session.scalar(sa.select(DevicePairing).where(DevicePairing.device_code_hash == sha256_hex(device_code)))
    now = utcnow()
    if row is None or to_utc(row.expires_at) <= now or row.status == REDEEMED:
        raise PollError("expired_token")
    if row.status == DENIED:
        raise PollError("access_denied")
    if row.status == PENDING:
        last = row.last_polled_at
        session.execute(
            sa.update(DevicePairing)
            .where(DevicePairing.id == row.id)
            .values(last_polled_at=now)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        if last is not None and (now - to_utc(last)).total_seconds() < row.poll_interval:
            raise PollError("slow_down")
        raise PollError("authorization_pending")
    # Approved: claim it (one poll wins), then create the token in the same transaction.
    claimed = session.execute(
        sa.update(DevicePairing)
        .where(DevicePairing.id == row.id, DevicePairing.status == APPROVED)
        .values(status=REDEEMED, last_polled_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        session.rollback()
        raise PollError("expired_token")
    user = session.get(User, row.approved_by_id) if row.approved_by_id is not None else None
    if user is None or not user.enabled or row.device_id is None:
        # The approver was disabled, or the device deleted, before the device came to collect.
        session.rollback()
        raise PollError("access_denied")
    scopes = parse_scopes(row.approved_scopes)
    try:
        token, raw = accounts.create_client_token(
            session,
            settings,
            user,
            name=row.token_name or row.name,
            scopes=scopes,
            expires_in=row.token_expires_in,
            device_id=row.device_id,
        )  # commits the claim and the token together
    except AppError:  # the user lost a scope or reached the token limit since approving
        session.rollback()
        raise PollError("access_denied") from None
    log.info("device pairing redeemed", extra={"device_id": row.device_id, "token_id": token.id})
    return Redeemed(access_token=raw, device_id=row.device_id, scopes=scopes, expires_at=token.expires_at)
