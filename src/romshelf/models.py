"""Every ORM model, imported once so ``Base.metadata`` knows all tables (Alembic, tests)."""

from romshelf.accounts.models import ClientToken, RefreshToken, User, WebSession
from romshelf.collections.models import Collection, CollectionRom, SmartCollection
from romshelf.core.db import Base
from romshelf.core.jobs import Job
from romshelf.devices.models import Device, DevicePairing
from romshelf.library.models import UploadChunk, UploadSession
from romshelf.pkmnapi.models import PkmnapiRom, PkmnapiRomData, PkmnapiSignup
from romshelf.platforms.models import Platform
from romshelf.roms.models import Rom, RomFile, RomUser
from romshelf.saves.models import DeviceSaveSync, Save, Screenshot, State

metadata = Base.metadata

__all__ = [
    "Base",
    "ClientToken",
    "Collection",
    "CollectionRom",
    "Device",
    "DevicePairing",
    "DeviceSaveSync",
    "Job",
    "PkmnapiRom",
    "PkmnapiRomData",
    "PkmnapiSignup",
    "Platform",
    "RefreshToken",
    "Rom",
    "RomFile",
    "RomUser",
    "Save",
    "Screenshot",
    "SmartCollection",
    "State",
    "UploadChunk",
    "UploadSession",
    "User",
    "WebSession",
    "metadata",
]
