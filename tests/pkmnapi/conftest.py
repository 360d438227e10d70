"""Fixtures for the /v1 workspace: synthetic Game Boy ROMs and a pkmnapi-style test harness.

The harness checks what pkmnapi's own tests check: exact status, exact body (id masked) and the
exact header set, allowing only the transport headers a real HTTP stack adds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from factories import UserFactory, random_bytes
from fastapi.testclient import TestClient

from romshelf import __version__
from romshelf.core.context import AppContext

NINTENDO_LOGO = bytes.fromhex(
    "CEED6666CC0D000B03730083000C000D0008111F8889000EDCCC6EE6DDDDD999BBBB67636E0EECCCDDDC999FBBB9333E"
)
# pkmnapi-db's integration-test ROM: 0x150 bytes, title GAMEBOYGAME, both checksums right.
GAMEBOYGAME_MD5 = "b933af3d953bedd6ed3911ef6724cfa2"
SERVER = f"romshelf/{__version__}"
TRANSPORT_HEADERS = {"date", "content-length", "connection"}
ID_RE = re.compile(r"[a-zA-Z0-9]{32}")


def header_checksum(rom: bytes | bytearray) -> int:
    x = 0
    for b in rom[0x134:0x14D]:
        x = (x - b - 1) & 0xFF
    return x


def global_checksum(rom: bytes | bytearray) -> int:
    return (sum(rom) - sum(rom[0x14E:0x150])) & 0xFFFF


def gameboy_rom(
    title: bytes = b"GAMEBOYGAME",
    size: int = 0x150,
    *,
    seed: int | None = None,
    rest: bytes = bytes.fromhex("3031000005000101"),
) -> bytes:
    """A Game Boy ROM: zeroed vectors, entry point, logo, the 16 raw ``title`` bytes (padded with
    NULs; byte 16 is the CGB flag), ``rest`` for 0x144-0x14B, mask version 1, right checksums.
    Bytes past the header are deterministic noise from ``seed`` (zeros when None)."""
    assert len(title) <= 16 and len(rest) == 8 and size >= 0x150
    rom = bytearray(0x100) + bytes([0x00, 0xC3, 0x50, 0x01]) + NINTENDO_LOGO
    rom += title.ljust(16, b"\x00") + rest + b"\x01\x00\x00\x00"
    rom += random_bytes(size - 0x150, seed) if seed is not None else bytes(size - 0x150)
    rom[0x14D] = header_checksum(rom)
    rom[0x14E:0x150] = global_checksum(rom).to_bytes(2, "big")
    return bytes(rom)


GAMEBOYGAME = gameboy_rom()


@dataclass
class V1:
    """Talks to /v1 like pkmnapi's tests do."""

    client: TestClient
    users: UserFactory
    ctx: AppContext
    base: str = "http://testserver"

    def auth(self, role: str = "viewer", scopes: list[str] | None = None) -> dict[str, str]:
        """Authorization headers for a new user (client API token with all its scopes by default)."""
        user = self.users.make(role=role)
        return self.users.headers(user, scopes)

    def post_rom(self, rom: bytes | Any, headers: dict[str, str], **params: str) -> Any:
        return self.client.post("/v1/roms", content=rom, headers=headers, params=params)

    def get_rom(self, headers: dict[str, str]) -> Any:
        return self.client.get("/v1/roms", headers=headers)

    def delete_rom(self, headers: dict[str, str], if_match: str | None = None) -> Any:
        if if_match is not None:
            headers = {**headers, "If-Match": if_match}
        return self.client.delete("/v1/roms", headers=headers)

    def rom_body(self, name: str, md5: str, valid: bool, rom_id: str = "X" * 32) -> str:
        url = f"{self.base}/v1/roms"
        valid_text = "true" if valid else "false"
        return (
            f'{{"data":{{"id":"{rom_id}","type":"roms","attributes":{{"name":"{name}","hash":"{md5}",'
            f'"valid":{valid_text}}},"links":{{"self":"{url}"}}}},"links":{{"self":"{url}"}}}}'
        )

    @staticmethod
    def masked(response: Any) -> str:
        """The body with the first 32-character alphanumeric run (the id) replaced by X's."""
        return ID_RE.sub("X" * 32, response.text, count=1)

    @staticmethod
    def assert_headers(response: Any, expected: dict[str, str]) -> None:
        """Exactly these headers (an empty value = present, any value) plus transport headers."""
        got = {k.lower(): v for k, v in response.headers.items()}
        want = {k.lower(): v for k, v in expected.items()}
        want.setdefault("server", SERVER)
        extra = set(got) - set(want) - TRANSPORT_HEADERS
        assert not extra, f"unexpected headers {extra}: {got}"
        for name, value in want.items():
            assert name in got, f"missing header {name}: {got}"
            if value:
                assert got[name] == value, (name, got[name], value)

    def assert_error(self, response: Any, status: int, error_id: str, message: str) -> None:
        assert response.status_code == status, response.text
        assert response.text == (
            f'{{"data":{{"id":"{error_id}","type":"errors","attributes":{{"message":"{message}"}}}}}}'
        )
        self.assert_headers(response, {"Content-Type": "application/json"})

    def assert_unauthorized(self, response: Any) -> None:
        self.assert_error(response, 401, "error_access_tokens_unauthorized", "Authorization header must be set")

    def stored_files(self) -> list[str]:
        """Every file under the workspace's folder of the assets store (incoming and rom data)."""
        return sorted(e.key for e in self.ctx.storages.assets.walk("pkmnapi"))


@pytest.fixture
def v1(client: TestClient, users: UserFactory, ctx: AppContext) -> V1:
    return V1(client, users, ctx)


@pytest.fixture
def make_gb_rom() -> Callable[..., bytes]:
    return gameboy_rom


@pytest.fixture
def gameboygame() -> bytes:
    return GAMEBOYGAME
