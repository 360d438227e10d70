"""The body of ``POST /api/roms/{id}/patch``: multipart form, urlencoded form, or JSON.

RomM's clients send multipart (``patch_file_id`` or the file ``patch_file``, and
``output_file_name``); RomM's published docs show a JSON body. Both work here. The uploaded
patch is streamed straight from the request into the request's work folder (python-multipart's
parser fed from ``request.stream()``: never spooled twice, never held in memory) and refused
with a 400 as soon as it passes the size limit.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio
from python_multipart.multipart import parse_options_header
from starlette.requests import Request

from romshelf.core.errors import BadRequest
from romshelf.core.multipart import PartHandler, boundary_of, client_file_name, feed
from romshelf.patching.binio import human

SMALL_BODY_LIMIT = 64 * 1024  # a JSON or urlencoded body
FLUSH_AT = 1024 * 1024
TEXT_FIELDS = ("patch_file_id", "output_file_name")


@dataclass
class PatchForm:
    patch_file_id: int | None = None
    output_file_name: str | None = None
    upload: Path | None = None
    upload_name: str | None = None
    upload_size: int = 0


def _patch_file_id(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadRequest("patch_file_id must be an integer")
    if isinstance(value, int):
        n = value
    else:
        text = str(value).strip()
        if not text.isascii() or not text.isdigit():
            raise BadRequest("patch_file_id must be an integer")
        n = int(text)
    if n < 1 or n > 2**62:
        raise BadRequest("patch_file_id must be a positive integer")
    return n


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, int)):
        raise BadRequest(f"{name} must be a string")
    return str(value) or None


async def _small_body(request: Request) -> bytes:
    out = bytearray()
    async for chunk in request.stream():
        out += chunk
        if len(out) > SMALL_BODY_LIMIT:
            raise BadRequest(f"Request body is larger than {SMALL_BODY_LIMIT} bytes")
    return bytes(out)


async def read_patch_form(request: Request, work_dir: Path, max_bytes: int) -> PatchForm:
    """Parse the request body; an uploaded ``patch_file`` lands in ``work_dir/upload``."""
    ctype, _params = parse_options_header(request.headers.get("content-type", ""))
    ctype_s = ctype.decode("latin-1").lower() if isinstance(ctype, bytes) else str(ctype).lower()
    if ctype_s == "application/json" or ctype_s.endswith("+json"):
        raw = await _small_body(request)
        if not raw.strip():
            return PatchForm()
        try:
            data = json.loads(raw)
        except ValueError:
            raise BadRequest("Request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise BadRequest("Request body must be a JSON object")
        return PatchForm(
            patch_file_id=_patch_file_id(data.get("patch_file_id")),
            output_file_name=_text(data.get("output_file_name"), "output_file_name"),
        )
    if ctype_s == "application/x-www-form-urlencoded":
        raw = await _small_body(request)
        fields = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        return PatchForm(
            patch_file_id=_patch_file_id((fields.get("patch_file_id") or [None])[0]),
            output_file_name=_text((fields.get("output_file_name") or [None])[0], "output_file_name"),
        )
    if ctype_s == "multipart/form-data":
        boundary = boundary_of(request)  # (a 400 if it has none)
        if boundary is not None:
            return await _multipart(request, boundary, work_dir, max_bytes)
    # No body (or one we do not read): only what the query string says.
    return PatchForm()


class _Multipart(PartHandler):
    """``patch_file`` goes to ``work_dir/upload`` (bytes queued by the parser callbacks, written
    by :meth:`flush` in a worker thread), refused as soon as it passes ``max_bytes``."""

    text_fields = frozenset(TEXT_FIELDS)

    def __init__(self, work_dir: Path, max_bytes: int) -> None:
        super().__init__()
        self.work_dir = work_dir
        self.max = max_bytes
        self.form = PatchForm()
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.fd: int | None = None

    def begin_file(self, name: str, filename: bytes) -> bool:
        if name != "patch_file":
            return False
        if self.form.upload is not None:
            self.error = BadRequest("Send one patch_file, not several")
            return False
        self.form.upload = self.work_dir / "upload"
        self.form.upload_name = client_file_name(filename)
        self.fd = os.open(self.form.upload, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        return True

    def file_data(self, data: bytes) -> None:
        self.form.upload_size += len(data)
        if self.form.upload_size > self.max:
            self.error = BadRequest(f"Patch file is too large (more than {human(self.max)})")
            self.stop_file()
            return
        self.pending.append(data)
        self.pending_size += len(data)

    def flush(self) -> None:
        if self.pending and self.fd is not None:
            data = b"".join(self.pending)
            view = memoryview(data)
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
        self.pending = []
        self.pending_size = 0

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


async def _multipart(request: Request, boundary: bytes, work_dir: Path, max_bytes: int) -> PatchForm:
    state = _Multipart(work_dir, max_bytes)
    try:
        await feed(request, state, boundary, flush=state.flush, flush_when=lambda: state.pending_size >= FLUSH_AT)
        await anyio.to_thread.run_sync(state.flush)
    finally:
        state.close()
    form = state.form
    form.patch_file_id = _patch_file_id(state.fields.get("patch_file_id"))
    form.output_file_name = state.fields.get("output_file_name") or None
    return form
