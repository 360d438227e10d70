"""The serving process: ``python -m romshelf.server`` runs uvicorn on the settings from the
environment. ``romshelf serve`` prepares the database, then execs this module."""

from __future__ import annotations

import uvicorn

from romshelf.config import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run(
        "romshelf.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        server_header=False,
        log_config=None,
        proxy_headers=True,
        timeout_keep_alive=30,
    )


if __name__ == "__main__":
    main()
