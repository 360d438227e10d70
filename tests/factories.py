"""Test data builders: users with credentials, platforms, ROMs with real files and hashes.

Everything is built in code (synthetic bytes), written through the real storage interface and
the real database: no mocks, no committed binaries.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from romshelf.accounts import service as accounts
from romshelf.accounts.dependencies import passwords_of
from romshelf.accounts.models import User
from romshelf.accounts.scopes import sort_scopes
from romshelf.core.context import AppContext
from romshelf.platforms import service as platforms
from romshelf.platforms.models import Platform
from romshelf.roms.models import Rom, RomFile
from romshelf.roms.naming import name_no_tags, name_sort_key

PASSWORD = "correct horse battery staple"


@dataclass
class UserRef:
    id: int
    username: str
    role: str
    password: str = PASSWORD


class UserFactory:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._n = 0

    def make(
        self,
        username: str | None = None,
        *,
        role: str = "viewer",
        password: str = PASSWORD,
        email: str | None = None,
        enabled: bool = True,
    ) -> UserRef:
        self._n += 1
        username = username or f"user{self._n}"
        with self.ctx.db.session() as s:
            u = accounts.create_user(
                s, passwords_of(self.ctx), username=username, password=password, email=email, role=role, enabled=enabled
            )
            return UserRef(u.id, u.username, u.role, password)

    def admin(self, username: str = "admin") -> UserRef:
        return self.make(username, role="admin")

    def editor(self, username: str = "editor") -> UserRef:
        return self.make(username, role="editor")

    def viewer(self, username: str = "viewer") -> UserRef:
        return self.make(username, role="viewer")

    def token(self, user: UserRef, scopes: list[str] | None = None, *, name: str = "test") -> str:
        """A raw client API token (``rmm_...``) for the user with these scopes (default: all)."""
        with self.ctx.db.session() as s:
            u = s.get(User, user.id)
            assert u is not None
            wanted = scopes if scopes is not None else sort_scopes(accounts.user_scopes(u))
            _t, raw = accounts.create_client_token(s, self.ctx.settings, u, name=name, scopes=wanted, expires_in=None)
            return raw

    def headers(self, user: UserRef, scopes: list[str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user, scopes)}"}

    def basic(self, user: UserRef, password: str | None = None) -> dict[str, str]:
        raw = f"{user.username}:{password or user.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def hashes(data: bytes) -> dict[str, str]:
    return {
        "crc_hash": f"{zlib.crc32(data) & 0xFFFFFFFF:08x}",
        "md5_hash": hashlib.md5(data).hexdigest(),
        "sha1_hash": hashlib.sha1(data).hexdigest(),
    }


def make_platform(ctx: AppContext, fs_slug: str = "gb") -> Platform:
    with ctx.db.session() as s:
        p = platforms.get_or_create(s, fs_slug)
        s.commit()
        return p


def make_rom(
    ctx: AppContext,
    platform: Platform | str,
    files: dict[str, bytes] | bytes,
    *,
    fs_name: str | None = None,
    layout: str = "A",
    **fields: Any,
) -> Rom:
    """Write a ROM into the library and create its rows, like a scan would.

    ``files`` is the content of a single-file ROM (bytes, named ``fs_name``), or a mapping of
    paths inside a folder ROM (``{"disc1.bin": b"...", "manual/m.pdf": b"..."}``).
    Extra keyword arguments set Rom columns (``igdb_id=...``, ``tags=[...]``...).
    """
    if isinstance(platform, str):
        platform = make_platform(ctx, platform)
    fs_path = f"roms/{platform.fs_slug}" if layout == "A" else f"{platform.fs_slug}/roms"
    lib = ctx.storages.library
    rom_files: list[RomFile] = []
    if isinstance(files, bytes):
        fs_name = fs_name or "Game (USA).bin"
        stored = lib.write(f"{fs_path}/{fs_name}", files)
        rom_files.append(
            RomFile(
                file_name=fs_name,
                file_path=fs_path,
                file_size_bytes=len(files),
                last_modified=stored.mtime,
                category=None,
                **hashes(files),
            )
        )
        rom_hashes = hashes(files)
        total = len(files)
    else:
        fs_name = fs_name or "Game (USA)"
        total = 0
        top = b""
        for rel, data in sorted(files.items()):
            key = f"{fs_path}/{fs_name}/{rel}"
            stored = lib.write(key, data)
            folder, _, name = key.rpartition("/")
            category = rel.split("/")[0] if "/" in rel else None
            rom_files.append(
                RomFile(
                    file_name=name,
                    file_path=folder,
                    file_size_bytes=len(data),
                    last_modified=stored.mtime,
                    category=category,
                    **hashes(data),
                )
            )
            total += len(data)
            if "/" not in rel:
                top += data
        rom_hashes = hashes(top)
    with ctx.db.session() as s:
        rom = Rom(
            platform_id=platform.id, fs_name=fs_name, fs_path=fs_path, fs_size_bytes=total, **{**rom_hashes, **fields}
        )
        if "name" not in fields:
            rom.name = name_no_tags(fs_name)
        if "name_sort_key" not in fields:
            rom.name_sort_key = name_sort_key(rom.name)
        if not any(k in fields for k in ("regions", "languages", "tags", "revision", "version")):
            rom.apply_tags()
        rom.files = rom_files
        s.add(rom)
        s.commit()
        s.refresh(rom)
        return rom


def count(ctx: AppContext, model: Any, *where: Any) -> int:
    with ctx.db.read() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0


def random_bytes(n: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes (no os.urandom, so failures reproduce)."""
    out = bytearray()
    block = seed.to_bytes(8, "little")
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


__all__ = ["PASSWORD", "UserFactory", "UserRef", "count", "hashes", "make_platform", "make_rom", "random_bytes"]
