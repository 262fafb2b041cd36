"""Who may do what: the roles, the actions, the role-permission matrix and ``authorize``.

21 CFR 11.10(d) (access limited to authorised individuals) and 11.10(g) (authority checks),
EU GMP Annex 11 §12. The matrix is data (:data:`PERMISSIONS`), so the web API, the CLI and
the tests read the same table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

__all__ = [
    "PERMISSIONS",
    "Action",
    "AuthenticationError",
    "PermissionDenied",
    "Role",
    "Session",
    "SessionExpired",
    "User",
    "authorize",
]


class Role(StrEnum):
    """The roles of a site."""

    OPERATOR = "operator"
    PROCESS_ENGINEER = "process_engineer"
    QC_ANALYST = "qc_analyst"
    QA_APPROVER = "qa_approver"
    ADMINISTRATOR = "administrator"


class Action(StrEnum):
    """What a user may be allowed to do."""

    READ = "read"
    ACKNOWLEDGE_ALARM = "acknowledge_alarm"
    CHANGE_SETPOINT = "change_setpoint"
    SWITCH_MODE_MANUAL = "switch_mode_manual"
    SWITCH_MODE_ADVISORY = "switch_mode_advisory"
    SWITCH_MODE_AUTOMATIC = "switch_mode_automatic"
    DEPLOY_MODEL = "deploy_model"
    CHANGE_SPECIFICATION = "change_specification"
    RECORD_QC_RESULT = "record_qc_result"
    RELEASE_BATCH = "release_batch"
    MANAGE_USERS = "manage_users"


A = Action
#: The role-permission matrix. Administrators manage accounts but take no GMP decision and
#: QA does not run the process (separation of duties, EU GMP Annex 11 §2 and §12.2).
PERMISSIONS: Mapping[Role, frozenset[Action]] = {
    Role.OPERATOR: frozenset(
        {A.READ, A.ACKNOWLEDGE_ALARM, A.CHANGE_SETPOINT, A.SWITCH_MODE_MANUAL}
        | {A.SWITCH_MODE_ADVISORY}
    ),
    Role.PROCESS_ENGINEER: frozenset(
        {A.READ, A.ACKNOWLEDGE_ALARM, A.CHANGE_SETPOINT, A.SWITCH_MODE_MANUAL}
        | {A.SWITCH_MODE_ADVISORY, A.SWITCH_MODE_AUTOMATIC, A.DEPLOY_MODEL}
    ),
    Role.QC_ANALYST: frozenset({A.READ, A.RECORD_QC_RESULT}),
    Role.QA_APPROVER: frozenset({A.READ, A.CHANGE_SPECIFICATION, A.RELEASE_BATCH}),
    Role.ADMINISTRATOR: frozenset({A.READ, A.MANAGE_USERS}),
}
del A


class AuthenticationError(Exception):
    """Wrong credentials, a locked or inactive account, an unknown session."""


class SessionExpired(AuthenticationError):
    """The session has expired or was closed: log in again."""


class PermissionDenied(Exception):
    """The user's role may not take this action; names the user, the role and the action."""

    def __init__(self, username: str, role: str, action: str, why: str = "") -> None:
        self.username, self.role, self.action = username, role, action
        super().__init__(f"user {username!r} (role {role}) may not {action}{why}")


@dataclass(frozen=True, slots=True)
class User:
    """A user as stored (never the password hash)."""

    id: int
    username: str
    full_name: str
    role: Role
    active: bool
    locked: bool
    failed_attempts: int


@dataclass(frozen=True, slots=True)
class Session:
    """An open session of a user, valid until ``expires_utc`` (UTC)."""

    user: User
    created_utc: datetime
    expires_utc: datetime


def authorize(principal: User | Session, action: Action, *, now: datetime | None = None) -> None:
    """Return if ``principal`` may take ``action``; raise otherwise.

    Raises
    ------
    SessionExpired
        If a session is past its expiry at ``now`` (UTC; default the clock).
    PermissionDenied
        If the account is inactive or locked, or the role may not take the action.
    """
    user = principal.user if isinstance(principal, Session) else principal
    if isinstance(principal, Session):
        at = now or datetime.now(principal.expires_utc.tzinfo)
        if at >= principal.expires_utc:
            raise SessionExpired(f"the session of {user.username!r} has expired; log in again")
    if not user.active or user.locked:
        state = "inactive" if not user.active else "locked"
        raise PermissionDenied(user.username, user.role, action, f": the account is {state}")
    if Action(action) not in PERMISSIONS[user.role]:
        raise PermissionDenied(user.username, user.role, action)
