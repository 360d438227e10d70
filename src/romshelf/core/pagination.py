"""Limit/offset pagination shared by list endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

T = TypeVar("T")

MAX_LIMIT = 10_000


@dataclass(frozen=True)
class LimitOffset:
    limit: int
    offset: int


def limit_offset(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page (1-10 000)")] = 50,
    offset: Annotated[int, Query(ge=0, description="Zero-based offset of the first item")] = 0,
) -> LimitOffset:
    """Dependency: ``limit`` (1-10 000, default 50) and ``offset`` (>= 0); bad values are a 422."""
    return LimitOffset(limit, offset)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int | None
    limit: int
    offset: int
