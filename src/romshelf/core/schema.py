"""Pydantic building blocks shared by the response schemas of every domain."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer

from romshelf.core.timeutil import to_utc


def _serialize_dt(value: dt.datetime) -> str:
    return to_utc(value).isoformat()


# A datetime that always serialises as ISO 8601 with "+00:00" (RomM's UTCDatetime), never "Z".
UTCDatetime = Annotated[dt.datetime, PlainSerializer(_serialize_dt, return_type=str, when_used="json")]


class Schema(BaseModel):
    """Base for response models: built from ORM objects or dicts."""

    model_config = ConfigDict(from_attributes=True, populate_by_name=True)
