"""Serving bytes over HTTP: conditional requests, Range / If-Range and multi-range (RFC 9110),
streamed from any :class:`ByteSource` in bounded memory.

romshelf has no nginx in front of it, so this is the one place that turns "these bytes, this
validator" into a correct response: ``200`` with ``Content-Length`` and ``Accept-Ranges``,
``206`` with ``Content-Range`` (or ``multipart/byteranges`` for several ranges), ``304`` for a
matching ``If-None-Match`` / ``If-Modified-Since``, ``412`` for a failed ``If-Match`` /
``If-Unmodified-Since``, ``416`` for a range past the end. ``HEAD`` answers the same headers and
never reads a byte.

Sources are read on a worker thread in 1 MiB chunks (``os.pread`` for local files), so a large
download uses a few MiB of memory whatever its size, and the event loop never blocks on disk.
A source that changes under a download (size or mtime no longer what the headers promised)
aborts the response: the client sees a short body, never silently wrong bytes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import itertools
import logging
import os
import secrets
import stat as stat_mod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from romshelf.core.http import content_disposition
from romshelf.core.storage import FileMissing, Storage
from romshelf.core.timeutil import http_date

log = logging.getLogger("romshelf.streaming")

CHUNK = 1024 * 1024
MAX_RANGES = 64  # more parts than this (after coalescing) and the whole body is sent instead
MAX_RANGE_HEADER = 8192


class SourceChanged(Exception):
    """The bytes behind a response changed after its headers were computed."""


class ByteReader(Protocol):
    def read(self, start: int, length: int) -> Iterator[bytes]:
        """Yield exactly ``length`` bytes from ``start`` (in chunks), or raise."""
        ...

    def close(self) -> None: ...


class ByteSource(Protocol):
    size: int

    def open(self) -> ByteReader: ...


# --- local / stored files ----------------------------------------------------------------------


@dataclass
class FileSource:
    """One stored file, as it was when the response was planned (size and mtime).

    Opening re-checks both on the open descriptor; if the file was replaced or rewritten in the
    meantime the response is aborted rather than mixing two versions of a file.
    """

    storage: Storage
    key: str
    size: int
    mtime: float

    @classmethod
    def stat(cls, storage: Storage, key: str) -> FileSource:
        st = storage.stat(key)
        if st is None or st.is_dir:
            raise FileMissing(f"File not found: {key}")
        return cls(storage, key, st.size, st.mtime)

    def open(self) -> ByteReader:
        return open_file_reader(self.storage, self.key, self.size, self.mtime)


class _FdReader:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def read(self, start: int, length: int) -> Iterator[bytes]:
        end = start + length
        pos = start
        while pos < end:
            data = os.pread(self.fd, min(CHUNK, end - pos), pos)
            if not data:
                raise SourceChanged("file is shorter than when the response started")
            pos += len(data)
            yield data

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class _FileObjReader:
    def __init__(self, fh: Any) -> None:
        self.fh = fh

    def read(self, start: int, length: int) -> Iterator[bytes]:
        self.fh.seek(start)
        remaining = length
        while remaining > 0:
            data = self.fh.read(min(CHUNK, remaining))
            if not data:
                raise SourceChanged("file is shorter than when the response started")
            remaining -= len(data)
            yield data

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.fh.close()


def same_mtime(a: float, b: float) -> bool:
    return abs(a - b) < 1e-6


def open_file_reader(storage: Storage, key: str, size: int, mtime: float | None) -> ByteReader:
    """Open a stored file for ranged reads, checking it is still ``size`` bytes (and ``mtime``)."""
    path = storage.local_path(key)
    if path is not None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise SourceChanged(f"{key} disappeared") from None
        st = os.fstat(fd)
        changed = st.st_size != size or (mtime is not None and not same_mtime(st.st_mtime, mtime))
        if not stat_mod.S_ISREG(st.st_mode) or changed:
            os.close(fd)
            raise SourceChanged(f"{key} changed since the response was planned")
        return _FdReader(fd)
    st2 = storage.stat(key)
    if st2 is None or st2.size != size or (mtime is not None and not same_mtime(st2.mtime, mtime)):
        raise SourceChanged(f"{key} changed since the response was planned")
    return _FileObjReader(storage.open(key))


@dataclass
class BytesSource:
    """Bytes already in memory (small generated content)."""

    data: bytes
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = len(self.data)

    def open(self) -> ByteReader:
        return self

    def read(self, start: int, length: int) -> Iterator[bytes]:
        yield self.data[start : start + length]

    def close(self) -> None:
        pass


# --- Range and conditional requests ------------------------------------------------------------


def parse_range(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """The byte ranges (inclusive ``(first, last)``) a ``Range`` header asks for.

    ``None``: no usable header (absent, another unit, bad syntax, too many parts) -> send the
    whole representation, as RFC 9110 lets a server do. ``[]``: syntactically fine but no range
    overlaps the representation -> 416. Overlapping ranges are coalesced, so a request cannot
    make the server send any byte more than once.
    """
    if not header or len(header) > MAX_RANGE_HEADER:
        return None
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    out: list[tuple[int, int]] = []
    seen = 0
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        seen += 1
        first, dash, last = item.partition("-")
        first, last = first.strip(), last.strip()
        if not dash or (first and not first.isdigit()) or (last and not last.isdigit()) or not (first or last):
            return None
        if not first.isascii() or not last.isascii():
            return None
        if first:
            a = int(first)
            if last:
                b = int(last)
                if b < a:
                    return None
            else:
                b = size - 1
            if a >= size:
                continue  # unsatisfiable part
            out.append((a, min(b, size - 1)))
        else:
            n = int(last)
            if n == 0 or size == 0:
                continue
            out.append((max(0, size - n), size - 1))
    if seen == 0:
        return None
    if len(out) > 1 and _overlapping(out):
        out = _coalesce(out)
    if len(out) > MAX_RANGES:
        return None
    return out


def _overlapping(ranges: list[tuple[int, int]]) -> bool:
    ordered = sorted(ranges)
    return any(b[0] <= a[1] + 1 for a, b in itertools.pairwise(ordered))


def _coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if merged and a <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _etags(header: str) -> list[str]:
    return [t.strip() for t in header.split(",") if t.strip()]


def _strong_match(header: str, etag: str) -> bool:
    if etag.startswith("W/"):
        return False
    return any(t == "*" or (not t.startswith("W/") and t == etag) for t in _etags(header))


def _weak_match(header: str, etag: str) -> bool:
    bare = etag.removeprefix("W/")
    return any(t == "*" or t.removeprefix("W/") == bare for t in _etags(header))


def _parse_http_date(value: str) -> float | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def precondition_status(
    method: str, headers: Mapping[str, str], etag: str | None, last_modified: float | None
) -> int | None:
    """RFC 9110 §13.2.2 order: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since.

    Returns 412 or 304 when a precondition decides the answer, else None.
    """
    lm = int(last_modified) if last_modified is not None else None
    if_match = headers.get("if-match")
    if if_match is not None:
        if etag is None or not _strong_match(if_match, etag):
            return 412
    else:
        ius = headers.get("if-unmodified-since")
        if ius is not None and lm is not None:
            date = _parse_http_date(ius)
            if date is not None and lm > date:
                return 412
    inm = headers.get("if-none-match")
    if inm is not None:
        if etag is not None and _weak_match(inm, etag):
            return 304 if method in ("GET", "HEAD") else 412
    elif method in ("GET", "HEAD"):
        ims = headers.get("if-modified-since")
        if ims is not None and lm is not None:
            date = _parse_http_date(ims)
            if date is not None and lm <= date:
                return 304
    return None


def if_range_allows(headers: Mapping[str, str], etag: str | None, last_modified: float | None) -> bool:
    """True if the Range header may be honoured (no If-Range, or it names this representation)."""
    value = headers.get("if-range")
    if value is None:
        return True
    value = value.strip()
    if value.startswith('"') or value.startswith("W/"):
        return etag is not None and not value.startswith("W/") and value == etag and not etag.startswith("W/")
    date = _parse_http_date(value)
    return date is not None and last_modified is not None and int(last_modified) == int(date)


# --- the response ------------------------------------------------------------------------------


class RangedResponse(Response):
    """Stream a :class:`ByteSource` as 200/206 (one or several ranges); HEAD sends headers only.

    Build it with :func:`serve`, which evaluates the request's preconditions first.
    """

    def __init__(
        self,
        source: ByteSource,
        *,
        status_code: int,
        headers: dict[str, str],
        parts: list[tuple[int, int]] | None,
        media_type: str,
        head: bool,
        background: BackgroundTask | None = None,
    ) -> None:
        self.source = source
        self.status_code = status_code
        self.media_type = media_type
        self.background = background
        self.head = head
        self.body = b""
        total = source.size
        if parts is None:
            self._plan: list[tuple[bytes, int, int]] = [(b"", 0, total)]
            length = total
            content_type = media_type
        elif len(parts) == 1:
            a, b = parts[0]
            self._plan = [(b"", a, b - a + 1)]
            length = b - a + 1
            headers["Content-Range"] = f"bytes {a}-{b}/{total}"
            content_type = media_type
        else:
            boundary = secrets.token_hex(16)
            self._plan = []
            length = 0
            for i, (a, b) in enumerate(parts):
                head_bytes = (
                    ("\r\n" if i else "")
                    + f"--{boundary}\r\nContent-Type: {media_type}\r\nContent-Range: bytes {a}-{b}/{total}\r\n\r\n"
                ).encode("latin-1")
                self._plan.append((head_bytes, a, b - a + 1))
                length += len(head_bytes) + b - a + 1
            tail = f"\r\n--{boundary}--\r\n".encode("latin-1")
            self._plan.append((tail, 0, 0))
            length += len(tail)
            content_type = f"multipart/byteranges; boundary={boundary}"
        headers["Content-Length"] = str(length)
        headers["Content-Type"] = content_type
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            await self._respond(scope, receive, send)
        finally:
            if self.background is not None:
                with anyio.CancelScope(shield=True):
                    await self.background()

    async def _respond(self, scope: Scope, receive: Receive, send: Send) -> None:
        error: Exception | None = None
        if self.head or all(length == 0 and not prefix for prefix, _s, length in self._plan):
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        else:
            async with anyio.create_task_group() as tg:

                async def watch_disconnect() -> None:
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            tg.cancel_scope.cancel()
                            return

                tg.start_soon(watch_disconnect)
                try:
                    await self._stream(send)
                except Exception as e:  # re-raised below, unwrapped from the task group
                    error = e
                finally:
                    tg.cancel_scope.cancel()
            if error is not None:
                # Headers are gone: the only honest thing left is to cut the connection short.
                log.warning("download aborted: %s", error)
                raise error

    async def _stream(self, send: Send) -> None:
        reader = await anyio.to_thread.run_sync(self.source.open)
        try:
            for prefix, start, length in self._plan:
                if prefix:
                    await send({"type": "http.response.body", "body": prefix, "more_body": True})
                if not length:
                    continue
                chunks = reader.read(start, length)
                while True:
                    chunk = await anyio.to_thread.run_sync(next, chunks, None)
                    if chunk is None:
                        break
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(reader.close)


def serve(
    method: str,
    headers: Mapping[str, str],
    source: ByteSource,
    *,
    filename: str,
    media_type: str = "application/octet-stream",
    disposition: str = "attachment",
    etag: str | None = None,
    last_modified: float | None = None,
    extra_headers: Mapping[str, str] | None = None,
    background: BackgroundTask | None = None,
) -> Response:
    """The response to a GET or HEAD of ``source``: 200, 206, 304, 412 or 416.

    ``headers`` are the request's (lower-case names, as Starlette gives them).
    """
    ranged = method in ("GET", "HEAD")  # Range is defined for GET only (and HEAD mirrors GET)
    common: dict[str, str] = {"Cache-Control": "private, no-cache"}
    if ranged:
        common["Accept-Ranges"] = "bytes"
    if etag:
        common["ETag"] = etag
    if last_modified is not None:
        common["Last-Modified"] = http_date(dt.datetime.fromtimestamp(last_modified, dt.UTC))
    if extra_headers:
        common.update(extra_headers)
    status = precondition_status(method, headers, etag, last_modified)
    if status == 304:
        return Response(status_code=304, headers=common)
    if status == 412:
        return Response(
            content=b'{"detail":"Precondition failed"}',
            status_code=412,
            media_type="application/json",
            headers=common,
        )
    common["Content-Disposition"] = content_disposition(clean_header_name(filename), disposition)
    parts = None
    if ranged and "range" in headers and if_range_allows(headers, etag, last_modified):
        parts = parse_range(headers.get("range"), source.size)
        if parts is not None and not parts:
            return Response(
                content=b'{"detail":"Requested range not satisfiable"}',
                status_code=416,
                media_type="application/json",
                headers={**common, "Content-Range": f"bytes */{source.size}"},
            )
    return RangedResponse(
        source,
        status_code=206 if parts else 200,
        headers=common,
        parts=parts,
        media_type=media_type,
        head=method == "HEAD",
        background=background,
    )


def clean_header_name(name: str) -> str:
    """A download name safe to put in a header: no control characters, no path, never empty."""
    cleaned = "".join(ch for ch in name if ch >= " " and ch != "\x7f")
    cleaned = cleaned.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return cleaned or "download"
