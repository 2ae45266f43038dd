"""Users: registration, admin-created accounts, login with lockout, administration."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.db.models.auth import Role, User, UserStatus
from cognitionos.services.auth.audit import AuditKind, ClientInfo, record_event
from cognitionos.services.auth.passwords import (
    check_password_policy,
    hash_password,
    verify_password,
)
from cognitionos.services.errors import BadUserInput, Conflict, NotFound, Unauthenticated
from cognitionos.services.pagination import Page, paginate

__all__ = [
    "AccountPolicy",
    "authenticate",
    "create_user",
    "get_user",
    "list_users",
    "normalize_email",
    "update_user",
]

_LOGIN_FAILED = "invalid email or password"


@dataclass(frozen=True)
class AccountPolicy:
    bcrypt_rounds: int = 12
    password_min_length: int = 10
    lockout_threshold: int = 5
    lockout_seconds: int = 1800


def normalize_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise BadUserInput(f"invalid email: {exc}", field="email") from None


async def create_user(
    session: AsyncSession,
    *,
    policy: AccountPolicy,
    email: str,
    password: str,
    full_name: str | None = None,
    role: Role = Role.MEMBER,
    client: ClientInfo,
    kind: AuditKind = AuditKind.USER_CREATED,
    actor_id: uuid.UUID | None = None,
) -> User:
    """Create an ACTIVE user; commits. CONFLICT when the email is taken."""
    email = normalize_email(email)
    check_password_policy(password, min_length=policy.password_min_length, email=email)
    if full_name is not None and len(full_name) > 200:
        raise BadUserInput("full name is longer than 200 characters", field="fullName")
    user = User(
        email=email,
        password_hash=await hash_password(password, rounds=policy.bcrypt_rounds),
        full_name=full_name,
        role=role,
        status=UserStatus.ACTIVE,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise Conflict(f"a user with email {email} already exists", field="email") from None
    record_event(
        session,
        kind=kind,
        success=True,
        client=client,
        user_id=user.id,
        role=role.value,
        actor=str(actor_id) if actor_id else None,
    )
    await session.commit()
    return user


async def _refuse(
    session: AsyncSession,
    client: ClientInfo,
    audit_reason: str,
    *,
    user_id: uuid.UUID | None = None,
    error: Unauthenticated | None = None,
    **data: Any,
) -> NoReturn:
    """Record the failed login, commit it (it must survive the error), then refuse."""
    record_event(
        session,
        kind=AuditKind.LOGIN,
        success=False,
        client=client,
        user_id=user_id,
        reason=audit_reason,
        **data,
    )
    await session.commit()
    raise error or Unauthenticated(_LOGIN_FAILED, reason="INVALID_CREDENTIALS")


async def authenticate(
    session: AsyncSession,
    *,
    policy: AccountPolicy,
    email: str,
    password: str,
    client: ClientInfo,
    changed: list[uuid.UUID] | None = None,
) -> User:
    """Check a password; count failures, lock after ``lockout_threshold``; commits.
    The user's id is appended to ``changed`` when their row was written (even when the
    login is refused), for the caller to announce after commit.

    An unknown email, a wrong password and a locked account (even with the right password)
    all answer the same ``INVALID_CREDENTIALS`` after one bcrypt check each.
    """
    try:
        email = normalize_email(email)
    except BadUserInput:
        await verify_password(password, None, rounds=policy.bcrypt_rounds)
        raise Unauthenticated(_LOGIN_FAILED, reason="INVALID_CREDENTIALS") from None
    user = await session.scalar(
        select(User).where(func.lower(User.email) == email).with_for_update()
    )
    if user is None:
        await verify_password(password, None, rounds=policy.bcrypt_rounds)
        await _refuse(session, client, "UNKNOWN_EMAIL", email=email)

    now = datetime.now(UTC)
    # Checked even when locked, so a locked account costs what any other attempt costs.
    correct = await verify_password(password, user.password_hash, rounds=policy.bcrypt_rounds)
    if user.locked_until is not None and user.locked_until > now:
        # The same answer as a wrong password: the lock (and that the account exists)
        # is for the audit log and the owner, not for whoever is guessing.
        await _refuse(
            session, client, "LOCKED", user_id=user.id, lockedUntil=user.locked_until.isoformat()
        )

    if not correct:
        if changed is not None:
            changed.append(user.id)
        user.failed_login_count += 1
        record_event(
            session,
            kind=AuditKind.LOGIN,
            success=False,
            client=client,
            user_id=user.id,
            reason="BAD_PASSWORD",
            failedAttempts=user.failed_login_count,
        )
        if user.failed_login_count >= policy.lockout_threshold:
            user.locked_until = now + timedelta(seconds=policy.lockout_seconds)
            user.failed_login_count = 0
            record_event(
                session,
                kind=AuditKind.ACCOUNT_LOCKED,
                success=True,
                client=client,
                user_id=user.id,
                lockedUntil=user.locked_until.isoformat(),
            )
        await session.commit()
        raise Unauthenticated(_LOGIN_FAILED, reason="INVALID_CREDENTIALS")

    if user.status is not UserStatus.ACTIVE:
        status = user.status.value
        await _refuse(
            session,
            client,
            f"STATUS_{status}",
            user_id=user.id,
            error=Unauthenticated(f"account is {status.lower()}", reason=f"ACCOUNT_{status}"),
        )

    if changed is not None:
        changed.append(user.id)
    user.failed_login_count = 0
    user.locked_until = None
    user.last_login_at = now
    record_event(session, kind=AuditKind.LOGIN, success=True, client=client, user_id=user.id)
    await session.commit()
    return user


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def list_users(
    session: AsyncSession,
    *,
    first: int | None,
    after: str | None,
    role: Role | None = None,
    status: UserStatus | None = None,
) -> Page[User]:
    stmt = select(User)
    if role is not None:
        stmt = stmt.where(User.role == role)
    if status is not None:
        stmt = stmt.where(User.status == status)
    return await paginate(session, User, stmt, first=first, after=after)


async def update_user(
    session: AsyncSession,
    *,
    actor_id: uuid.UUID,
    user_id: uuid.UUID,
    role: Role | None,
    status: UserStatus | None,
    client: ClientInfo,
) -> User:
    """Change a user's role or status (admin); unlocks when set ACTIVE. Commits."""
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    demotes = role not in (None, Role.ADMIN) or status not in (None, UserStatus.ACTIVE)
    if user_id == actor_id and demotes:
        raise BadUserInput("admins cannot demote or deactivate themselves", field="userId")
    changes: dict[str, str] = {}
    if role is not None and role is not user.role:
        changes["role"] = f"{user.role.value}->{role.value}"
        user.role = role
    if status is not None:
        if status is not user.status:
            changes["status"] = f"{user.status.value}->{status.value}"
        user.status = status
        if status is UserStatus.ACTIVE:
            user.locked_until = None
            user.failed_login_count = 0
    record_event(
        session,
        kind=AuditKind.USER_UPDATED,
        success=True,
        client=client,
        user_id=user.id,
        actor=str(actor_id),
        **changes,
    )
    await session.commit()
    return user
