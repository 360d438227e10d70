"""``romshelf patch ROM PATCH -o OUT``: the server's patch engine on the command line."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("patch")
    def patch(
        rom: Annotated[Path, typer.Argument(help="The ROM to patch", exists=True, dir_okay=False, readable=True)],
        patch_file: Annotated[
            Path,
            typer.Argument(
                metavar="PATCH",
                help="IPS, UPS, BPS, PPF, APS, RUP or xdelta/VCDIFF patch",
                exists=True,
                dir_okay=False,
                readable=True,
            ),
        ],
        output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the patched ROM")],
        force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite OUTPUT if it exists")] = False,
        strict: Annotated[
            bool, typer.Option("--strict", help="Fail (exit 3) when the patch's checksums do not match the ROM")
        ] = False,
    ) -> None:
        """Apply a patch to a ROM file (format detected from the patch's contents)."""
        from rich.console import Console

        from romshelf.config import Settings
        from romshelf.core.errors import AppError
        from romshelf.patching.engine import apply_patch

        err = Console(stderr=True)
        settings = Settings()
        if output.exists() and not force:
            err.print(f"[red]error:[/red] {output} exists (use --force to overwrite)")
            raise typer.Exit(1)
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.parent / f".{output.name}.{uuid.uuid4().hex}.part"
        try:
            result = apply_patch(
                rom,
                patch_file,
                tmp,
                max_bytes=settings.patch_max_bytes,
                xdelta3=settings.xdelta3_path,
                timeout=settings.patch_timeout_seconds,
            )
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, output)
        except AppError as e:
            err.print(f"[red]error:[/red] {e.detail}")
            raise typer.Exit(2) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        state = "[green]validated[/green]" if result.validated else "[yellow]NOT validated[/yellow]"
        err.print(f"{result.format} patch applied: {output} ({result.size} bytes), checksums {state}")
        for note in result.notes:
            err.print(f"  {note}")
        if strict and not result.validated:
            raise typer.Exit(3)
