"""Password hashing (argon2id), signed tokens (JWT, HS256) and opaque token helpers."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from romshelf.config import Settings

CLIENT_TOKEN_PREFIX = "rmm_"  # RomM's client-token prefix; clients may recognise it
JWT_ISSUER = "romshelf"
JWT_ALGORITHM = "HS256"


class Passwords:
    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_cost_kib, parallelism=1
        )
        # A dummy hash so that "no such user" costs as much as "wrong password".
        self._dummy = self._hasher.hash(secrets.token_hex(16))
        self._cache_ttl = settings.basic_auth_cache_seconds
        self._cache: dict[str, float] = {}
        self._lock = threading.Lock()

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, hashed: str | None, password: str) -> bool:
        """Constant-ish time check; a recently verified (hash, password) pair skips the slow hash.

        HTTP Basic sends the password on every request; re-running argon2 each time would cost
        ~50 ms per request. The cache key is a SHA-256 over the stored hash and the password, so a
        changed password (new hash) never hits an old entry.
        """
        if hashed is None:
            try:
                self._hasher.verify(self._dummy, password)
            except VerificationError:
                pass
            return False
        key = ""
        if self._cache_ttl:
            key = hashlib.sha256(f"{hashed}\x00{password}".encode()).hexdigest()
            with self._lock:
                expires = self._cache.get(key)
            if expires is not None and expires > time.monotonic():
                return True
        try:
            ok = self._hasher.verify(hashed, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        if ok and self._cache_ttl:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[key] = time.monotonic() + self._cache_ttl
        return ok

    def needs_rehash(self, hashed: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(hashed)
        except InvalidHashError:
            return False


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_client_token() -> str:
    return CLIENT_TOKEN_PREFIX + secrets.token_hex(32)


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class TokenSigner:
    def __init__(self, settings: Settings) -> None:
        self._key = settings.resolved_secret_key()

    def encode(self, claims: dict[str, Any], expires_in: int) -> str:
        now = dt.datetime.now(dt.UTC)
        payload = {**claims, "iss": JWT_ISSUER, "iat": now, "exp": now + dt.timedelta(seconds=expires_in)}
        return jwt.encode(payload, self._key, algorithm=JWT_ALGORITHM)

    def decode(self, token: str, *, expected_type: str) -> dict[str, Any] | None:
        """The claims of a valid, unexpired token of the given type, else None."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[JWT_ALGORITHM],
                issuer=JWT_ISSUER,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.PyJWTError:
            return None
        if claims.get("type") != expected_type:
            return None
        return claims


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and not token.startswith(CLIENT_TOKEN_PREFIX)
