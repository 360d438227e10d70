"""``romshelf pkmnapi ...``: maintenance of the /v1 workspace."""

from __future__ import annotations

from typing import Annotated

import typer

pkmnapi_app = typer.Typer(help="The pkmnapi /v1 workspace.", no_args_is_help=True)


@pkmnapi_app.command("sweep")
def sweep(
    older_than: Annotated[float, typer.Option(help="Remove unfinished uploads older than this (seconds)")] = 3600.0,
) -> None:
    """Remove unfinished uploads, ROM data no workspace uses, and stored files without a row
    (also done at every start-up)."""
    from romshelf.cli import _ctx
    from romshelf.pkmnapi import service

    ctx = _ctx()
    try:
        report = service.sweep(ctx, incoming_older_than=older_than)
    finally:
        ctx.close()
    print(f"removed {report.incoming} unfinished uploads, {report.rom_data} unused ROM data rows, {report.files} files")


def register(app: typer.Typer) -> None:
    app.add_typer(pkmnapi_app, name="pkmnapi")
