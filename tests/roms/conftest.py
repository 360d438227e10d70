"""Fixtures for this folder: the ROMs API set (admin, auth, lib, add, get_list)."""

from rom_api_fixtures import add, admin, auth, get_list, lib  # noqa: F401 - pytest fixtures
