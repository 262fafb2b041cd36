"""User accounts: argon2id passwords, expiring sessions, lockout, all audited.

The roles and the permission matrix are in :mod:`biopilot.store.permissions` (re-exported
here). 21 CFR 11.300 (controls for
identification codes and passwords: lockout and reporting of failed attempts), EU GMP
Annex 11 §12 (security). Every change to a user and every login, failed or not, is in the
audit trail. Sessions are random 32-byte tokens; only their SHA-256 is stored.

Example
-------
>>> from biopilot.store import Historian
>>> users = UserStore(Historian("sqlite://"), hasher=FAST_TEST_HASHER)
>>> admin = users.add_user("ada", "Ada Admin", Role.ADMINISTRATOR, "correct horse",
...                        by=None, reason="site bootstrap")
>>> authorize(admin, Action.MANAGE_USERS)
>>> authorize(admin, Action.RELEASE_BATCH)
Traceback (most recent call last):
...
biopilot.store.permissions.PermissionDenied: user 'ada' (role administrator) may not release_batch
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection

from biopilot.store.audit import AuditTrail
from biopilot.store.audit_schema import app_user, user_session
from biopilot.store.permissions import (
    PERMISSIONS,
    Action,
    AuthenticationError,
    PermissionDenied,
    Role,
    Session,
    SessionExpired,
    User,
    authorize,
)
from biopilot.store.timebase import from_us, to_us

__all__ = [
    "FAST_TEST_HASHER",
    "PERMISSIONS",
    "Action",
    "AuthenticationError",
    "PermissionDenied",
    "Role",
    "Session",
    "SessionExpired",
    "User",
    "UserStore",
    "authorize",
]


#: Cheap argon2id parameters for tests only (the store's default is RFC 9106's profile).
FAST_TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
MIN_PASSWORD_LENGTH = 8


class UserStore:
    """Users, logins and sessions of a store, every change audited.

    Parameters
    ----------
    store : Historian
        The store (anything with an ``engine``).
    audit : AuditTrail, optional
        The trail to write to; by default one on the same store.
    max_failed : int
        Failed password entries in a row that lock the account (11.300(d)).
    session_ttl : timedelta
        How long a session lasts.
    hasher : argon2.PasswordHasher, optional
        argon2id parameters (the library's RFC 9106 low-memory profile by default).
    """

    def __init__(
        self,
        store: Any,
        audit: AuditTrail | None = None,
        *,
        max_failed: int = 5,
        session_ttl: timedelta = timedelta(hours=8),
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.audit = audit or AuditTrail(store)
        self.engine = self.audit.engine
        self.max_failed = max_failed
        self.session_ttl = session_ttl
        self.hasher = hasher or PasswordHasher()
        self._dummy: str | None = None  # a hash to check unknown names against (equal time)

    def add_user(
        self,
        username: str,
        full_name: str,
        role: Role | str,
        password: str,
        *,
        by: User | Session | None,
        reason: str,
    ) -> User:
        """Create an active user and return it.

        ``by`` is the administrator creating it; None is allowed only for the very first
        user, who must be an administrator (the site's bootstrap). Raises PermissionDenied,
        ValueError for a taken name, a short password or an empty name or reason.
        """
        role = Role(role)
        if not username.strip() or not full_name.strip():
            raise ValueError("username and full name are required")
        _check_password(password)
        with self.engine.begin() as conn:
            actor = self._manager(conn, by, bootstrap_role=role)
            taken = conn.execute(sa.select(app_user.c.id).where(app_user.c.username == username))
            if taken.first() is not None:
                raise ValueError(f"username {username!r} is taken")
            row: dict[str, Any] = {"username": username, "full_name": full_name, "role": role.value}
            row |= {"active": True, "failed_attempts": 0, "locked": False}
            row["created_us"] = to_us(self.audit.clock(), "server clock")
            pw = self.hasher.hash(password)
            conn.execute(sa.insert(app_user).values(password_hash=pw, **row))
            new = {k: row[k] for k in ("username", "full_name", "role", "active")}
            self.audit.record(
                actor, "user_create", "user", username, reason=reason, new=new, conn=conn
            )
        return self.get_user(username)

    def update_user(
        self,
        username: str,
        *,
        by: User | Session,
        reason: str,
        role: Role | str | None = None,
        active: bool | None = None,
        unlock: bool = False,
        password: str | None = None,
    ) -> User:
        """Change a user's role, active flag, lock or password; return the user as now stored.

        Raises PermissionDenied unless ``by`` may manage users, AuthenticationError for an
        unknown user, ValueError for a short password.
        """
        changes: dict[str, Any] = {}
        if role is not None:
            changes["role"] = Role(role).value
        if active is not None:
            changes["active"] = bool(active)
        if unlock:
            changes |= {"locked": False, "failed_attempts": 0}
        if password is not None:
            _check_password(password)
        with self.engine.begin() as conn:
            actor = self._manager(conn, by)
            old = self._user(conn, username)
            before = {k: getattr(old, k) for k in changes}
            values = changes | ({"password_hash": self.hasher.hash(password)} if password else {})
            conn.execute(sa.update(app_user).where(app_user.c.id == old.id).values(**values))
            after = changes | ({"password": "changed"} if password else {})
            self.audit.record(
                actor,
                "user_update",
                "user",
                username,
                reason=reason,
                old=before,
                new=after,
                conn=conn,
            )
        return self.get_user(username)

    def get_user(self, username: str) -> User:
        """Return a user; AuthenticationError if unknown."""
        with self.engine.connect() as conn:
            return self._user(conn, username)

    def list_users(self) -> list[User]:
        """Return every user, by username."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(app_user).order_by(app_user.c.username))
            return [_user(r) for r in rows]

    def authenticate(self, username: str, password: str, *, purpose: str = "login") -> User:
        """Check a password and return the user; count failures and lock the account.

        Used to log in and to re-enter the password of an electronic signature
        (11.200(a)). Every attempt is audited. Raises AuthenticationError with the same
        message for an unknown user and a wrong password.
        """
        error = "wrong username or password"
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(app_user).where(app_user.c.username == username)).first()
            ok = self._verify(row.password_hash if row else self._dummy_hash(), password)
            if row is not None and ok and row.active and not row.locked:
                values: dict[str, Any] = {"failed_attempts": 0}
                if self.hasher.check_needs_rehash(row.password_hash):
                    values["password_hash"] = self.hasher.hash(password)
                conn.execute(sa.update(app_user).where(app_user.c.id == row.id).values(**values))
                self._log(conn, username, purpose, "password verified")
                return replace(_user(row), failed_attempts=0)
            if row is not None and not ok and not row.locked:
                self._failed(conn, row, purpose)
            elif row is not None and ok:
                error = f"the account {username!r} is locked or inactive"
                self._log(conn, username, f"{purpose}_failed", "account locked or inactive")
            else:
                self._log(conn, username, f"{purpose}_failed", "unknown user or locked account")
        raise AuthenticationError(error)

    def login(self, username: str, password: str) -> tuple[str, Session]:
        """Open a session: return (token to hand to the client, session).

        The token is 32 random bytes (URL-safe base64); the store keeps only its SHA-256.
        """
        user = self.authenticate(username, password)
        token = secrets.token_urlsafe(32)
        now = self.audit.clock()
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(user_session).values(
                    user_id=user.id,
                    token_sha256=_token_hash(token),
                    created_us=to_us(now, "server clock"),
                    expires_us=to_us(now + self.session_ttl, "expiry"),
                    revoked=False,
                )
            )
        return token, Session(user, now, now + self.session_ttl)

    def session(self, token: str) -> Session:
        """Return the open session of ``token``; SessionExpired or AuthenticationError if not."""
        q = sa.select(user_session, app_user.c.username).join(app_user)
        with self.engine.connect() as conn:
            row = conn.execute(q.where(user_session.c.token_sha256 == _token_hash(token))).first()
            if row is None:
                raise AuthenticationError("unknown session token")
            user = self._user(conn, row.username)
        if row.revoked or to_us(self.audit.clock(), "server clock") >= row.expires_us:
            raise SessionExpired(f"the session of {user.username!r} has expired; log in again")
        return Session(user, from_us(row.created_us), from_us(row.expires_us))

    def logout(self, token: str) -> None:
        """Close the session of ``token`` (unknown tokens are ignored)."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(user_session)
                .where(user_session.c.token_sha256 == _token_hash(token))
                .values(revoked=True)
            )

    def authorize(self, principal: User | Session | str, action: Action) -> User:
        """Check ``action`` for a user, a session or a session token at the server's clock.

        The user is re-read from the store, so a role change or lockout applies at once.
        Returns the user; raises SessionExpired, AuthenticationError or PermissionDenied.
        """
        if isinstance(principal, str):
            principal = self.session(principal)
        now = self.audit.clock()
        if isinstance(principal, Session):
            if now >= principal.expires_utc:
                who = principal.user.username
                raise SessionExpired(f"the session of {who!r} has expired; log in again")
            principal = principal.user
        user = self.get_user(principal.username)
        authorize(user, action, now=now)
        return user

    def _manager(
        self, conn: Connection, by: User | Session | None, bootstrap_role: Role | None = None
    ) -> str:
        """Return the name of who manages users; bootstrap the first administrator."""
        if by is None:
            n = conn.execute(sa.select(sa.func.count()).select_from(app_user)).scalar_one()
            if n == 0 and bootstrap_role == Role.ADMINISTRATOR:
                return "bootstrap"
            raise PermissionDenied(
                "(nobody)",
                "none",
                Action.MANAGE_USERS,
                ": only the first user, an administrator, needs no one",
            )
        return self.authorize(by, Action.MANAGE_USERS).username

    def _user(self, conn: Connection, username: str) -> User:
        row = conn.execute(sa.select(app_user).where(app_user.c.username == username)).first()
        if row is None:
            raise AuthenticationError(f"no user {username!r}")
        return _user(row)

    def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = self.hasher.hash(secrets.token_hex(16))
        return self._dummy

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return bool(self.hasher.verify(stored, password))
        except (VerificationError, InvalidHashError):
            return False

    def _failed(self, conn: Connection, row: Any, purpose: str) -> None:
        """Count a failed password; lock the account at ``max_failed`` (11.300(d))."""
        n = int(row.failed_attempts) + 1
        lock = n >= self.max_failed
        conn.execute(
            sa.update(app_user)
            .where(app_user.c.id == row.id)
            .values(failed_attempts=n, locked=lock)
        )
        self._log(conn, row.username, f"{purpose}_failed", f"wrong password ({n} in a row)")
        if lock:
            self.audit.record(
                "system",
                "user_lock",
                "user",
                row.username,
                reason=f"{n} failed password entries in a row",
                old={"locked": False},
                new={"locked": True},
                conn=conn,
            )

    def _log(self, conn: Connection, username: str, action: str, reason: str) -> None:
        who = username.strip()[:64] or "(no name)"  # what was typed, for the record
        self.audit.record(who, action, "user", who, reason=reason, conn=conn)


def _user(row: Any) -> User:
    return User(
        id=int(row.id),
        username=row.username,
        full_name=row.full_name,
        role=Role(row.role),
        active=bool(row.active),
        locked=bool(row.locked),
        failed_attempts=int(row.failed_attempts),
    )


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
