"""The ``romshelf`` command line: serve, db, user, token, and each domain's own commands."""

from __future__ import annotations

import getpass
import os
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from romshelf import __version__
from romshelf.config import Settings

app = typer.Typer(help="romshelf: a self-hosted game library server.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
token_app = typer.Typer(help="Manage client API tokens.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
console = Console(stderr=True)


def _ctx():  # type: ignore[no-untyped-def]
    from romshelf.core import migrate
    from romshelf.core.context import AppContext

    ctx = AppContext.create(Settings())
    migrate.upgrade(ctx.db)
    return ctx


def fail(message: str, code: int = 1) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on [ROMSHELF_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [ROMSHELF_PORT]")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes [ROMSHELF_WORKERS]")] = None,
) -> None:
    """Run the HTTP server (migrates the database first).

    Preparation (migrations, the first admin) runs here; then this process replaces itself
    (exec) with a fresh interpreter that only serves. The server never loads Alembic nor keeps
    the memory that password hashing used, so its resident size stays small.
    """
    if host is not None:
        os.environ["ROMSHELF_HOST"] = host
    if port is not None:
        os.environ["ROMSHELF_PORT"] = str(port)
    if workers is not None:
        os.environ["ROMSHELF_WORKERS"] = str(workers)
    settings = Settings()
    from romshelf.core.logging import configure_logging

    configure_logging(settings.log_level, settings.log_json)
    settings.ensure_dirs()
    _prepare(settings)
    console.print(
        f"romshelf {__version__} on http://{settings.host}:{settings.port} "
        f"(database: {settings.db_url.split('://', 1)[0]}, data: {settings.data_dir})"
    )
    sys.stdout.flush()
    sys.stderr.flush()
    # Already migrated: the server process must not import Alembic just to find nothing to do.
    os.environ["ROMSHELF_AUTO_MIGRATE"] = "false"
    os.execv(sys.executable, [sys.executable, "-m", "romshelf.server"])


def _prepare(settings: Settings) -> None:
    """Migrate the database and, on an empty one, create the first admin."""
    from romshelf.core import migrate
    from romshelf.core.db import Database

    db = Database(settings.db_url, pool_size=1)
    try:
        if settings.auto_migrate:
            migrate.upgrade(db)
    finally:
        db.dispose()
    if settings.init_admin:
        _ensure_first_admin(settings)


def _ensure_first_admin(settings: Settings) -> None:
    """On an empty database, create the admin so a fresh install can log in at once."""
    import secrets

    from romshelf.accounts import service
    from romshelf.accounts.dependencies import passwords_of
    from romshelf.core import migrate
    from romshelf.core.context import AppContext

    ctx = AppContext.create(settings)
    try:
        migrate.upgrade(ctx.db)  # no-op when already at head
        with ctx.db.lock("accounts:first-user"), ctx.db.session() as session:
            if service.count_users(session):
                return
            password = settings.initial_admin_password
            note = ""
            if not password:
                password = secrets.token_urlsafe(12)
                path = settings.data_dir / "initial-admin-password"
                path.write_text(password + "\n")
                path.chmod(0o600)
                note = f" (also saved in {path}; change it with `romshelf user passwd admin`)"
            service.create_user(session, passwords_of(ctx), username="admin", password=password, role="admin")
            console.print(f"[bold]created user admin with password {password}[/bold]{note}")
    finally:
        ctx.close()


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply database migrations."""
    from romshelf.core import migrate
    from romshelf.core.db import Database

    db = Database(Settings().db_url)
    migrate.upgrade(db, revision)
    console.print(f"database at revision {migrate.current_revision(db)}")


@db_app.command("current")
def db_current() -> None:
    """Show the database's migration revision."""
    from romshelf.core import migrate
    from romshelf.core.db import Database

    print(migrate.current_revision(Database(Settings().db_url)) or "empty")


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        pw = sys.stdin.readline().rstrip("\r\n")
    else:
        pw = getpass.getpass("Password: ")
        if pw != getpass.getpass("Repeat password: "):
            fail("passwords do not match")
    if not pw:
        fail("empty password")
    return pw


