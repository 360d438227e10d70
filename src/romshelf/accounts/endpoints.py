"""HTTP surface of accounts: /api/token, /api/login, /api/logout, /api/users, /api/client-tokens."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

from fastapi import Depends, Form, Request, Response, status
from sqlalchemy.orm import Session

from romshelf.accounts import service
from romshelf.accounts.dependencies import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Principal,
    get_principal,
    passwords_of,
    require,
    signer_of,
)
from romshelf.accounts.models import User
from romshelf.accounts.schemas import (
    ClientTokenCreatePayload,
    ClientTokenCreateSchema,
    ClientTokenSchema,
    MessageResponse,
    TokenResponse,
    UserCreate,
    UserSchema,
)
from romshelf.accounts.scopes import Role, Scope
from romshelf.core.context import AppContext, app_ctx, get_db
from romshelf.core.errors import BadRequest, Forbidden, NotAuthenticated, NotFound
from romshelf.core.routing import APIRouter

router = APIRouter(prefix="/api", tags=["auth"])
users_router = APIRouter(prefix="/api/users", tags=["users"])
tokens_router = APIRouter(prefix="/api/client-tokens", tags=["client-tokens"])

Db = Annotated[Session, Depends(get_db)]
Ctx = Annotated[AppContext, Depends(app_ctx)]
MAX_FIELD = 4096


# --- OAuth2 token endpoint -------------------------------------------------------------------


@router.post("/token", response_model=TokenResponse, response_model_exclude_none=True)
def token(
    request: Request,
    ctx: Ctx,
    db: Db,
    grant_type: Annotated[str, Form(max_length=64)] = "password",
    scope: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    username: Annotated[str | None, Form(max_length=255)] = None,
    password: Annotated[str | None, Form(max_length=1024)] = None,
    client_id: Annotated[str | None, Form(max_length=255)] = None,
    client_secret: Annotated[str | None, Form(max_length=255)] = None,
    refresh_token: Annotated[str | None, Form(max_length=MAX_FIELD)] = None,
) -> dict[str, Any]:
    """OAuth2 token endpoint: ``password``, ``refresh_token`` and ``client_credentials`` grants.

    Without ``scope`` a token gets all of the user's scopes; with it, exactly those (all must be
    the user's, else 403 "Insufficient scope"). Refresh tokens are single use: each refresh
    returns a new pair, and replaying an old refresh token revokes the whole chain.
    """
    settings, signer = ctx.settings, signer_of(ctx)
    if grant_type == "password":
        pair = service.password_grant(
            db, passwords_of(ctx), signer, settings, username=username, password=password, scope=scope
        )
    elif grant_type == "refresh_token":
        pair = service.refresh_grant(db, signer, settings, refresh_token=refresh_token, scope=scope)
    elif grant_type == "client_credentials":
        if not client_id and not client_secret:
            client_id, client_secret = _basic_client_credentials(request)
        pair = service.client_credentials_grant(
            db, signer, settings, client_id=client_id, client_secret=client_secret, scope=scope
        )
    else:
        raise BadRequest("Invalid or unsupported grant type")
    return pair.as_response()


def _basic_client_credentials(request: Request) -> tuple[str | None, str | None]:
    """RFC 6749 §2.3.1: a client may send its id and secret as HTTP Basic credentials."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None, None
    try:
        cid, _, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise BadRequest("Invalid client credentials header") from None
    return cid, secret


# --- browser session ----------------------------------------------------------------------


