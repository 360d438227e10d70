"""Download tests start with an empty CRC cache (it is per process)."""

from __future__ import annotations

import pytest

from romshelf.downloads import crc as crc_cache


@pytest.fixture(autouse=True)
def _fresh_crc_cache():
    crc_cache.clear()
    yield
    crc_cache.clear()
