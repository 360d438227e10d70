"""Fixtures for the library tests: a synthetic library folder; cartridge builders live in
``library_carts.py`` (importable from the tests of this folder)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from romshelf.core.context import AppContext

sys.path.insert(0, str(Path(__file__).parent))


class Library:
    """Files in the test library folder (layout A by default)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.layout = "A"

    def platform_dir(self, fs_slug: str) -> Path:
        return self.root / ("roms/" + fs_slug if self.layout == "A" else fs_slug + "/roms")

    def fs_path(self, fs_slug: str) -> str:
        return f"roms/{fs_slug}" if self.layout == "A" else f"{fs_slug}/roms"

    def add(self, fs_slug: str, rel: str, data: bytes, mtime: float | None = None) -> Path:
        path = self.platform_dir(fs_slug) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return path

    def remove(self, fs_slug: str, rel: str) -> None:
        (self.platform_dir(fs_slug) / rel).unlink()

    def rename(self, fs_slug: str, old: str, new: str) -> None:
        (self.platform_dir(fs_slug) / old).rename(self.platform_dir(fs_slug) / new)


@pytest.fixture
def library(ctx: AppContext) -> Library:
    return Library(ctx.settings.library_path)


@pytest.fixture
def scan_now(ctx: AppContext) -> Callable[..., object]:
    from romshelf.library.scanner import scan

    def run(**kw: object):  # type: ignore[no-untyped-def]
        return scan(ctx, **kw)  # type: ignore[arg-type]

    return run
