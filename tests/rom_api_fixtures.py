"""Fixtures shared by the ROMs API and collections tests (imported by their conftest.py files):
an admin with a token, a quick ROM builder, row inserts and a list helper."""

from __future__ import annotations

from typing import Any

import pytest
from factories import UserFactory, UserRef, make_platform, make_rom

from romshelf.core.context import AppContext
from romshelf.platforms.models import Platform
from romshelf.roms.models import Rom


@pytest.fixture
def admin(users: UserFactory) -> UserRef:
    return users.admin()


@pytest.fixture
def auth(users: UserFactory, admin: UserRef) -> dict[str, str]:
    return users.headers(admin)


class Library:
    """Builds ROMs (real files + rows) on a few platforms."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.platforms: dict[str, Platform] = {}
        self._n = 0

    def platform(self, slug: str = "gb") -> Platform:
        if slug not in self.platforms:
            self.platforms[slug] = make_platform(self.ctx, slug)
        return self.platforms[slug]

    def rom(
        self,
        fs_name: str,
        platform: str = "gb",
        data: bytes | None = None,
        files: dict[str, bytes] | None = None,
        **fields: Any,
    ) -> Rom:
        """A single-file ROM (unique content unless ``data``), or a folder ROM with ``files``."""
        self._n += 1
        content: bytes | dict[str, bytes] = data if data is not None else f"rom {self._n} {fs_name}".encode()
        if files is not None:
            content = files
        return make_rom(self.ctx, self.platform(platform), content, fs_name=fs_name, **fields)


@pytest.fixture
def lib(ctx: AppContext) -> Library:
    return Library(ctx)


@pytest.fixture
def add(ctx: AppContext) -> Any:
    """``add(obj, ...)``: insert ORM objects in one transaction; returns the last one, refreshed."""

    def _add(*objs: Any) -> Any:
        with ctx.db.session() as s:
            for o in objs:
                s.add(o)
            s.commit()
            for o in objs:
                s.refresh(o)
            return objs[-1]

    return _add


@pytest.fixture
def get_list(client: Any, auth: dict[str, str]) -> Any:
    """``get_list(**params)``: GET /api/roms as the admin; asserts 200, returns the JSON body."""

    def _get(headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
        r = client.get("/api/roms", params=params, headers=headers or auth)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    return _get
