"""The multipart body of the save/state uploads (``saveFile`` / ``stateFile``, ``screenshotFile``,
and optionally the query parameters as form fields), streamed: python-multipart's parser fed
from ``request.stream()``, each file part going straight into a staged upload in the assets
store (:class:`romshelf.saves.service.IncomingWriter`: hashed on the way, size limit enforced
while streaming). Nothing is buffered whole; a failed request leaves no staged file behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio
from starlette.requests import Request

from romshelf.core import multipart
from romshelf.core.context import AppContext
from romshelf.core.errors import BadRequest, PayloadTooLarge
from romshelf.core.multipart import PartHandler
from romshelf.saves import service
from romshelf.saves.service import IncomingWriter, Upload

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


class _State(PartHandler):
    """File parts go to staged uploads; the parser callbacks only queue bytes (no disk access:
    that happens in :meth:`flush`, in a worker thread)."""

    text_fields = TEXT_FIELDS

    def __init__(self, ctx: AppContext, file_fields: dict[str, str], *, defer: bool) -> None:
        super().__init__()
        self.ctx = ctx
        self.file_fields = file_fields
        self.defer = defer
        self.form = AssetForm(fields=self.fields)
        self.parts: list[_Part] = []
        self.pending: list[tuple[_Part, bytes]] = []
        self.pending_size = 0
        self.finished: list[_Part] = []

    def begin_file(self, name: str, filename: bytes) -> bool:
        if name not in self.file_fields:
            return False
        if any(p.name == name for p in self.parts):
            self.error = BadRequest(f"Send one {name}, not several")
            return False
        self.parts.append(_Part(name, filename.decode("utf-8", "replace"), self.file_fields[name]))
        return True

    def file_data(self, data: bytes) -> None:
        self.pending.append((self.parts[-1], data))
        self.pending_size += len(data)

    def end_file(self) -> None:
        self.finished.append(self.parts[-1])

    def should_flush(self) -> bool:
        """Stage as the body streams once it is large, or (not deferring) when a part ended."""
        if self.pending_size >= FLUSH_AT:
            self.defer = False  # more than it said: stage as it streams
            return True
        return bool(self.finished) and not self.defer

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
    boundary = multipart.boundary_of(request)
    if boundary is None:
        return AssetForm()
    state = _State(ctx, file_fields, defer=defer)
    try:
        await multipart.feed(request, state, boundary, flush=state.flush, flush_when=state.should_flush)
        if state.defer:
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
