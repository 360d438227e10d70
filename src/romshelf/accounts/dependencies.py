"""Who is calling, and may they? The authentication dependency every endpoint uses.

A request authenticates by (first match wins):

1. ``Authorization: Basic`` username and password (any request);
2. ``Authorization: Bearer rmm_...`` client API token (scopes = token's ∩ user's);
3. ``Authorization: Bearer <JWT>`` access token from ``POST /api/token`` (scopes = token's ∩ user's);
4. the ``romshelf_session`` cookie from ``POST /api/login`` (user's scopes; unsafe methods need the
   ``x-csrftoken`` header to match the ``romshelf_csrftoken`` cookie).

Use ``principal: Principal = require(Scope.ROMS_READ)`` in an endpoint's signature: no
credentials -> 401 ``{"detail": "Not authenticated"}``; missing scope -> 403 ``{"detail": "Forbidden"}``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, Request, Security
from fastapi.security import HTTPBasic, OAuth2PasswordBearer, SecurityScopes

from romshelf.accounts import service
from romshelf.accounts.models import ClientToken, User
from romshelf.accounts.scopes import ALL_SCOPES, Role, parse_scopes, scopes_for_role
from romshelf.accounts.security import CLIENT_TOKEN_PREFIX, Passwords, TokenSigner, sha256_hex
from romshelf.core.context import SAFE_METHODS, AppContext, get_ctx
from romshelf.core.errors import Forbidden, NotAuthenticated
from romshelf.core.timeutil import to_utc, utcnow

log = logging.getLogger("romshelf.auth")

SESSION_COOKIE = "romshelf_session"
CSRF_COOKIE = "romshelf_csrftoken"
CSRF_HEADER = "x-csrftoken"
LAST_USED_DEBOUNCE = dt.timedelta(minutes=1)

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/token", auto_error=False, scopes={s: s for s in sorted(ALL_SCOPES)})
basic_scheme = HTTPBasic(auto_error=False, description="Username and password on any request")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: a plain snapshot, safe to use after the auth session closed."""

    user_id: int
    username: str
    role: str
    scopes: frozenset[str]
    method: str  # "basic" | "client_token" | "jwt" | "session"
    client_token_id: int | None = None
    device_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def has(self, *scopes: str) -> bool:
        return self.scopes.issuperset(scopes)


AuthHook = Callable[[AppContext, "Principal"], None]
_auth_hooks: list[AuthHook] = []


def on_authenticated(hook: AuthHook) -> AuthHook:
    """Register ``hook(ctx, principal)`` to run once per authenticated request.

    Lets a domain above accounts react to who is calling (the devices domain records when a
    device-bound token was last used) without accounts importing it. Hooks must be cheap and
    must not raise; an exception is logged and ignored.
    """
    _auth_hooks.append(hook)
    return hook


def passwords_of(ctx: AppContext) -> Passwords:
    p = ctx.extras.get("passwords")
    if p is None:
        p = ctx.extras["passwords"] = Passwords(ctx.settings)
    return p  # type: ignore[no-any-return]


def signer_of(ctx: AppContext) -> TokenSigner:
    s = ctx.extras.get("signer")
    if s is None:
        s = ctx.extras["signer"] = TokenSigner(ctx.settings)
    return s  # type: ignore[no-any-return]


def _principal(user: User, scopes: frozenset[str], method: str, **kw: Any) -> Principal:
    return Principal(
        user_id=user.id,
        username=user.username,
        role=user.role,
        scopes=scopes & service.user_scopes(user),
        method=method,
        **kw,
    )


_CLIENT_TOKEN_OWNER = (
    sa.select(
        ClientToken.id,
        ClientToken.scopes,
        ClientToken.expires_at,
        ClientToken.last_used_at,
        ClientToken.device_id,
        User.id.label("user_id"),
        User.username,
        User.role,
        User.enabled,
    )
    .join(User, User.id == ClientToken.user_id)
    .where(ClientToken.hashed_token == sa.bindparam("hashed"))
)


def authenticate_bearer(ctx: AppContext, token: str) -> Principal | None:
    """The principal for a Bearer token (client API token or access JWT), or None if invalid.

    Also used by the pkmnapi ``/v1`` surface, so one account works on both APIs.
    """
    if token.startswith(CLIENT_TOKEN_PREFIX):
        # One prebuilt Core query for token + owner (this runs on every API request), on a plain
        # connection: no ORM session is needed for it.
        with ctx.db.engine.connect() as conn:
            row = conn.execute(_CLIENT_TOKEN_OWNER, {"hashed": sha256_hex(token)}).first()
        if row is None or not row.enabled:
            return None
        if row.expires_at is not None and to_utc(row.expires_at) <= utcnow():
            return None
        principal = Principal(
            user_id=row.user_id,
            username=row.username,
            role=row.role,
            scopes=frozenset(parse_scopes(row.scopes)) & scopes_for_role(row.role),
            method="client_token",
            client_token_id=row.id,
            device_id=row.device_id,
        )
        last_used = row.last_used_at
    else:
        claims = signer_of(ctx).decode(token, expected_type="access")
        if claims is None:
            return None
        with ctx.db.read() as session:
            try:
                user = session.get(User, int(claims["sub"]))
            except (TypeError, ValueError):
                return None
            if user is None or not user.enabled:
                return None
            return _principal(
                user,
                frozenset(parse_scopes(claims.get("scopes"))),
                "jwt",
                client_token_id=claims.get("cid"),
                device_id=claims.get("device_id"),
            )
    if last_used is None or utcnow() - to_utc(last_used) > LAST_USED_DEBOUNCE:
        _touch_client_token(ctx, principal.client_token_id)
    return principal


