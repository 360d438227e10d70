"""The multipart body of the save/state uploads (``saveFile`` / ``stateFile``, ``screenshotFile``,
and optionally the query parameters as form fields), streamed: python-multipart's parser fed
from ``request.stream()``, each file part going straight into a staged upload in the assets
store (:class:`romshelf.saves.service.IncomingWriter`: hashed on the way, size limit enforced
while streaming). Nothing is buffered whole; a failed request leaves no staged file behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from romshelf.core.context import AppContext
from romshelf.core.errors import BadRequest, PayloadTooLarge
from romshelf.saves import service
from romshelf.saves.service import IncomingWriter, Upload

FIELD_LIMIT = 4096
FLUSH_AT = 1024 * 1024
TEXT_FIELDS = frozenset(
    {"rom_id", "emulator", "slot", "device_id", "session_id", "overwrite", "autocleanup", "autocleanup_limit"}
)


@dataclass
class AssetForm:
    files: dict[str, Upload] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    _deferred: _State | None = None

    def complete(self) -> None:
        """Stage the file parts a deferred read kept in memory (call it from a worker thread,
        with the rest of the request's work: one thread hop for the whole upload)."""
        state, self._deferred = self._deferred, None
        if state is None:
            return
        try:
            state.flush()
            if state.incomplete:  # a file part that never ended
                raise BadRequest("Malformed multipart body: a file part is incomplete")
        except BaseException:
            state.abort()
            raise

    @property
    def file_names(self) -> set[str]:
        """The file parts sent (staged or still deferred)."""
        if self._deferred is not None:
            return {p.name for p in self._deferred.parts}
        return set(self.files)

    def discard(self, ctx: AppContext) -> None:
        state, self._deferred = self._deferred, None
        if state is not None:
            state.abort()  # (its abort calls back here; _deferred is already cleared)
        service.discard(ctx, *self.files.values())
        self.files.clear()


def content_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest("Invalid Content-Length header") from None
    if value < 0:
        raise BadRequest("Invalid Content-Length header")
    return value


def check_request_size(ctx: AppContext, request: Request) -> None:
    """RomM's middleware check: the whole body's Content-Length against the asset limit."""
    limit = ctx.settings.max_asset_upload_bytes
    length = content_length(request)
    if limit and length is not None and length > limit + 64 * 1024:
        # (a little room for the multipart framing and a screenshot's headers)
        raise PayloadTooLarge(f"Request body exceeds the maximum allowed size of {limit} bytes")


@dataclass
class _Part:
    name: str
    filename: str
    label: str
    writer: IncomingWriter | None = None
    done: bool = False


class _State:
    def __init__(self, ctx: AppContext, file_fields: dict[str, str]) -> None:
        self.ctx = ctx
        self.file_fields = file_fields
        self.form = AssetForm()
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.kind = "skip"
        self.name = ""
        self.text = bytearray()
        self.parts: list[_Part] = []
        self.pending: list[tuple[_Part, bytes]] = []
        self.pending_size = 0
        self.finished: list[_Part] = []
        self.error: Exception | None = None

    # python-multipart callbacks (synchronous, no disk access: that happens in flush)
    def on_part_begin(self) -> None:
        self.headers = {}
        self.kind = "skip"

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field = b""
        self.header_value = b""

    def on_headers_finished(self) -> None:
        _disp, opts = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.name = opts.get(b"name", b"").decode("utf-8", "replace")
        filename = opts.get(b"filename")
        if self.name in self.file_fields and filename is not None:
            if any(p.name == self.name for p in self.parts):
                self.error = BadRequest(f"Send one {self.name}, not several")
                return
            self.kind = "file"
            self.parts.append(_Part(self.name, filename.decode("utf-8", "replace"), self.file_fields[self.name]))
        elif self.name in TEXT_FIELDS and filename is None:
            self.kind = "text"
            self.text = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.kind == "file":
            self.pending.append((self.parts[-1], data[start:end]))
            self.pending_size += end - start
        elif self.kind == "text":
            self.text += data[start:end]
            if len(self.text) > FIELD_LIMIT:
                self.error = BadRequest(f"{self.name} is too long")
                self.kind = "skip"

    def on_part_end(self) -> None:
        if self.kind == "text":
            self.form.fields[self.name] = self.text.decode("utf-8", "replace")
        elif self.kind == "file":
            self.finished.append(self.parts[-1])
        self.kind = "skip"

    def _writer(self, part: _Part) -> IncomingWriter:
        if part.writer is None:
            part.writer = IncomingWriter(self.ctx, part.filename, label=part.label)
        return part.writer

    def flush(self) -> None:
        """Write pending bytes to their staged files; complete the parts that ended (thread)."""
        pending, self.pending, self.pending_size = self.pending, [], 0
        for part, data in pending:
            self._writer(part).write(data)
        finished, self.finished = self.finished, []
        for part in finished:
            self.form.files[part.name] = self._writer(part).finish()
            part.done = True

    @property
    def incomplete(self) -> bool:
        return any(not p.done for p in self.parts)

    def abort(self) -> None:
        for p in self.parts:
            if p.writer is not None and not p.done:
                p.writer.abort()
        self.form.discard(self.ctx)


def is_small(request: Request) -> bool:
    """A body small enough (declared ``Content-Length`` up to 1 MiB) to be held in memory
    until it is staged: see ``defer`` of :func:`read_asset_form`."""
    try:
        length = content_length(request)
    except BadRequest:
        return False
    return length is not None and length <= FLUSH_AT


async def read_asset_form(
    ctx: AppContext, request: Request, file_fields: dict[str, str], *, defer: bool = False
) -> AssetForm:
    """Parse the request body. ``file_fields`` maps the file part names to their labels
    (``{"saveFile": "Save", "screenshotFile": "Screenshot"}``). A body that is not multipart
    holds no files (the caller decides whether one is required).

    ``defer=True`` (only for a body :func:`is_small` says is small) keeps the file bytes in
    memory and leaves the staging to :meth:`AssetForm.complete`, which the caller runs in its
    worker thread together with storing: a 32 KiB save then costs one thread hop, not three.
    Larger bodies are staged while they stream (bounded memory), whatever ``defer`` says."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    ctype_s = ctype.decode("latin-1").lower() if isinstance(ctype, bytes) else str(ctype).lower()
    if ctype_s != "multipart/form-data":
        return AssetForm()
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart/form-data without a boundary")
    state = _State(ctx, file_fields)
    try:
        parser = MultipartParser(
            boundary,
            {
                "on_part_begin": state.on_part_begin,
                "on_header_field": state.on_header_field,
                "on_header_value": state.on_header_value,
                "on_header_end": state.on_header_end,
                "on_headers_finished": state.on_headers_finished,
                "on_part_data": state.on_part_data,
                "on_part_end": state.on_part_end,
            },
        )
    except ValueError:
        raise BadRequest("Invalid multipart boundary") from None
    try:
        try:
            async for chunk in request.stream():
                try:
                    parser.write(chunk)
                except Exception as e:  # python-multipart's own errors: a malformed body
                    raise BadRequest(f"Malformed multipart body: {e}") from None
                if state.error is not None:
                    raise state.error
                if state.pending_size >= FLUSH_AT or (state.finished and not defer):
                    defer = False  # more than it said: stage as it streams
                    await anyio.to_thread.run_sync(state.flush)
            parser.finalize()
        except ClientDisconnect:
            raise BadRequest("The request body ended early") from None
        if state.error is not None:
            raise state.error
        if defer:
            state.form._deferred = state
            return state.form
        if state.pending or state.finished:
            await anyio.to_thread.run_sync(state.flush)
        if state.incomplete:  # a file part that never ended
            raise BadRequest("Malformed multipart body: a file part is incomplete")
    except BaseException:
        await anyio.to_thread.run_sync(state.abort)
        raise
    return state.form
