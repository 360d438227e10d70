"""Fixtures for the saves/states API tests: two users with tokens, a ROM, devices, uploads."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from factories import UserFactory, UserRef, make_rom

from romshelf.core.context import AppContext
from romshelf.devices.models import Device
from romshelf.roms.models import Rom


class Env:
    def __init__(self, ctx: AppContext, client: Any, users: UserFactory) -> None:
        self.ctx = ctx
        self.client = client
        self.users = users
        self.alice = users.viewer("alice")
        self.bob = users.viewer("bob")
        self.a = users.headers(self.alice)
        self.b = users.headers(self.bob)
        self.rom = make_rom(ctx, "gba", b"rom bytes" * 10, fs_name="Game (USA).gba")

    def device(self, user: UserRef | None = None, name: str = "handheld") -> str:
        user = user or self.alice
        with self.ctx.db.session() as s:
            d = Device(id=str(uuid.uuid4()), user_id=user.id, name=name)
            s.add(d)
            s.commit()
            return d.id

    def rom2(self, name: str = "Other (USA).gba") -> Rom:
        return make_rom(self.ctx, "gba", name.encode() * 3, fs_name=name)

    def upload(
        self,
        data: bytes = b"save data",
        name: str = "test.sav",
        *,
        headers: dict[str, str] | None = None,
        screenshot: tuple[str, bytes] | None = None,
        rom_id: int | None = None,
        **params: Any,
    ) -> Any:
        params = {k: v for k, v in params.items() if v is not None}
        params.setdefault("rom_id", rom_id if rom_id is not None else self.rom.id)
        files: dict[str, Any] = {"saveFile": (name, data, "application/octet-stream")}
        if screenshot is not None:
            files["screenshotFile"] = (screenshot[0], screenshot[1], "image/png")
        return self.client.post("/api/saves", params=params, files=files, headers=headers or self.a)

    def upload_state(
        self,
        data: bytes = b"state data",
        name: str = "test.state",
        *,
        headers: dict[str, str] | None = None,
        screenshot: tuple[str, bytes] | None = None,
        **params: Any,
    ) -> Any:
        params.setdefault("rom_id", self.rom.id)
        files: dict[str, Any] = {"stateFile": (name, data, "application/octet-stream")}
        if screenshot is not None:
            files["screenshotFile"] = (screenshot[0], screenshot[1], "image/png")
        return self.client.post("/api/states", params=params, files=files, headers=headers or self.a)

    def files(self) -> list[str]:
        """Every file in the assets store (staging and trash excluded)."""
        return sorted(e.key for e in self.ctx.storages.assets.walk("users"))


@pytest.fixture
def env(ctx: AppContext, client: Any, users: UserFactory) -> Env:
    return Env(ctx, client, users)
