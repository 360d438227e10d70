"""HTTP surface of the pkmnapi domain (filled in by its issue)."""

from __future__ import annotations

from romshelf.core.routing import APIRouter

router = APIRouter(tags=["pkmnapi"])
