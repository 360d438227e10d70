"""The /v1 workspace rules: receive a ROM, keep its bytes once, one workspace ROM per user,
ETags, deletion, open sign-up tokens, and the optional copy into the /api library.

No HTTP here: the endpoints, the CLI and the tests call these functions with the app context.

Storage: every distinct body is kept once in the assets store at ``pkmnapi/rom_data/<sha256>``
(see :mod:`romshelf.pkmnapi.models` for why SHA-256 and not MD5). An upload streams into a
private file under ``pkmnapi/incoming/`` while it is hashed; once the header checks out, the
file is renamed to its content address (or dropped when that content is already stored) and the
rows are written. Placing or removing a content-addressed file and its row happens under one
named lock (all replicas), so a delete that frees the last reference can never remove a file
that a concurrent upload of the same bytes has just decided to reuse. ROM bytes are never served
back through /v1.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import math
import re
import secrets
import string
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from romshelf.accounts.dependencies import Principal
from romshelf.accounts.models import ClientToken, User
from romshelf.accounts.scopes import Role, Scope
from romshelf.accounts.security import CLIENT_TOKEN_PREFIX, sha256_hex
from romshelf.config import Settings
from romshelf.core.context import AppContext
from romshelf.core.db import LockTimeout, is_unique_violation
from romshelf.core.paths import UnsafePath, sanitize_filename
from romshelf.core.storage import AtomicWriter, FileExists, Storage
from romshelf.core.timeutil import to_utc, utcnow
from romshelf.library import service as library_service
from romshelf.pkmnapi import gameboy
from romshelf.pkmnapi.errors import (
    AccessTokenForbidden,
    AccessTokenInvalid,
    AccessTokenTimeout,
    EtagMismatch,
    InvalidRom,
    NoRom,
    RomExists,
    RomsForbidden,
    ServerBusy,
)
from romshelf.pkmnapi.models import PkmnapiRom, PkmnapiRomData, PkmnapiSignup
from romshelf.platforms.models import Platform
from romshelf.roms.models import Rom

log = logging.getLogger("romshelf.pkmnapi")

ROM_DATA_PREFIX = "pkmnapi/rom_data"
INCOMING_PREFIX = "pkmnapi/incoming"
ROM_DATA_LOCK = "pkmnapi:rom_data"
LOCK_TIMEOUT = 30.0
ID_ALPHABET = string.ascii_letters + string.digits
ROM_ID_LENGTH = 32

# Open sign-up (POST /v1/access_tokens)
SIGNUP_COOLDOWN = dt.timedelta(seconds=600)  # pkmnapi's re-issue cooldown
SIGNUP_TOKEN_NAME = "pkmnapi /v1 access token"
SIGNUP_TOKEN_SCOPES = (Scope.ME_READ.value,)  # /v1 needs no /api scope; a token needs one
SIGNUP_TOKEN_LENGTH = 64  # like pkmnapi's tokens: the JSON body is exactly 66 bytes
DELETE_CODE_LENGTH = 64
DELETE_CODE_TTL = dt.timedelta(hours=1)
UNUSABLE_PASSWORD = "!pkmnapi-signup"  # not an argon2 hash: password login is impossible
EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+=?^_`{|}~-]{1,64}"
    r"@(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)

# add_to_library: where workspace ROMs go in the /api library
LIBRARY_PLATFORM = "gb"
LIBRARY_FOLDER = "roms/gb"
LIBRARY_EXTENSION = ".gb"
LIBRARY_LOCK = "pkmnapi:library"


def random_id(length: int) -> str:
    """``length`` random characters of ``[A-Za-z0-9]`` (pkmnapi's ids)."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(length))


def rom_data_key(sha256: str) -> str:
    return f"{ROM_DATA_PREFIX}/{sha256}"


def rfc3339_seconds(when: dt.datetime) -> str:
    return to_utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def rom_etag(rom_id: str, created: dt.datetime, name: str, md5: str) -> str:
    """pkmnapi's ETag: ``w/"`` + MD5 of id, creation time (RFC 3339, whole seconds), name and
    ROM MD5, concatenated without separators, + ``"``. 36 characters, lower-case ``w/``."""
    material = f"{rom_id}{rfc3339_seconds(created)}{name}{md5}".encode()
    return f'w/"{hashlib.md5(material, usedforsecurity=False).hexdigest()}"'


def is_known_gen1(settings: Settings, md5: str) -> bool:
    """True if the ROM is a known-good Pokémon generation-1 ROM (MD5 in ``ROMSHELF_GEN1_HASHES``)."""
    md5 = md5.lower()
    return any(md5 == h.lower() for h in settings.gen1_hashes)


@dataclass(frozen=True)
class RomView:
    """A workspace ROM as /v1 shows it."""

    id: str
    name: str
    hash: str
    valid: bool
    etag: str
    library_rom_id: int | None = None


# --- receiving a body ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedRom:
    """A fully received, header-checked body waiting in the incoming folder."""

    key: str
    size: int
    md5: str
    sha1: str
    sha256: str
    crc32: str
    title: bytes
    name: str


class RomReceiver:
    """Takes an uploaded body chunk by chunk: refuses it as soon as it is more than ``max_bytes``
    or its header cannot be read, hashes it in the same pass (MD5, SHA-1, SHA-256, CRC32) and
    writes it to a private incoming file. Memory use is one chunk, whatever the body size."""

    def __init__(self, storage: Storage, max_bytes: int) -> None:
        self.storage = storage
        self.max_bytes = max_bytes
        self.key = f"{INCOMING_PREFIX}/{uuid.uuid4().hex}"
        self.size = 0
        self._head = bytearray()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self._crc = 0
        self._writer: AtomicWriter | None = None
        self._committed = False
        self._name: str | None = None

    def feed(self, data: bytes) -> None:
        if not data:
            return
        if self.size + len(data) > self.max_bytes:
            self.abort()
            raise InvalidRom()
        self.size += len(data)
        if len(self._head) < gameboy.HEADER_END:
            self._head += data[: gameboy.HEADER_END - len(self._head)]
            if len(self._head) == gameboy.HEADER_END:
                self._check_header()
        self._md5.update(data)
        self._sha1.update(data)
        self._sha256.update(data)
        self._crc = zlib.crc32(data, self._crc)
        if self._writer is None:
            self._writer = self.storage.writer(self.key, overwrite=False)
        self._writer.write(data)

    def _check_header(self) -> None:
        try:
            self._name = gameboy.read_title(bytes(self._head))
        except gameboy.BadHeader:
            self.abort()
            raise InvalidRom() from None

    def finish(self) -> ReceivedRom:
        """Check the complete body and make the incoming file durable."""
        if self.size < gameboy.HEADER_END or self._name is None or self._writer is None:
            self.abort()
            raise InvalidRom()
        try:
            self._writer.commit()
        except BaseException:
            self.abort()
            raise
        self._committed = True
        return ReceivedRom(
            key=self.key,
            size=self.size,
            md5=self._md5.hexdigest(),
            sha1=self._sha1.hexdigest(),
            sha256=self._sha256.hexdigest(),
            crc32=f"{self._crc & 0xFFFFFFFF:08x}",
            title=gameboy.title_bytes(bytes(self._head)),
            name=self._name,
        )

    def abort(self) -> None:
        """Drop whatever was received (safe to call more than once)."""
        if self._writer is not None and not self._committed:
            self._writer.abort()
        if self._committed:
            self.storage.delete(self.key)
            self._committed = False
        self._writer = None


def receive_bytes(ctx: AppContext, data: bytes) -> ReceivedRom:
    """Receive a body already in memory (CLI, tests); the endpoint streams into a RomReceiver."""
    receiver = RomReceiver(ctx.storages.assets, ctx.settings.v1_max_rom_bytes)
    receiver.feed(data)
    return receiver.finish()


# --- the workspace ROM ------------------------------------------------------------------------------


@contextlib.contextmanager
def _rom_data_lock(ctx: AppContext) -> Iterator[None]:
    try:
        with ctx.db.lock(ROM_DATA_LOCK, timeout=LOCK_TIMEOUT):
            yield
    except LockTimeout:
        raise ServerBusy(headers={"Retry-After": "5"}) from None


def _view(settings: Settings, rom: PkmnapiRom, data: PkmnapiRomData) -> RomView:
    return RomView(
        id=rom.id,
        name=data.name,
        hash=data.md5,
        valid=is_known_gen1(settings, data.md5),
        etag=rom.etag,
        library_rom_id=rom.library_rom_id,
    )


def get_rom(ctx: AppContext, user_id: int) -> RomView | None:
    with ctx.db.read() as s:
        row = s.execute(
            sa.select(PkmnapiRom, PkmnapiRomData)
            .join(PkmnapiRomData, PkmnapiRomData.sha256 == PkmnapiRom.rom_data_sha256)
            .where(PkmnapiRom.user_id == user_id)
        ).first()
        return None if row is None else _view(ctx.settings, row[0], row[1])


def has_rom(ctx: AppContext, user_id: int) -> bool:
    with ctx.db.read() as s:
        return s.scalar(sa.select(PkmnapiRom.id).where(PkmnapiRom.user_id == user_id)) is not None


def check_can_add_to_library(principal: Principal) -> None:
    """Copying into the shared /api library is curating it: it takes the ``roms.write`` scope."""
    if not principal.has(Scope.ROMS_WRITE):
        raise RomsForbidden(f"add_to_library=true needs the {Scope.ROMS_WRITE.value} scope (an editor or admin token)")


def store_rom(ctx: AppContext, principal: Principal, received: ReceivedRom, *, add_to_library: bool = False) -> RomView:
    """Make ``received`` the user's workspace ROM (403 ROM exists if they have one already).

    Consumes the incoming file in every case. With ``add_to_library`` the ROM is also put in the
    /api library first (so a failure there leaves no workspace ROM behind).
    """
    assets = ctx.storages.assets
    try:
        if has_rom(ctx, principal.user_id):
            raise RomExists()
        library_rom_id = None
        if add_to_library:
            check_can_add_to_library(principal)
            library_rom_id = add_rom_to_library(ctx, received)
        with _rom_data_lock(ctx):
            return _insert_rom(ctx, principal.user_id, received, library_rom_id)
    finally:
        assets.delete(received.key)


def _insert_rom(ctx: AppContext, user_id: int, received: ReceivedRom, library_rom_id: int | None) -> RomView:
    """Place the content-addressed file and write the rows; the caller holds the rom-data lock."""
    assets = ctx.storages.assets
    blob = rom_data_key(received.sha256)
    with ctx.db.read() as s:
        known = s.get(PkmnapiRomData, received.sha256) is not None
    if not assets.exists(blob):
        with contextlib.suppress(FileExists):
            assets.move(received.key, blob)
    created = utcnow().replace(microsecond=0)
    rom = PkmnapiRom(
        id=random_id(ROM_ID_LENGTH),
        user_id=user_id,
        rom_data_sha256=received.sha256,
        etag="",
        created_at=created,
        library_rom_id=library_rom_id,
    )
    rom.etag = rom_etag(rom.id, created, received.name, received.md5)
    data = PkmnapiRomData(
        sha256=received.sha256,
        md5=received.md5,
        sha1=received.sha1,
        crc32=received.crc32,
        size=received.size,
        title=received.title,
        created_at=created,
    )
    try:
        with ctx.db.transaction() as s:
            if not known:
                s.add(data)
                s.flush()
            s.add(rom)
    except IntegrityError as e:
        if not known:  # nothing else can reference the file: it was placed for this upload only
            assets.delete(blob)
        if is_unique_violation(e):
            raise RomExists() from None
        raise
    return _view(ctx.settings, rom, data)


def delete_rom(ctx: AppContext, user_id: int, if_match: str) -> None:
    """Delete the user's workspace ROM if ``if_match`` is exactly its ETag (pkmnapi compares the
    raw header string: no ``*``, no lists, no weak comparison). 403 no ROM comes first, then 400
    ETag mismatch. The shared ROM data goes too when no other workspace uses it."""
    with ctx.db.transaction() as s:
        row = s.execute(
            sa.select(PkmnapiRom.id, PkmnapiRom.etag, PkmnapiRom.rom_data_sha256).where(PkmnapiRom.user_id == user_id)
        ).first()
        if row is None:
            raise NoRom()
        if row.etag != if_match:
            raise EtagMismatch()
        deleted = s.execute(sa.delete(PkmnapiRom).where(PkmnapiRom.id == row.id, PkmnapiRom.etag == row.etag))
        if deleted.rowcount != 1:  # deleted by a concurrent request
            raise NoRom()
        sha256 = row.rom_data_sha256
    try:
        release_rom_data(ctx, sha256)
    except ServerBusy:
        log.warning("pkmnapi rom data %s not released (lock busy); the sweep will remove it", sha256)


def release_rom_data(ctx: AppContext, sha256: str) -> bool:
    """Remove a ROM data row and its file if no workspace ROM uses it; True if removed."""
    with _rom_data_lock(ctx):
        with ctx.db.transaction() as s:
            used = s.scalar(sa.select(PkmnapiRom.id).where(PkmnapiRom.rom_data_sha256 == sha256).limit(1))
            if used is not None:
                return False
            s.execute(sa.delete(PkmnapiRomData).where(PkmnapiRomData.sha256 == sha256))
        ctx.storages.assets.delete(rom_data_key(sha256))
        return True


@dataclass
class SweepReport:
    incoming: int = 0
    rom_data: int = 0
    files: int = 0


def sweep(ctx: AppContext, *, incoming_older_than: float = 3600.0) -> SweepReport:
    """Remove what a crash or a deleted user left behind: stale incoming files, ROM data no
    workspace uses (rows and files), and content-addressed files without a row."""
    assets = ctx.storages.assets
    report = SweepReport()
    cutoff = time.time() - incoming_older_than
    for entry in list(assets.list(INCOMING_PREFIX)):
        if not entry.is_dir and entry.mtime < cutoff:
            report.incoming += assets.delete(entry.key)
    cleanup_temp_files = getattr(assets, "cleanup_temp_files", None)  # a writer's own temp files
    if cleanup_temp_files is not None and assets.exists("pkmnapi"):
        report.incoming += cleanup_temp_files("pkmnapi", older_than=incoming_older_than)
    with _rom_data_lock(ctx):
        with ctx.db.transaction() as s:
            unused = list(
                s.scalars(
                    sa.select(PkmnapiRomData.sha256).where(
                        ~sa.exists().where(PkmnapiRom.rom_data_sha256 == PkmnapiRomData.sha256)
                    )
                )
            )
            if unused:
                s.execute(sa.delete(PkmnapiRomData).where(PkmnapiRomData.sha256.in_(unused)))
            report.rom_data = len(unused)
        with ctx.db.read() as s:
            known = set(s.scalars(sa.select(PkmnapiRomData.sha256)))
        for entry in list(assets.list(ROM_DATA_PREFIX)):
            if not entry.is_dir and entry.name not in known:
                report.files += assets.delete(entry.key)
    return report


# --- the /api library --------------------------------------------------------------------------------


def add_rom_to_library(ctx: AppContext, received: ReceivedRom) -> int:
    """Put a received Game Boy ROM into the shared /api library; return its ``roms.id``.

    A ROM with the same MD5 already on the Game Boy platform is reused. Otherwise the file is
    written to ``roms/gb/<title>.gb`` (a name taken by a file or a row gets the MD5 prefix, then a
    counter) and its Rom + RomFile rows are created with CRC32, MD5 and SHA-1, as a scan would.
    One adder at a time (all replicas), so two uploads of a new ROM cannot both add it.

    Kept in one function on purpose: the library's own ingest service can replace its body.
    """
    try:
        with ctx.db.lock(LIBRARY_LOCK, timeout=LOCK_TIMEOUT):
            return _add_rom_to_library(ctx, received)
    except LockTimeout:
        raise ServerBusy(headers={"Retry-After": "5"}) from None


def _library_file_name(received: ReceivedRom) -> tuple[str, str]:
    """(display name, file base name) for a ROM's header title; a title is one name: its
    slashes are not folders, and it never starts with a dot (a hidden file)."""
    display = received.name.replace("\x00", " ").strip()
    try:
        base = sanitize_filename(display.replace("/", "-").replace("\\", "-")).lstrip(". ") if display else ""
    except UnsafePath:
        base = ""
    base = base[:200].rstrip() or f"pkmnapi-{received.md5[:8]}"
    return display or base, base


def _add_rom_to_library(ctx: AppContext, received: ReceivedRom) -> int:
    with ctx.db.read() as s:
        existing = s.scalar(
            sa.select(Rom.id)
            .join(Platform, Platform.id == Rom.platform_id)
            .where(Platform.slug == LIBRARY_PLATFORM, Rom.md5_hash == received.md5)
            .order_by(Rom.id)
            .limit(1)
        )
        if existing is not None:
            return int(existing)
        _display, base = _library_file_name(received)
        candidates = [f"{base}{LIBRARY_EXTENSION}", f"{base} ({received.md5[:8]}){LIBRARY_EXTENSION}"]
        candidates += [f"{base} ({received.md5[:8]}-{n}){LIBRARY_EXTENSION}" for n in range(2, 20)]
        # A name a row holds (even a ROM marked missing) belongs to that ROM: never take it over.
        taken = set(
            s.scalars(
                sa.select(Rom.fs_name)
                .join(Platform, Platform.id == Rom.platform_id)
                .where(Platform.fs_slug == LIBRARY_PLATFORM, Rom.fs_name.in_(candidates))
            )
        )
    for fs_name in candidates:
        if fs_name in taken:
            continue
        try:
            # The library's own ingest: layout A or B, headers and headerless hashes, atomic write,
            # rows created at once, nothing left behind on failure.
            rom = library_service.ingest(
                ctx, LIBRARY_PLATFORM, ctx.storages.assets.iter_bytes(received.key), fs_name, size=received.size
            )
        except library_service.NameTaken:
            continue
        return rom.id
    raise InvalidRom("No free file name in the library for this ROM")


# --- access tokens (open sign-up) ---------------------------------------------------------------------


def validate_email(email: str) -> str:
    """pkmnapi's check, as a 400 "Invalid email address: <email>"; returns the lower-cased address."""
    if len(email) > 254 or not EMAIL_RE.match(email):
        raise AccessTokenInvalid(f"Invalid email address: {email}")
    return email.lower()


def _check_cooldown(signup: PkmnapiSignup, now: dt.datetime) -> None:
    """pkmnapi's "Please try again in N seconds" while the last token is younger than the cooldown."""
    remaining = (to_utc(signup.reissue_after) - now).total_seconds()
    if remaining >= 0:
        raise AccessTokenTimeout(max(1, math.ceil(remaining)))


def _signup_for_update(s: Session, address: str) -> PkmnapiSignup | None:
    return s.scalar(sa.select(PkmnapiSignup).where(PkmnapiSignup.email == address).with_for_update())


def issue_access_token(ctx: AppContext, email: str) -> str:
    """Create (or, after the cooldown, re-issue) the client token of the /v1 account for ``email``.

    The account is a romshelf user (username = email address, role viewer, no usable password)
    made for this address by open sign-up; re-issuing revokes its previous /v1 token, as pkmnapi
    does. An address that belongs to an account made any other way is refused: romshelf sends no
    email, so the token is returned in the response and cannot be allowed to open someone else's
    account. Returns the raw token (``rmm_`` + 60 characters).
    """
    address = validate_email(email)
    now = utcnow()
    raw = CLIENT_TOKEN_PREFIX + random_id(SIGNUP_TOKEN_LENGTH - len(CLIENT_TOKEN_PREFIX))
    try:
        with ctx.db.transaction() as s:
            signup = _signup_for_update(s, address)
            if signup is not None:
                _check_cooldown(signup, now)
                user = s.get(User, signup.user_id)
                if user is None or not user.enabled:
                    raise AccessTokenForbidden("This account is disabled")
                if signup.client_token_id is not None:
                    s.execute(sa.delete(ClientToken).where(ClientToken.id == signup.client_token_id))
            else:
                taken = s.scalar(
                    sa.select(User.id).where(sa.or_(sa.func.lower(User.email) == address, User.username == address))
                )
                if taken is not None:
                    raise AccessTokenForbidden(
                        "An account with this email address already exists: sign in to romshelf and "
                        "create an API token there (POST /api/client-tokens)"
                    )
                user = User(username=address, hashed_password=UNUSABLE_PASSWORD, email=address, role=Role.VIEWER.value)
                s.add(user)
                s.flush()
                signup = PkmnapiSignup(user_id=user.id, email=address, issued_at=now, reissue_after=now)
                s.add(signup)
            token = ClientToken(
                user_id=user.id,
                name=SIGNUP_TOKEN_NAME,
                hashed_token=sha256_hex(raw),
                scopes=" ".join(SIGNUP_TOKEN_SCOPES),
                created_at=now,
            )
            s.add(token)
            s.flush()
            signup.client_token_id = token.id
            signup.issued_at = now
            signup.reissue_after = now + SIGNUP_COOLDOWN
    except IntegrityError as e:
        if is_unique_violation(e):  # a concurrent sign-up for the same address won
            raise AccessTokenTimeout(int(SIGNUP_COOLDOWN.total_seconds())) from None
        raise
    return raw


def request_account_deletion(ctx: AppContext, email: str) -> str:
    """A one-time code that deletes the /v1 account of ``email`` (``DELETE /v1/access_tokens``).

    Same checks as issuing a token, cooldown included. An address without a /v1 account (unknown,
    or a romshelf account made any other way) gets ``""``, as pkmnapi answers for unknown
    addresses: the code is only ever for accounts open sign-up created. Valid for an hour; only
    its SHA-256 is kept.
    """
    address = validate_email(email)
    now = utcnow()
    code = random_id(DELETE_CODE_LENGTH)
    with ctx.db.transaction() as s:
        signup = _signup_for_update(s, address)
        if signup is None:
            return ""
        _check_cooldown(signup, now)
        signup.delete_code_hash = sha256_hex(code)
        signup.delete_code_expires_at = now + DELETE_CODE_TTL
    return code


def delete_account(ctx: AppContext, email: str, code: str) -> bool:
    """Delete the /v1 account of ``email`` if ``code`` is its pending deletion code: the romshelf
    user goes with its tokens and workspace ROM (and the ROM's bytes if nobody else uses them).
    A wrong code, or an unknown address, deletes nothing (pkmnapi deleted the user's patches even
    then) and is not an error, as in pkmnapi. True if an account was deleted."""
    address = validate_email(email)
    now = utcnow()
    with ctx.db.transaction() as s:
        signup = _signup_for_update(s, address)
        if (
            signup is None
            or signup.delete_code_hash is None
            or signup.delete_code_expires_at is None
            or to_utc(signup.delete_code_expires_at) <= now
            or not hmac.compare_digest(sha256_hex(code), signup.delete_code_hash)
        ):
            return False
        sha256 = s.scalar(sa.select(PkmnapiRom.rom_data_sha256).where(PkmnapiRom.user_id == signup.user_id))
        # The database cascades to the user's tokens, workspace ROM, sign-up row, saves...
        s.execute(sa.delete(User).where(User.id == signup.user_id))
    if sha256 is not None:
        try:
            release_rom_data(ctx, sha256)
        except ServerBusy:
            log.warning("pkmnapi rom data %s not released (lock busy); the sweep will remove it", sha256)
    return True