def _touch_client_token(ctx: AppContext, token_id: int | None) -> None:
    try:
        with ctx.db.transaction() as session:
            row = session.get(ClientToken, token_id)
            if row is not None:
                row.last_used_at = utcnow()
    except Exception:  # bookkeeping only; never fail a request over it
        log.warning("could not record client token use", exc_info=True)


def _authenticate_basic(ctx: AppContext, credentials: str) -> Principal:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        username, sep, password = decoded.partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise NotAuthenticated("Invalid authorization header") from None
    if not sep:
        raise NotAuthenticated("Invalid authorization header")
    with ctx.db.read() as session:
        user = service.authenticate_password(session, passwords_of(ctx), username, password)
        return _principal(user, service.user_scopes(user), "basic")


def _authenticate_session(ctx: AppContext, request: Request, raw: str) -> Principal | None:
    with ctx.db.read() as session:
        row = service.find_web_session(session, raw)
        if row is None:
            return None
        user = session.get(User, row.user_id)
        if user is None or not user.enabled:
            return None
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent or sent != row.csrf_token:
                raise Forbidden("CSRF token missing or incorrect")
        return _principal(user, service.user_scopes(user), "session")


def get_principal(request: Request) -> Principal | None:
    """Resolve (once per request) who is calling; None when no credentials were sent.

    Credentials that were sent but are wrong are a 401, never silently anonymous.
    """
    if "principal" in request.scope.get("state", {}):
        return request.state.principal  # type: ignore[no-any-return]
    ctx = get_ctx(request)
    principal: Principal | None = None
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.strip().partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "basic" and value:
            principal = _authenticate_basic(ctx, value)
        elif scheme == "bearer" and value:
            principal = authenticate_bearer(ctx, value)
            if principal is None:
                raise NotAuthenticated("Invalid or expired token")
        else:
            raise NotAuthenticated("Unsupported authorization scheme")
    else:
        raw = request.cookies.get(SESSION_COOKIE)
        if raw:
            principal = _authenticate_session(ctx, request, raw)
    request.state.principal = principal
    if principal is not None:
        for hook in _auth_hooks:
            try:
                hook(ctx, principal)
            except Exception:  # bookkeeping only; never fail a request over it
                log.warning("auth hook %r failed", hook, exc_info=True)
    return principal


def _check(request: Request, security_scopes: SecurityScopes) -> Principal:
    principal = get_principal(request)
    if principal is None:
        raise NotAuthenticated()
    if not principal.scopes.issuperset(security_scopes.scopes):
        raise Forbidden()
    return principal


def _authenticated(
    request: Request,
    security_scopes: SecurityScopes,
    _bearer: str | None = Depends(oauth2_scheme),
    _basic: Any = Depends(basic_scheme),
) -> Principal:
    return _check(request, security_scopes)


def require(*scopes: str) -> Any:
    """Dependency: the caller must be authenticated and hold every scope given."""
    return Security(_authenticated, scopes=list(scopes))


class DeferredAuth:
    """The credential check of ``require()``, run by the endpoint inside its own thread-pool call.

    ``require()`` is a sync dependency: FastAPI runs it in the thread pool, then the endpoint
    in a second hop. On the hot read paths that hop (and its GIL hand-offs) cost as much as
    the work itself, so these endpoints call :meth:`check` first thing in their body instead:
    same checks, same 401/403 answers. A request without any credentials is refused before
    the endpoint runs, as with ``require()``.
    """

    def __init__(self, request: Request, scopes: tuple[str, ...]) -> None:
        self.request = request
        self.scopes = scopes

    def check(self) -> Principal:
        principal = get_principal(self.request)  # (resolved once per request)
        if principal is None:
            raise NotAuthenticated()
        if not principal.scopes.issuperset(self.scopes):
            raise Forbidden()
        return principal


async def _deferred_auth(
    request: Request,
    security_scopes: SecurityScopes,
    _bearer: str | None = Depends(oauth2_scheme),
    _basic: Any = Depends(basic_scheme),
) -> DeferredAuth:
    if not request.headers.get("authorization") and SESSION_COOKIE not in request.cookies:
        raise NotAuthenticated()
    auth = DeferredAuth(request, tuple(security_scopes.scopes))
    # Until the endpoint has run check(), a 422 for its parameters must not come first: the
    # error handlers run a pending check before answering one (core.errors).
    request.state.deferred_auth = auth
    return auth


def require_deferred(*scopes: str) -> Any:
    """Like ``require()`` (and documented the same way); call ``.check()`` in the endpoint."""
    return Security(_deferred_auth, scopes=list(scopes))


def optional_principal(request: Request) -> Principal | None:
    """Dependency for endpoints that also serve anonymous callers."""
    return get_principal(request)