@router.post("/login", response_model=MessageResponse)
def login(
    request: Request,
    response: Response,
    ctx: Ctx,
    db: Db,
    username: Annotated[str | None, Form(max_length=255)] = None,
    password: Annotated[str | None, Form(max_length=1024)] = None,
) -> dict[str, str]:
    """Start a browser session from HTTP Basic credentials (or form fields): sets the
    ``romshelf_session`` cookie (HttpOnly) and the ``romshelf_csrftoken`` cookie, whose value must
    be sent back in the ``x-csrftoken`` header on unsafe requests authenticated by the cookie."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise NotAuthenticated("Invalid authorization header") from None
        username, _, password = decoded.partition(":")
    if not username or not password:
        raise BadRequest("Missing username or password")
    user = service.authenticate_password(db, passwords_of(ctx), username, password)
    raw, csrf = service.create_web_session(db, ctx.settings, user)
    max_age = ctx.settings.session_expire_seconds
    secure = ctx.settings.session_cookie_secure
    response.set_cookie(SESSION_COOKIE, raw, max_age=max_age, httponly=True, samesite="lax", secure=secure, path="/")
    response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, httponly=False, samesite="lax", secure=secure, path="/")
    return {"msg": "Successfully logged in"}


@router.post("/logout", response_model=MessageResponse)
def logout(request: Request, response: Response, db: Db) -> dict[str, str]:
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        service.end_web_session(db, raw)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return {"msg": "Successfully logged out"}


# --- users ----------------------------------------------------------------------------------


@users_router.get("/me", response_model=UserSchema)
def get_me(db: Db, principal: Principal = require(Scope.ME_READ)) -> UserSchema:
    user = db.get(User, principal.user_id)
    if user is None:
        raise NotAuthenticated()
    return UserSchema.of(user, current_device_id=principal.device_id)


@users_router.get("", response_model=list[UserSchema])
def list_users(db: Db, _: Principal = require(Scope.USERS_READ)) -> list[UserSchema]:
    from sqlalchemy import select

    return [UserSchema.of(u) for u in db.scalars(select(User).order_by(User.id))]


@users_router.get("/identifiers", response_model=list[int])
def user_identifiers(db: Db, _: Principal = require(Scope.USERS_READ)) -> list[int]:
    from sqlalchemy import select

    return list(db.scalars(select(User.id).order_by(User.id)))


@users_router.post("", response_model=UserSchema, status_code=status.HTTP_201_CREATED)
def add_user(request: Request, payload: UserCreate, ctx: Ctx, db: Db) -> UserSchema:
    """Create a user. While no user exists this is open and creates the first admin (set-up);
    afterwards it needs ``users.write``."""
    with ctx.db.lock("accounts:first-user"):  # two set-up requests at once: one admin, one 401
        if service.count_users(db) == 0:
            user = service.create_user(
                db,
                passwords_of(ctx),
                username=payload.username,
                password=payload.password,
                email=payload.email,
                role=Role.ADMIN,
            )
            return UserSchema.of(user)
        db.rollback()
    principal = get_principal(request)
    if principal is None:
        raise NotAuthenticated()
    if not principal.has(Scope.USERS_WRITE):
        raise Forbidden()
    user = service.create_user(
        db,
        passwords_of(ctx),
        username=payload.username,
        password=payload.password,
        email=payload.email,
        role=payload.role,
    )
    return UserSchema.of(user)


@users_router.get("/{id}", response_model=UserSchema)
def get_user(id: int, db: Db, _: Principal = require(Scope.USERS_READ)) -> UserSchema:
    user = db.get(User, id)
    if user is None:
        raise NotFound(f"User with id {id} not found")
    return UserSchema.of(user)


@users_router.put("/{id}", response_model=UserSchema)
def update_user(
    id: int,
    ctx: Ctx,
    db: Db,
    principal: Principal = require(Scope.ME_WRITE),
    username: Annotated[str | None, Form(max_length=255)] = None,
    password: Annotated[str | None, Form(max_length=1024)] = None,
    email: Annotated[str | None, Form(max_length=255)] = None,
    role: Annotated[str | None, Form(max_length=20)] = None,
    enabled: Annotated[bool | None, Form()] = None,
    ra_username: Annotated[str | None, Form(max_length=255)] = None,
    ui_settings: Annotated[str | None, Form(max_length=65536)] = None,
) -> UserSchema:
    """Edit a user (form fields). Users may edit their own name, password, email and settings;
    changing role or enabled, or anyone else, needs ``users.write``."""
    is_admin = principal.has(Scope.USERS_WRITE)
    if id != principal.user_id and not is_admin:
        raise Forbidden()
    user = db.get(User, id)
    if user is None:
        raise NotFound(f"User with id {id} not found")
    changes: dict[str, Any] = {}
    for key, value in (("username", username), ("password", password), ("email", email), ("ra_username", ra_username)):
        if value is not None:
            changes[key] = value
    if role is not None or enabled is not None:
        if not is_admin:
            raise Forbidden("Only an admin can change roles or enable/disable users")
        if id == principal.user_id and (enabled is False or (role is not None and role != Role.ADMIN)):
            raise BadRequest("You cannot disable or demote your own account")
        changes["role"], changes["enabled"] = role, enabled
    if ui_settings is not None:
        try:
            parsed = json.loads(ui_settings)
        except ValueError:
            raise BadRequest("ui_settings must be a JSON object") from None
        if not isinstance(parsed, dict):
            raise BadRequest("ui_settings must be a JSON object")
        changes["ui_settings"] = parsed
    return UserSchema.of(service.update_user(db, passwords_of(ctx), user, changes))


@users_router.delete("/{id}", response_model=MessageResponse)
def delete_user(id: int, db: Db, principal: Principal = require(Scope.USERS_WRITE)) -> dict[str, str]:
    service.delete_user(db, principal.user_id, id)
    return {"msg": "User successfully deleted"}


# --- client API tokens ----------------------------------------------------------------------


@tokens_router.post("", response_model=ClientTokenCreateSchema, status_code=status.HTTP_201_CREATED)
def create_token(
    payload: ClientTokenCreatePayload, ctx: Ctx, db: Db, principal: Principal = require(Scope.ME_WRITE)
) -> ClientTokenCreateSchema:
    user = db.get(User, principal.user_id)
    if user is None:
        raise NotAuthenticated()
    token, raw = service.create_client_token(
        db, ctx.settings, user, name=payload.name, scopes=payload.scopes, expires_in=payload.expires_in
    )
    return ClientTokenCreateSchema(**ClientTokenSchema.of(token).model_dump(), raw_token=raw)


@tokens_router.get("", response_model=list[ClientTokenSchema])
def list_tokens(db: Db, principal: Principal = require(Scope.ME_READ)) -> list[ClientTokenSchema]:
    return [ClientTokenSchema.of(t) for t in service.list_client_tokens(db, principal.user_id)]


@tokens_router.get("/all", response_model=list[ClientTokenSchema])
def list_all_tokens(db: Db, _: Principal = require(Scope.USERS_READ)) -> list[ClientTokenSchema]:
    return [ClientTokenSchema.of(t) for t in service.list_client_tokens(db)]


@tokens_router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_token(token_id: int, db: Db, principal: Principal = require(Scope.ME_WRITE)) -> Response:
    service.revoke_client_token(db, service.get_own_client_token(db, principal.user_id, token_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@tokens_router.delete("/{token_id}/admin", status_code=status.HTTP_204_NO_CONTENT)
def admin_delete_token(token_id: int, db: Db, _: Principal = require(Scope.USERS_WRITE)) -> Response:
    from romshelf.accounts.models import ClientToken

    token = db.get(ClientToken, token_id)
    if token is None:
        raise NotFound("Token not found")
    service.revoke_client_token(db, token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@tokens_router.put("/{token_id}/regenerate", response_model=ClientTokenCreateSchema)
def regenerate_token(token_id: int, db: Db, principal: Principal = require(Scope.ME_WRITE)) -> ClientTokenCreateSchema:
    token = service.get_own_client_token(db, principal.user_id, token_id)
    raw = service.regenerate_client_token(db, token)
    return ClientTokenCreateSchema(**ClientTokenSchema.of(token).model_dump(), raw_token=raw)


routers = [router, users_router, tokens_router]
