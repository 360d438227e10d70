"""Streaming multipart/form-data: python-multipart's parser fed from ``request.stream()``.

Every upload endpoint that takes a multipart body (ROM uploads, patches, saves and states)
builds on :class:`PartHandler`: it keeps each part's headers, reads the text fields it is told
to (bounded), and hands file parts to the subclass, which decides where their bytes go (a
staged file, a work folder, a pull buffer). Nothing is spooled or held whole.

Push-style readers call :func:`feed`, which streams the body into the parser and turns every
client mistake (malformed body, body cut short, a field too long) into a 400.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from romshelf.core.errors import BadRequest

FIELD_LIMIT = 4096  # bytes of any one text field


def boundary_of(request: Request) -> bytes | None:
    """The boundary of a ``multipart/form-data`` body; None for any other content type;
    400 for a multipart body without one."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    ctype_s = ctype.decode("latin-1").lower() if isinstance(ctype, bytes) else str(ctype).lower()
    if ctype_s != "multipart/form-data":
        return None
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart/form-data without a boundary")
    return bytes(boundary)


def client_file_name(raw: bytes) -> str:
    """A part's file name as sent; some browsers send a whole client path: keep its last part."""
    return raw.decode("utf-8", "replace").replace("\\", "/").rsplit("/", 1)[-1]


class PartHandler:
    """python-multipart callbacks: headers collected per part, text fields read into
    :attr:`fields`, file parts passed to :meth:`begin_file` / :meth:`file_data` /
    :meth:`end_file`. The callbacks run inside ``parser.write`` and must not block; a problem
    is recorded in :attr:`error` (raised by :func:`feed` after the chunk)."""

    #: names read as text fields when sent without a file name
    text_fields: frozenset[str] = frozenset()
    field_limit = FIELD_LIMIT

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.error: Exception | None = None
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._kind = "skip"  # "text" | "file" | "skip"
        self._name = ""
        self._text = bytearray()

    # --- for subclasses ------------------------------------------------------------------------
    def begin_file(self, name: str, filename: bytes) -> bool:
        """A file part starts; True to receive its bytes. Default: ignore file parts."""
        return False

    def file_data(self, data: bytes) -> None:
        """Bytes of the current file part (a slice of the parser's buffer, copied)."""

    def end_file(self) -> None:
        """The current file part ended."""

    def stop_file(self) -> None:
        """Ignore the rest of the current file part (after setting :attr:`error`, say)."""
        self._kind = "skip"

    # --- python-multipart callbacks ----------------------------------------------------------------
    def parser(self, boundary: bytes) -> MultipartParser:
        try:
            return MultipartParser(
                boundary,
                {
                    "on_part_begin": self._on_part_begin,
                    "on_header_field": self._on_header_field,
                    "on_header_value": self._on_header_value,
                    "on_header_end": self._on_header_end,
                    "on_headers_finished": self._on_headers_finished,
                    "on_part_data": self._on_part_data,
                    "on_part_end": self._on_part_end,
                },
            )
        except ValueError:
            raise BadRequest("Invalid multipart boundary") from None

    def _on_part_begin(self) -> None:
        self._headers = {}
        self._kind = "skip"

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = b""
        self._value = b""

    def _on_headers_finished(self) -> None:
        _disp, opts = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = opts.get(b"name", b"").decode("utf-8", "replace")
        filename = opts.get(b"filename")
        if filename is not None:
            if self.begin_file(self._name, filename):
                self._kind = "file"
        elif self._name in self.text_fields:
            self._kind = "text"
            self._text = bytearray()

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._kind == "file":
            self.file_data(data[start:end])
        elif self._kind == "text":
            self._text += data[start:end]
            if len(self._text) > self.field_limit:
                self.error = BadRequest(f"{self._name} is too long")
                self._kind = "skip"

    def _on_part_end(self) -> None:
        if self._kind == "text":
            self.fields[self._name] = self._text.decode("utf-8", "replace")
        elif self._kind == "file":
            self.end_file()
        self._kind = "skip"


def write(parser: MultipartParser, handler: PartHandler, chunk: bytes) -> None:
    """Feed one chunk; a malformed body or an error a callback recorded is a 400 (or that error)."""
    try:
        parser.write(chunk)
    except Exception as e:  # python-multipart's own errors: the client's body is malformed
        raise BadRequest(f"Malformed multipart body: {e}") from None
    if handler.error is not None:
        raise handler.error


async def feed(
    request: Request,
    handler: PartHandler,
    boundary: bytes,
    *,
    flush: Callable[[], None] | None = None,
    flush_when: Callable[[], bool] = lambda: False,
) -> None:
    """Stream the whole body into ``handler``. ``flush`` (blocking disk work) runs in a worker
    thread after any chunk for which ``flush_when()`` is true; the caller flushes what is left."""
    parser = handler.parser(boundary)
    try:
        async for chunk in request.stream():
            write(parser, handler, chunk)
            if flush is not None and flush_when():
                await anyio.to_thread.run_sync(flush)
        parser.finalize()
    except ClientDisconnect:
        raise BadRequest("The request body ended early") from None
    if handler.error is not None:
        raise handler.error
