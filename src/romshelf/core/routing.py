"""Routing helpers shared by every domain."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter as _FastAPIRouter


class APIRouter(_FastAPIRouter):
    """An APIRouter that answers each path with and without a trailing slash (no redirect).

    RomM registers both forms (``/api/roms`` and ``/api/roms/``); clients use either, and a
    307 redirect would lose the body of a POST with some HTTP clients.
    """

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().add_api_route(path, endpoint, **kwargs)
        full = self.prefix + path
        if full and full != "/":
            alternate = path[:-1] if path.endswith("/") else path + "/"
            if self.prefix + alternate:
                kwargs = {**kwargs, "include_in_schema": False}
                kwargs.pop("operation_id", None)
                super().add_api_route(alternate, endpoint, **kwargs)
