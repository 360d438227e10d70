"""Account rules: users, password checks, OAuth2 grants, client tokens and web sessions.

No HTTP here: the endpoints, the CLI and the tests call these functions with a session.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from romshelf.accounts.models import ClientToken, RefreshToken, User, WebSession
from romshelf.accounts.scopes import ALL_SCOPES, Role, coerce_role, parse_scopes, scopes_for_role
from romshelf.accounts.security import Passwords, TokenSigner, new_client_token, new_opaque_token, sha256_hex
from romshelf.config import Settings
from romshelf.core.errors import BadRequest, Conflict, Forbidden, NotAuthenticated, NotFound
from romshelf.core.timeutil import to_utc, utcnow

USERNAME_RE = re.compile(r"^[^\s/\\\x00-\x1f\x7f][^/\\\x00-\x1f\x7f]{0,254}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
MAX_PASSWORD_LENGTH = 1024
EXPIRES_IN = {"30d": 30, "90d": 90, "1y": 365}


# --- users ----------------------------------------------------------------------------------


def count_users(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(User)) or 0


def get_user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def get_user_by_username(session: Session, username: str) -> User | None:
    return session.scalar(sa.select(User).where(User.username == username))


def user_scopes(user: User) -> frozenset[str]:
    return scopes_for_role(user.role)


def validate_username(username: str) -> str:
    username = username.strip()
    if not USERNAME_RE.match(username):
        raise BadRequest("Invalid username: 1 to 255 characters, no slashes or control characters")
    return username


def validate_password(password: str) -> str:
    if not password:
        raise BadRequest("Password must not be empty")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise BadRequest(f"Password is longer than {MAX_PASSWORD_LENGTH} characters")
    return password


def validate_email(email: str | None) -> str | None:
    if email is None or email.strip() == "":
        return None
    email = email.strip()
    if len(email) > 255 or not EMAIL_RE.match(email):
        raise BadRequest(f"Invalid email address: {email}")
    return email


def validate_role(role: str) -> str:
    try:
        return coerce_role(role).value
    except ValueError:
        raise BadRequest(f"Invalid role {role!r}: use one of viewer, editor, admin") from None


def create_user(
    session: Session,
    passwords: Passwords,
    *,
    username: str,
    password: str,
    email: str | None = None,
    role: str = Role.VIEWER,
    enabled: bool = True,
) -> User:
    user = User(
        username=validate_username(username),
        hashed_password=passwords.hash(validate_password(password)),
        email=validate_email(email),
        role=validate_role(role),
        enabled=enabled,
    )
    session.add(user)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict("A user with this username or email already exists") from None
    return user


def update_user(session: Session, passwords: Passwords, user: User, changes: dict[str, Any]) -> User:
    if "username" in changes and changes["username"] is not None:
        user.username = validate_username(changes["username"])
    if changes.get("password"):
        user.hashed_password = passwords.hash(validate_password(changes["password"]))
        # A new password ends every session and refresh token of the user.
        session.execute(sa.delete(WebSession).where(WebSession.user_id == user.id))
        session.execute(sa.update(RefreshToken).where(RefreshToken.user_id == user.id).values(revoked=True))
    if "email" in changes:
        user.email = validate_email(changes["email"])
    if "role" in changes and changes["role"] is not None:
        user.role = validate_role(changes["role"])
    if "enabled" in changes and changes["enabled"] is not None:
        user.enabled = bool(changes["enabled"])
    if "ra_username" in changes:
        user.ra_username = changes["ra_username"] or None
    if "ui_settings" in changes and changes["ui_settings"] is not None:
        user.ui_settings = changes["ui_settings"]
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict("A user with this username or email already exists") from None
    return user


def delete_user(session: Session, actor_id: int, user_id: int) -> None:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"User with id {user_id} not found")
    if user.id == actor_id:
        raise BadRequest("You cannot delete your own account")
    if user.role == Role.ADMIN:
        admins = (
            session.scalar(
                sa.select(sa.func.count()).select_from(User).where(User.role == Role.ADMIN, User.enabled.is_(True))
            )
            or 0
        )
        if admins <= 1:
            raise BadRequest("Cannot delete the last admin")
    session.delete(user)
    session.commit()


def authenticate_password(session: Session, passwords: Passwords, username: str, password: str) -> User:
    """The enabled user with these credentials; 401 for wrong ones, 403 for a disabled account."""
    user = get_user_by_username(session, username)
    if not passwords.verify(user.hashed_password if user else None, password) or user is None:
        raise NotAuthenticated("Invalid username or password")
    if not user.enabled:
        raise Forbidden("User account is disabled")
    return user


# --- OAuth2 grants ---------------------------------------------------------------------------


@dataclass
class TokenPair:
    access_token: str
    expires: int
    refresh_token: str | None = None
    refresh_expires: int | None = None

    def as_response(self) -> dict[str, Any]:
        body: dict[str, Any] = {"access_token": self.access_token, "token_type": "bearer", "expires": self.expires}
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
            body["refresh_expires"] = self.refresh_expires
        return body


def grant_scopes(requested: str | None, allowed: frozenset[str]) -> list[str]:
    """The scopes a new token carries: the requested ones (all of them must be allowed), or every
    allowed scope when none are requested. Unknown scope names are a 400."""
    wanted = parse_scopes(requested)
    unknown = [s for s in wanted if s not in ALL_SCOPES]
    if unknown:
        raise BadRequest(f"Unknown scope: {' '.join(unknown)}")
    if not wanted:
        return sorted(allowed)
    if not set(wanted) <= allowed:
        raise Forbidden("Insufficient scope")
    return wanted


def _access_token(
    signer: TokenSigner, settings: Settings, user: User, scopes: list[str], extra: dict[str, Any] | None = None
) -> str:
    claims = {"sub": str(user.id), "username": user.username, "type": "access", "scopes": " ".join(scopes)}
    if extra:
        claims.update(extra)
    return signer.encode(claims, settings.access_token_expire_seconds)


def _issue_refresh(
    session: Session, signer: TokenSigner, settings: Settings, user: User, scopes: list[str], family: str
) -> str:
    jti = uuid.uuid4().hex
    now = utcnow()
    session.add(
        RefreshToken(
            jti=jti,
            family=family,
            user_id=user.id,
            scopes=" ".join(scopes),
            expires_at=now + dt.timedelta(seconds=settings.refresh_token_expire_seconds),
            created_at=now,
        )
    )
    return signer.encode({"sub": str(user.id), "type": "refresh", "jti": jti}, settings.refresh_token_expire_seconds)


def password_grant(
    session: Session,
    passwords: Passwords,
    signer: TokenSigner,
    settings: Settings,
    *,
    username: str | None,
    password: str | None,
    scope: str | None,
) -> TokenPair:
    if not username or not password:
        raise BadRequest("Missing username or password")
    user = authenticate_password(session, passwords, username, password)
    scopes = grant_scopes(scope, user_scopes(user))
    user.last_login = utcnow()
    refresh = _issue_refresh(session, signer, settings, user, scopes, family=uuid.uuid4().hex)
    session.commit()
    return TokenPair(
        _access_token(signer, settings, user, scopes),
        settings.access_token_expire_seconds,
        refresh,
        settings.refresh_token_expire_seconds,
    )


def refresh_grant(
    session: Session, signer: TokenSigner, settings: Settings, *, refresh_token: str | None, scope: str | None
) -> TokenPair:
    """Redeem a refresh token once, for a new pair (rotation).

    A refresh token presented a second time means it leaked: the whole family is revoked, so the
    thief and the owner both have to log in again.
    """
    if not refresh_token:
        raise BadRequest("Missing refresh token")
    claims = signer.decode(refresh_token, expected_type="refresh")
    if claims is None or not claims.get("jti"):
        raise NotAuthenticated("Invalid or expired refresh token")
    row = session.get(RefreshToken, claims["jti"])
    if row is None or row.revoked or to_utc(row.expires_at) <= utcnow():
        raise NotAuthenticated("Invalid or expired refresh token")
    now = utcnow()
    claimed = session.execute(
        sa.update(RefreshToken)
        .where(RefreshToken.jti == row.jti, RefreshToken.used_at.is_(None), RefreshToken.revoked.is_(False))
        .values(used_at=now)
    ).rowcount
    if claimed != 1:
        session.execute(sa.update(RefreshToken).where(RefreshToken.family == row.family).values(revoked=True))
        session.commit()
        raise NotAuthenticated("Refresh token has already been used")
    user = session.get(User, row.user_id)
    if user is None or not user.enabled:
        session.commit()
        raise NotAuthenticated("Invalid or expired refresh token")
    allowed = frozenset(parse_scopes(row.scopes)) & user_scopes(user)
    scopes = grant_scopes(scope, allowed) if scope else sorted(allowed)
    refresh = _issue_refresh(session, signer, settings, user, scopes, family=row.family)
    session.commit()
    return TokenPair(
        _access_token(signer, settings, user, scopes),
        settings.access_token_expire_seconds,
        refresh,
        settings.refresh_token_expire_seconds,
    )


def client_credentials_grant(
    session: Session,
    signer: TokenSigner,
    settings: Settings,
    *,
    client_id: str | None,
    client_secret: str | None,
    scope: str | None,
) -> TokenPair:
    """OAuth2 client credentials: a client API token (``client_secret``, with its id as
    ``client_id``) is exchanged for a short-lived access token. No refresh token (RFC 6749 §4.4.3)."""
    if not client_id or not client_secret:
        raise BadRequest("Missing client_id or client_secret")
    token = find_client_token(session, client_secret)
    if token is None or str(token.id) != client_id.strip():
        raise NotAuthenticated("Invalid client credentials")
    user = session.get(User, token.user_id)
    if user is None or not user.enabled:
        raise NotAuthenticated("Invalid client credentials")
    allowed = frozenset(parse_scopes(token.scopes)) & user_scopes(user)
    scopes = grant_scopes(scope, allowed)
    extra = {"cid": token.id}
    if token.device_id:
        extra["device_id"] = token.device_id  # type: ignore[assignment]
    return TokenPair(_access_token(signer, settings, user, scopes, extra), settings.access_token_expire_seconds)


# --- client API tokens -----------------------------------------------------------------------


def find_client_token(session: Session, raw: str) -> ClientToken | None:
    """The unexpired token row for a raw ``rmm_...`` value, else None."""
    row = session.scalar(sa.select(ClientToken).where(ClientToken.hashed_token == sha256_hex(raw)))
    if row is None:
        return None
    if row.expires_at is not None and to_utc(row.expires_at) <= utcnow():
        return None
    return row


def parse_expires_in(value: str | None) -> dt.datetime | None:
    if value is None or value == "never":
        return None
    if value in EXPIRES_IN:
        return utcnow() + dt.timedelta(days=EXPIRES_IN[value])
    raise BadRequest("expires_in must be one of 30d, 90d, 1y, never")


def create_client_token(
    session: Session,
    settings: Settings,
    user: User,
    *,
    name: str,
    scopes: list[str],
    expires_in: str | None,
    device_id: str | None = None,
) -> tuple[ClientToken, str]:
    name = name.strip()
    if not name or len(name) > 255:
        raise BadRequest("Token name must be 1 to 255 characters")
    unknown = [s for s in scopes if s not in ALL_SCOPES]
    if unknown:
        raise BadRequest(f"Unknown scope: {' '.join(unknown)}")
    if not scopes:
        raise BadRequest("A token needs at least one scope")
    if not set(scopes) <= user_scopes(user):
        raise Forbidden("Requested scopes exceed your own scopes")
    expires_at = parse_expires_in(expires_in)
    existing = (
        session.scalar(sa.select(sa.func.count()).select_from(ClientToken).where(ClientToken.user_id == user.id)) or 0
    )
    if existing >= settings.max_client_tokens_per_user:
        raise BadRequest(f"Maximum of {settings.max_client_tokens_per_user} tokens per user reached")
    raw = new_client_token()
    token = ClientToken(
        user_id=user.id,
        name=name,
        hashed_token=sha256_hex(raw),
        scopes=" ".join(dict.fromkeys(scopes)),
        expires_at=expires_at,
        device_id=device_id,
        created_at=utcnow(),
    )
    session.add(token)
    session.commit()
    return token, raw


def list_client_tokens(session: Session, user_id: int | None = None) -> list[ClientToken]:
    q = sa.select(ClientToken).order_by(ClientToken.id)
    if user_id is not None:
        q = q.where(ClientToken.user_id == user_id)
    return list(session.scalars(q))


def get_own_client_token(session: Session, user_id: int, token_id: int) -> ClientToken:
    token = session.get(ClientToken, token_id)
    if token is None or token.user_id != user_id:
        raise NotFound("Token not found")
    return token


def revoke_client_token(session: Session, token: ClientToken) -> None:
    session.delete(token)
    session.commit()


def regenerate_client_token(session: Session, token: ClientToken) -> str:
    raw = new_client_token()
    token.hashed_token = sha256_hex(raw)
    token.last_used_at = None
    session.commit()
    return raw


# --- web sessions ----------------------------------------------------------------------------


def create_web_session(session: Session, settings: Settings, user: User) -> tuple[str, str]:
    """A new session; returns (cookie value, CSRF token)."""
    raw = new_opaque_token()
    csrf = secrets.token_hex(16)
    now = utcnow()
    session.add(
        WebSession(
            id=sha256_hex(raw),
            user_id=user.id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=settings.session_expire_seconds),
        )
    )
    user.last_login = now
    session.execute(sa.delete(WebSession).where(WebSession.expires_at < now))
    session.commit()
    return raw, csrf


def find_web_session(session: Session, raw: str) -> WebSession | None:
    row = session.get(WebSession, sha256_hex(raw))
    if row is None or to_utc(row.expires_at) <= utcnow():
        return None
    return row


def end_web_session(session: Session, raw: str) -> None:
    session.execute(sa.delete(WebSession).where(WebSession.id == sha256_hex(raw)))
    session.commit()