@user_app.command("add")
def user_add(
    username: str,
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an admin")] = False,
    role: Annotated[str, typer.Option(help="viewer | editor | admin")] = "viewer",
    email: Annotated[str | None, typer.Option()] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
) -> None:
    """Create a user (prompts for the password unless --password-stdin)."""
    from romshelf.accounts import service
    from romshelf.accounts.dependencies import passwords_of
    from romshelf.core.errors import AppError

    pw = _read_password(password_stdin)
    ctx = _ctx()
    with ctx.db.session() as session:
        try:
            user = service.create_user(
                session, passwords_of(ctx), username=username, password=pw, email=email, role="admin" if admin else role
            )
        except AppError as e:
            fail(str(e.detail))
        console.print(f"created user {user.username} (id {user.id}, role {user.role})")


@user_app.command("list")
def user_list() -> None:
    """List users."""
    import sqlalchemy as sa

    from romshelf.accounts.models import User

    ctx = _ctx()
    table = Table("id", "username", "role", "enabled", "email")
    with ctx.db.read() as session:
        for u in session.scalars(sa.select(User).order_by(User.id)):
            table.add_row(str(u.id), u.username, u.role, "yes" if u.enabled else "no", u.email or "")
    Console().print(table)


@user_app.command("passwd")
def user_passwd(
    username: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
) -> None:
    """Set a user's password (ends their sessions and refresh tokens)."""
    from romshelf.accounts import service
    from romshelf.accounts.dependencies import passwords_of

    pw = _read_password(password_stdin)
    ctx = _ctx()
    with ctx.db.session() as session:
        user = service.get_user_by_username(session, username)
        if user is None:
            fail(f"no user named {username}")
        service.update_user(session, passwords_of(ctx), user, {"password": pw})
    console.print(f"password of {username} changed")


@token_app.command("create")
def token_create(
    username: str,
    name: Annotated[str, typer.Option(help="A label for the token")] = "cli",
    scopes: Annotated[str, typer.Option(help="Space-separated scopes; default: all of the user's")] = "",
    expires_in: Annotated[str, typer.Option(help="30d | 90d | 1y | never")] = "never",
) -> None:
    """Create a client API token and print it (shown once)."""
    from romshelf.accounts import service
    from romshelf.accounts.scopes import parse_scopes, sort_scopes
    from romshelf.core.errors import AppError

    ctx = _ctx()
    with ctx.db.session() as session:
        user = service.get_user_by_username(session, username)
        if user is None:
            fail(f"no user named {username}")
        wanted = parse_scopes(scopes) or sort_scopes(service.user_scopes(user))
        try:
            _token, raw = service.create_client_token(
                session, ctx.settings, user, name=name, scopes=wanted, expires_in=expires_in
            )
        except AppError as e:
            fail(str(e.detail))
    print(raw)


@token_app.command("list")
def token_list(username: Annotated[str | None, typer.Argument()] = None) -> None:
    """List client API tokens (of one user, or all)."""
    from romshelf.accounts import service

    ctx = _ctx()
    table = Table("id", "user", "name", "scopes", "expires", "last used")
    with ctx.db.read() as session:
        uid = None
        if username:
            user = service.get_user_by_username(session, username)
            if user is None:
                fail(f"no user named {username}")
            uid = user.id
        for t in service.list_client_tokens(session, uid):
            table.add_row(
                str(t.id), str(t.user_id), t.name, t.scopes, str(t.expires_at or "never"), str(t.last_used_at or "-")
            )
    Console().print(table)


@token_app.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke a client API token by id."""
    from romshelf.accounts.models import ClientToken

    ctx = _ctx()
    with ctx.db.session() as session:
        token = session.get(ClientToken, token_id)
        if token is None:
            fail(f"no token with id {token_id}")
        session.delete(token)
        session.commit()
    console.print(f"token {token_id} revoked")


def _register_domain_commands() -> None:
    """Each domain may expose ``cli.app`` (a Typer) and ``cli.NAME``; mount those present."""
    import importlib

    for domain in ("library", "patching", "saves", "pkmnapi", "roms", "downloads", "devices", "collections"):
        try:
            module = importlib.import_module(f"romshelf.{domain}.cli")
        except ModuleNotFoundError as e:
            if e.name == f"romshelf.{domain}.cli":
                continue
            raise
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_domain_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
