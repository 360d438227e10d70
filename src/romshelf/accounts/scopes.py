"""The RomM scope set and the scopes each role gets."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    ME_READ = "me.read"
    ME_WRITE = "me.write"
    ROMS_READ = "roms.read"
    ROMS_WRITE = "roms.write"
    ROMS_USER_READ = "roms.user.read"
    ROMS_USER_WRITE = "roms.user.write"
    PLATFORMS_READ = "platforms.read"
    PLATFORMS_WRITE = "platforms.write"
    ASSETS_READ = "assets.read"
    ASSETS_WRITE = "assets.write"
    DEVICES_READ = "devices.read"
    DEVICES_WRITE = "devices.write"
    FIRMWARE_READ = "firmware.read"
    FIRMWARE_WRITE = "firmware.write"
    COLLECTIONS_READ = "collections.read"
    COLLECTIONS_WRITE = "collections.write"
    PLAYLISTS_READ = "playlists.read"
    PLAYLISTS_WRITE = "playlists.write"
    USERS_READ = "users.read"
    USERS_WRITE = "users.write"
    TASKS_RUN = "tasks.run"
    LOGS_READ = "logs.read"


ALL_SCOPES: frozenset[str] = frozenset(s.value for s in Scope)

READ_SCOPES: frozenset[str] = frozenset(
    {
        Scope.ME_READ,
        Scope.ROMS_READ,
        Scope.PLATFORMS_READ,
        Scope.ASSETS_READ,
        Scope.DEVICES_READ,
        Scope.FIRMWARE_READ,
        Scope.ROMS_USER_READ,
        Scope.COLLECTIONS_READ,
        Scope.PLAYLISTS_READ,
    }
)
WRITE_SCOPES: frozenset[str] = READ_SCOPES | {
    Scope.ME_WRITE,
    Scope.ASSETS_WRITE,
    Scope.DEVICES_WRITE,
    Scope.ROMS_USER_WRITE,
    Scope.COLLECTIONS_WRITE,
    Scope.PLAYLISTS_WRITE,
}
EDIT_SCOPES: frozenset[str] = WRITE_SCOPES | {Scope.ROMS_WRITE, Scope.PLATFORMS_WRITE, Scope.FIRMWARE_WRITE}
FULL_SCOPES: frozenset[str] = EDIT_SCOPES | {Scope.USERS_READ, Scope.USERS_WRITE, Scope.TASKS_RUN, Scope.LOGS_READ}
assert FULL_SCOPES == ALL_SCOPES


class Role(StrEnum):
    VIEWER = "viewer"  # plays: reads the library, syncs own saves/states/devices
    EDITOR = "editor"  # also curates: uploads, edits and deletes ROMs and platforms
    ADMIN = "admin"  # everything, including users and tasks


ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.VIEWER: WRITE_SCOPES,
    Role.EDITOR: EDIT_SCOPES,
    Role.ADMIN: FULL_SCOPES,
}


def coerce_role(value: str) -> Role:
    """Accept romshelf roles and RomM 5's ``user`` (= viewer); raise ValueError otherwise."""
    v = value.strip().lower()
    if v == "user":
        return Role.VIEWER
    return Role(v)


def scopes_for_role(role: str) -> frozenset[str]:
    try:
        return ROLE_SCOPES[coerce_role(role)]
    except ValueError:
        return READ_SCOPES


def parse_scopes(text: str | None) -> list[str]:
    """Split an OAuth ``scope`` string (space separated; commas tolerated), keep order, drop dups."""
    if not text:
        return []
    seen: dict[str, None] = {}
    for part in text.replace(",", " ").split():
        seen.setdefault(part, None)
    return list(seen)


def sort_scopes(scopes: frozenset[str] | set[str] | list[str]) -> list[str]:
    order = {s.value: i for i, s in enumerate(Scope)}
    return sorted(scopes, key=lambda s: (order.get(s, 999), s))
