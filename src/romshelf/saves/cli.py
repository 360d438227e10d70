"""``romshelf saves export USER DIR`` and ``romshelf saves import USER DIR``: backups of a user's
saves and states (with their screenshots) on the command line. The work is in
:mod:`romshelf.saves.backup`; every write goes through the saves service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn

console = Console(stderr=True)
saves_app = typer.Typer(help="Back up and restore a user's saves and states.", no_args_is_help=True)


def _context() -> Any:
    from romshelf.library.cli import _context as library_context

    return library_context()


def say(message: str) -> None:
    """One line, never wrapped (paths stay copyable), no markup guessing in file names."""
    console.print(message, soft_wrap=True, highlight=False)


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB"


@saves_app.command("export")
def export(
    user: Annotated[str, typer.Argument(help="User name")],
    dest: Annotated[Path, typer.Argument(help="Folder to write (created; must be empty)")],
    rom_id: Annotated[list[int] | None, typer.Option("--rom-id", help="Only this ROM (repeatable)")] = None,
    force: Annotated[bool, typer.Option("--force", help="Write into a folder that is not empty")] = False,
) -> None:
    """Write USER's saves and states, with their screenshots, into DIR plus a manifest.json."""
    from romshelf.saves.backup import BackupError, export_saves

    ctx = _context()
    try:
        columns = (
            TextColumn("[bold]export[/bold] {task.fields[where]}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("export", total=None, where="")
            res = export_saves(
                ctx,
                user,
                dest,
                rom_ids=rom_id or None,
                force=force,
                progress=lambda where, n: bar.update(task, advance=n, where=where),
                total=lambda n: bar.update(task, total=n or 1, completed=0 if n else 1),
            )
        say(
            f"exported {res.saves} saves, {res.states} states and {res.screenshots} screenshots of {user} "
            f"({res.bytes} bytes, {_mib(res.bytes)}) to {escape(str(dest))}"
        )
        for problem in res.unreadable:
            say(f"[red]not exported[/red]: {escape(problem)}")
        if res.unreadable:
            raise typer.Exit(1)
    except BackupError as e:
        say(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(1) from None
    finally:
        ctx.close()


@saves_app.command("import")
def import_(
    user: Annotated[str, typer.Argument(help="User name")],
    src: Annotated[Path, typer.Argument(help="Folder written by `romshelf saves export`")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report; write nothing")] = False,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Replace a slotless save or state of the same name that holds other content"),
    ] = False,
) -> None:
    """Restore an export into USER's saves and states. Items already there are skipped, so a
    failed import can be retried; exits 1 if any item could not be restored."""
    from romshelf.saves.backup import BackupError, ItemReport, import_saves

    ctx = _context()
    try:
        styles = {"stored": "green", "would store": "cyan", "exists": "dim", "kept": "yellow", "failed": "red"}

        def show(r: ItemReport) -> None:
            if r.outcome in ("failed", "kept") or dry_run:
                detail = f" ({r.detail})" if r.detail else ""
                say(f"[{styles[r.outcome]}]{r.outcome}[/]: {escape(r.file + detail)}")

        res = import_saves(ctx, user, src, dry_run=dry_run, replace=replace, progress=show)
        verb = "would store" if dry_run else "stored"
        say(
            f"{'dry run: ' if dry_run else ''}{verb} {res.stored}, already there {res.exists}, "
            f"kept existing {res.kept}, failed {res.failed} ({res.bytes} bytes, {_mib(res.bytes)})"
        )
        if res.failed:
            raise typer.Exit(1)
    except BackupError as e:
        say(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(1) from None
    finally:
        ctx.close()


def register(app: typer.Typer) -> None:
    app.add_typer(saves_app, name="saves")
