"""``romshelf scan`` (with a progress bar) and ``romshelf worker`` (job consumers)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

console = Console(stderr=True)


def _context() -> Any:
    from romshelf.config import Settings
    from romshelf.core import migrate
    from romshelf.core.context import AppContext
    from romshelf.core.logging import configure_logging

    settings = Settings()
    configure_logging("warning" if settings.log_level == "info" else settings.log_level, settings.log_json)
    ctx = AppContext.create(settings)
    migrate.upgrade(ctx.db)
    return ctx


def scan(
    platform: Annotated[
        list[str] | None, typer.Option("--platform", "-p", help="Only this platform folder (repeatable), e.g. gb")
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Re-read every file, not only new and changed ones")] = False,
) -> None:
    """Scan the library folder: new, changed, renamed and missing ROMs (one scan at a time)."""
    from romshelf.core import jobs
    from romshelf.core.errors import AppError
    from romshelf.library import service, tasks  # noqa: F401 - registers the scan job
    from romshelf.library.scanner import scan_is_running

    ctx = _context()
    try:
        if scan_is_running(ctx) or jobs.jobs_of(ctx).active(tasks.SCAN) is not None:
            console.print("[red]error:[/red] a scan is already running or queued")
            raise typer.Exit(1)
        queue = jobs.jobs_of(ctx)
        job = queue.create(tasks.SCAN, {"platforms": platform or [], "full": full})
        columns = (
            TextColumn("[bold]{task.fields[phase]}[/bold] {task.fields[where]}"),
            BarColumn(),
            TaskProgressColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, transient=False) as bar:
            files = bar.add_task("scan", total=None, phase="walking", where="")
            state: dict[str, Any] = {}

            def on_progress(p: dict[str, Any]) -> None:
                # The bar, size, speed and ETA follow bytes read; files done/total are in the text.
                bt = p.get("bytes_total") or 0
                done = p.get("bytes_done", 0)
                if not bt and p.get("phase") == "done":
                    bt = done = 1  # nothing needed reading: show a full bar, not an unknown one
                state.update(p)
                bar.update(
                    files,
                    total=bt or None,
                    completed=done,
                    phase=p.get("phase", ""),
                    where=f"{p.get('platform', '')} {p.get('files_done', 0)}/{p.get('files_total', 0)} files",
                )

            done = queue.execute(job.id, on_progress=on_progress)
        if done.status != jobs.FINISHED:
            console.print(f"[red]scan {done.status}:[/red] {done.error}")
            raise typer.Exit(1)
        st = done.result or {}
        console.print(
            f"{st.get('total_roms', 0)} ROMs in {st.get('total_platforms', 0)} platforms: "
            f"{st.get('new_roms', 0)} new, {st.get('changed_roms', 0)} changed, {st.get('renamed_roms', 0)} renamed, "
            f"{st.get('missing_roms', 0)} newly missing, {st.get('restored_roms', 0)} back, "
            f"{st.get('unchanged_roms', 0)} unchanged; read {st.get('files_done', 0)} files "
            f"({st.get('bytes_done', 0) / 1024 / 1024:.1f} MiB) in {state.get('elapsed_seconds', 0):.2f}s"
        )
        for err in st.get("errors", [])[:20]:
            console.print(f"[yellow]warning:[/yellow] {err}")
    except AppError as e:
        console.print(f"[red]error:[/red] {e.detail}")
        raise typer.Exit(1) from None
    finally:
        ctx.close()


def worker(
    workers: Annotated[int, typer.Option("--workers", "-w", help="Consumer threads")] = 2,
) -> None:
    """Run background job consumers (scans, housekeeping) until interrupted. Needed with a Redis
    queue when the servers run no consumers (ROMSHELF_JOBS_WORKERS=0)."""
    import romshelf.app  # noqa: F401 - every domain registers its job kinds on import
    from romshelf.core import jobs

    ctx = _context()
    queue = jobs.jobs_of(ctx)
    jobs.run_housekeeping(ctx)
    backend = "redis" if ctx.settings.redis_url else "sqlite"
    console.print(
        f"romshelf worker: {workers} consumer thread(s) on the {backend} queue {ctx.settings.jobs_queue_name!r}"
    )
    try:
        queue.consumer(workers).run()
    finally:
        ctx.close()


def register(app: typer.Typer) -> None:
    app.command("scan")(scan)
    app.command("worker")(worker)
