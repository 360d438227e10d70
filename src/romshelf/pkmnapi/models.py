"""The /v1 workspace: content-addressed ROM data, one workspace ROM per user, /v1 sign-ups.

- ``pkmnapi_rom_data``: one row per distinct uploaded body, keyed by SHA-256 (the bytes live once
  in the assets store under ``pkmnapi/rom_data/<sha256>``). MD5 is what pkmnapi calls the ROM's
  ``hash``; it is not the key because MD5 collisions can be made on purpose, and two different
  bodies must never share a stored file.
- ``pkmnapi_roms``: a user's workspace ROM (pkmnapi's ``roms`` row + ``users.rom_id``). The unique
  ``user_id`` is what makes "one ROM per user" hold under concurrent uploads.
- ``pkmnapi_signups``: users created by ``POST /v1/access_tokens`` (open sign-up), with the
  client token issued to them, the re-issue cooldown and a pending account deletion code.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from romshelf.core.db import Base, UTCDateTime

TITLE_LENGTH = 16  # bytes 0x134..0x143 of the cartridge header


class PkmnapiRomData(Base):
    __tablename__ = "pkmnapi_rom_data"

    sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    md5: Mapped[str] = mapped_column(sa.String(32), index=True)
    sha1: Mapped[str] = mapped_column(sa.String(40))
    crc32: Mapped[str] = mapped_column(sa.String(8))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    # The raw 16 title bytes (valid UTF-8, possibly with NULs, which PostgreSQL text cannot hold).
    title: Mapped[bytes] = mapped_column(sa.LargeBinary(TITLE_LENGTH))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    @property
    def name(self) -> str:
        return self.title.decode("utf-8").strip("\x00")


class PkmnapiRom(Base):
    __tablename__ = "pkmnapi_roms"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)  # 32 random [A-Za-z0-9]
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    rom_data_sha256: Mapped[str] = mapped_column(sa.ForeignKey("pkmnapi_rom_data.sha256"), index=True)
    etag: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())  # whole seconds: part of the ETag
    # The /api library ROM made from it when uploaded with ?add_to_library=true.
    library_rom_id: Mapped[int | None] = mapped_column(sa.ForeignKey("roms.id", ondelete="SET NULL"), index=True)


class PkmnapiSignup(Base):
    __tablename__ = "pkmnapi_signups"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)  # lower-cased
    client_token_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("client_tokens.id", ondelete="SET NULL"), index=True
    )
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    reissue_after: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # POST /v1/access_tokens/delete: SHA-256 of the one-time account deletion code
    delete_code_hash: Mapped[str | None] = mapped_column(sa.String(64))
    delete_code_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
