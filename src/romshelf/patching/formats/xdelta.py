"""xdelta3 / VCDIFF (RFC 3284), through Debian's ``xdelta3`` tool.

``xdelta3 -d -c -s ROM PATCH`` writes the output to a pipe; romshelf copies it to the output
file and stops the tool as soon as the output passes the size limit (so a hostile patch cannot
fill the disk), or when it runs longer than the timeout. xdelta3 checks the Adler-32 of each
target window when the patch carries one: if that fails (the ROM is not the patch's source),
the patch is applied again without the check and reported as not validated, which is what the
other formats do on a checksum mismatch."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

from romshelf.patching.binio import CHUNK, PatchError, PatchResult, human


class ToolMissing(PatchError):
    pass


def find_tool(xdelta3: str) -> str:
    path = shutil.which(xdelta3)
    if path is None:
        raise ToolMissing(
            f"xdelta3 is not installed on the server (needed for xdelta/VCDIFF patches; "
            f"install Debian's xdelta3 package or set ROMSHELF_XDELTA3_PATH, now {xdelta3!r})"
        )
    return path


def _run(tool: str, rom: Path, patch: Path, out: Path, max_bytes: int, timeout: float, verify: bool) -> tuple[int, str]:
    args = [tool, "-d", "-c", "-f"]
    if not verify:
        args.append("-n")
    args += ["-s", str(rom), str(patch)]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = proc.stdout, proc.stderr
    assert stdout is not None and stderr is not None
    tail = bytearray()

    def drain_stderr() -> None:  # keep the tool from blocking on a full pipe; keep the last words
        while data := stderr.read(4096):
            tail.extend(data)
            del tail[:-8192]

    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        proc.kill()

    err_thread = threading.Thread(target=drain_stderr, daemon=True)
    err_thread.start()
    timer = threading.Timer(timeout, kill)
    timer.start()
    written = 0
    try:
        with open(out, "wb") as fo:
            while data := stdout.read1(CHUNK):  # type: ignore[attr-defined]
                written += len(data)
                if written > max_bytes:
                    raise PatchError(f"xdelta patch output is larger than the limit of {human(max_bytes)}")
                fo.write(data)
        code = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stdout.close()
        err_thread.join(5)
        stderr.close()
    if timed_out.is_set():
        raise PatchError(f"xdelta3 took longer than {timeout:g} s to apply the patch; stopped")
    return code, bytes(tail).decode("utf-8", "replace").strip()


def apply(
    rom: Path, patch: Path, out: Path, max_bytes: int, *, xdelta3: str = "xdelta3", timeout: float = 300
) -> PatchResult:
    tool = find_tool(xdelta3)
    code, message = _run(tool, rom, patch, out, max_bytes, timeout, verify=True)
    validated = True
    notes: list[str] = []
    if code != 0 and "checksum mismatch" in message:
        validated = False
        notes.append("target window checksum mismatch (the ROM is not the patch's source)")
        code, message = _run(tool, rom, patch, out, max_bytes, timeout, verify=False)
    if code != 0:
        last = message.splitlines()[-1] if message else f"exit status {code}"
        last = last.removeprefix("xdelta3: ")
        raise PatchError(f"xdelta3 could not apply the patch: {last}")
    return PatchResult("xdelta/VCDIFF", validated, os.path.getsize(out), notes)
