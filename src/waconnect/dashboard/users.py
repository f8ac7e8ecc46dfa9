"""Dashboard users: create, authenticate, and the server-side sessions of signed-in browsers.

Passwords are hashed with argon2id; a session is a random token whose SHA-256 is stored, so
logging out (or an expiry) ends it on the server, whatever the browser still holds.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.clock import Clock
from waconnect.dashboard.models import User, UserSession
from waconnect.web.errors import conflict, invalid, not_found

MIN_PASSWORD, MAX_PASSWORD = 8, 1000
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()

Refusal = Literal["expired", "unknown"]


@dataclass(frozen=True)
class SignedIn:
    """Who is using the dashboard: every page is scoped to this workspace."""

    user_id: int
    email: str
    workspace_id: int
    csrf_token: str


def normalize_email(raw: str) -> str:
    email = raw.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        raise invalid({"email": f"must be an email address such as admin@example.com, got {raw!r}"})
    return email


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise invalid({"password": f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long"})
    return password


def generate_password() -> str:
    """A password for a first login: 16 URL-safe characters, about 96 bits."""
    return secrets.token_urlsafe(12)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


async def _hash(password: str) -> str:
    # argon2 costs tens of milliseconds of CPU by design: keep it off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(password_hash: str, password: str) -> bool:
    try:
        return await asyncio.to_thread(_hasher.verify, password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# --- users --------------------------------------------------------------------------------------


async def create_user(
    session: AsyncSession, clock: Clock, workspace_id: int, email: str, password: str
) -> User:
    email = normalize_email(email)
    user = User(
        workspace_id=workspace_id,
        email=email,
        password_hash=await _hash(check_password(password)),
        created_at=clock.now(),
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        raise conflict(f"a user with the email {email!r} exists already") from exc
    return user


async def has_users(session: AsyncSession) -> bool:
    return bool(await session.scalar(select(func.count()).select_from(User)))


async def list_users(session: AsyncSession, workspace_id: int) -> list[User]:
    rows = await session.scalars(
        select(User).where(User.workspace_id == workspace_id).order_by(User.id)
    )
    return list(rows)


async def set_password(session: AsyncSession, email: str, password: str) -> User:
    """Give a user a new password and end all of their sessions."""
    user = await session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        raise not_found(f"user {email!r}")
    user.password_hash = await _hash(check_password(password))
    await session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    await session.flush()
    return user


async def authenticate_user(
    session: AsyncSession, clock: Clock, email: str, password: str
) -> User | None:
    """The user with this email and password, or None (the caller cannot tell which was wrong)."""
    user = await session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        # Spend the same time as a real check, so response times do not reveal which emails exist.
        await _verify(_dummy_hash(), password)
        return None
    if not await _verify(user.password_hash, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = await _hash(password)
    user.last_login_at = clock.now()
    await session.flush()
    return user


# --- sessions -----------------------------------------------------------------------------------


async def start_session(
    session: AsyncSession, clock: Clock, user: User, max_age_seconds: int
) -> str:
    """Open a session for ``user``; returns its token (for the cookie), stored only hashed."""
    now = clock.now()
    await session.execute(
        delete(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at <= now)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        UserSession(
            user_id=user.id,
            token_hash=_token_hash(token),
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + timedelta(seconds=max_age_seconds),
        )
    )
    await session.flush()
    return token


async def resume_session(session: AsyncSession, clock: Clock, token: str) -> SignedIn | Refusal:
    """The signed-in user of a session token, or why there is none."""
    row = await session.scalar(
        select(UserSession).where(UserSession.token_hash == _token_hash(token))
    )
    if row is None:
        return "unknown"
    # Business clock: wall time in production; tests move it to expire a session without waiting.
    if clock.now() >= row.expires_at:
        await session.delete(row)
        await session.flush()
        return "expired"
    user = await session.get(User, row.user_id)
    if user is None:
        return "unknown"
    return SignedIn(
        user_id=user.id, email=user.email, workspace_id=user.workspace_id, csrf_token=row.csrf_token
    )


async def end_session(session: AsyncSession, token: str) -> None:
    await session.execute(delete(UserSession).where(UserSession.token_hash == _token_hash(token)))
    await session.flush()
