"""The one typed configuration object.

Every setting is read from an environment variable ``ROMSHELF_<NAME>`` (or passed explicitly in
code and tests). A ``Settings`` instance is created once by the entry point (CLI, app factory,
test fixture) and passed down; nothing reads the environment anywhere else.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

GiB = 1024**3
MiB = 1024**2

# The two Pokémon generation-1 ROMs pkmnapi accepts as "valid" (Red, Blue).
DEFAULT_GEN1_HASHES = ("3d45c1ee9abd5738df46d2bdda8b57dc", "50927e843568814f7ed45ec4f944bd8b")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROMSHELF_", extra="ignore", validate_default=True)

    # --- where things live -------------------------------------------------------------------
    data_dir: Path = Path("./romshelf-data")
    library_dir: Path | None = None  # default: <data_dir>/library
    assets_dir: Path | None = None  # saves, states, screenshots; default: <data_dir>/assets
    resources_dir: Path | None = None  # covers and other generated media; default: <data_dir>/resources
    tmp_dir: Path | None = None  # upload chunks, patch work; default: <data_dir>/tmp
    database_url: str | None = None  # default: sqlite:///<data_dir>/romshelf.db

    # --- HTTP ------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    public_url: str | None = None  # e.g. https://games.example.org; used for absolute links
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_json: bool = False
    auto_migrate: bool = True  # run Alembic migrations at start-up

    # --- auth ------------------------------------------------------------------------------
    secret_key: str | None = None  # default: generated once and kept in <data_dir>/secret.key
    access_token_expire_seconds: int = Field(default=1800, ge=30)
    refresh_token_expire_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    session_expire_seconds: int = Field(default=14 * 24 * 3600, ge=60)
    session_cookie_secure: bool = False  # set true behind HTTPS
    max_client_tokens_per_user: int = Field(default=25, ge=1)
    # argon2id with OWASP's 19 MiB / 2 passes / 1 lane profile: strong, and a burst of logins on a
    # small box costs 19 MiB each instead of argon2-cffi's default 64 MiB.
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_cost_kib: int = Field(default=19456, ge=64)
    basic_auth_cache_seconds: int = Field(default=60, ge=0)  # skip re-hashing a known-good password
    # `romshelf serve` on an empty database creates user "admin" with this password, or with a
    # generated one written to <data_dir>/initial-admin-password. Set init_admin=false to skip.
    init_admin: bool = True
    initial_admin_password: str | None = None

    # --- library, uploads, downloads, patching ------------------------------------------------
    upload_max_chunk_bytes: int = Field(default=64 * MiB, ge=1)
    upload_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    single_upload_max_bytes: int = Field(default=512 * MiB, ge=1)
    patch_max_bytes: int = Field(default=4 * GiB, ge=1)
    xdelta3_path: str = "xdelta3"

    # --- saves, states, devices ---------------------------------------------------------------
    max_asset_upload_bytes: int = Field(default=512 * MiB, ge=0)  # per save/state/screenshot file; 0 = no limit
    max_autocleanup_limit: int = Field(default=100, ge=1)  # upper clamp of POST /api/saves autocleanup_limit
    user_quota_bytes: int = Field(default=0, ge=0)  # per-user saves+states+screenshots bytes; 0 = off
    # Device pairing (/api/auth/device): how long a request lives, the poll interval a device is
    # told to keep, and per-client-IP request limits (per process; 0 = no limit).
    device_pairing_ttl_seconds: int = Field(default=600, ge=30)
    device_pairing_interval_seconds: int = Field(default=5, ge=1)
    device_pairing_init_per_minute: int = Field(default=10, ge=0)
    device_pairing_poll_per_minute: int = Field(default=60, ge=0)

    # --- pkmnapi /v1 --------------------------------------------------------------------------
    v1_max_rom_bytes: int = Field(default=8 * MiB, ge=0x150)
    gen1_hashes: Annotated[tuple[str, ...], NoDecode] = DEFAULT_GEN1_HASHES
    v1_open_signup: bool = False

    # --- background jobs ------------------------------------------------------------------
    redis_url: str | None = None  # set to use Redis for jobs (many replicas); default: SQLite queue
    jobs_immediate: bool = False  # run jobs inline (tests); never set in production

    # --- patching (issue 5) -------------------------------------------------------------------
    patch_timeout_seconds: float = Field(default=300, gt=0)  # xdelta3 runs longer than this are stopped
    patch_max_concurrency: int = Field(default=2, ge=1)  # patches applied at once per process

    # --- issue 3: library, scans, jobs --------------------------------------------------------
    jobs_workers: int = Field(default=1, ge=0)  # job consumer threads inside each `romshelf serve`
    jobs_queue_name: str = "romshelf"  # huey queue name (Redis key prefix): one per deployment

    # --- issue 4: ROMs API ----------------------------------------------------------------
    cover_max_bytes: int = Field(default=20 * MiB, ge=1)  # uploaded cover artwork
    rom_list_cache_mb: int = Field(default=64, ge=0)  # per-process cache of list id/char indexes; 0 = off

    @field_validator("gen1_hashes", mode="before")
    @classmethod
    def _split_hashes(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(h.strip().lower() for h in value.replace(",", " ").split() if h.strip())
        return value

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        self.data_dir = Path(self.data_dir).expanduser()
        if self.library_dir is None:
            self.library_dir = self.data_dir / "library"
        if self.assets_dir is None:
            self.assets_dir = self.data_dir / "assets"
        if self.resources_dir is None:
            self.resources_dir = self.data_dir / "resources"
        if self.tmp_dir is None:
            self.tmp_dir = self.data_dir / "tmp"
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'romshelf.db').resolve()}"
        return self

    # Typed accessors for the derived paths (never None after validation).
    @property
    def library_path(self) -> Path:
        assert self.library_dir is not None
        return self.library_dir

    @property
    def assets_path(self) -> Path:
        assert self.assets_dir is not None
        return self.assets_dir

    @property
    def resources_path(self) -> Path:
        assert self.resources_dir is not None
        return self.resources_dir

    @property
    def tmp_path(self) -> Path:
        assert self.tmp_dir is not None
        return self.tmp_dir

    @property
    def db_url(self) -> str:
        assert self.database_url is not None
        return self.database_url

    def ensure_dirs(self) -> None:
        for path in (self.data_dir, self.library_path, self.assets_path, self.resources_path, self.tmp_path):
            path.mkdir(parents=True, exist_ok=True)

    def resolved_secret_key(self) -> str:
        """The signing key for tokens: configured, or generated once and kept in the data dir.

        Several replicas must share one key: set ``ROMSHELF_SECRET_KEY`` for them.
        """
        if self.secret_key:
            return self.secret_key
        key_file = self.data_dir / "secret.key"
        if key_file.exists():
            self.secret_key = key_file.read_text().strip()
            return self.secret_key
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        tmp = key_file.with_suffix(".tmp")
        tmp.write_text(key)
        tmp.chmod(0o600)
        try:
            # link() refuses to overwrite: if another process won the race, use its key.
            os.link(tmp, key_file)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        self.secret_key = key_file.read_text().strip()
        return self.secret_key
