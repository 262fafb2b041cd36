"""Users and roles: the permission matrix, argon2 passwords, lockout, expiring sessions, audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from biopilot.store import Historian
from biopilot.store.audit import AuditTrail
from biopilot.store.users import (
    FAST_TEST_HASHER,
    PERMISSIONS,
    Action,
    AuthenticationError,
    PermissionDenied,
    Role,
    Session,
    SessionExpired,
    User,
    UserStore,
    authorize,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
PW = "correct horse battery"
R, A = Role, Action

# The matrix as agreed for the site, written out independently of the code it checks.
EXPECTED: dict[Role, set[Action]] = {
    R.OPERATOR: {
        A.READ,
        A.ACKNOWLEDGE_ALARM,
        A.CHANGE_SETPOINT,
        A.SWITCH_MODE_MANUAL,
        A.SWITCH_MODE_ADVISORY,
    },
    R.PROCESS_ENGINEER: {
        A.READ,
        A.ACKNOWLEDGE_ALARM,
        A.CHANGE_SETPOINT,
        A.SWITCH_MODE_MANUAL,
        A.SWITCH_MODE_ADVISORY,
        A.SWITCH_MODE_AUTOMATIC,
        A.DEPLOY_MODEL,
    },
    R.QC_ANALYST: {A.READ, A.RECORD_QC_RESULT},
    R.QA_APPROVER: {A.READ, A.CHANGE_SPECIFICATION, A.RELEASE_BATCH},
    R.ADMINISTRATOR: {A.READ, A.MANAGE_USERS},
}


class Clock:
    """The server clock, moved by the test."""

    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> datetime:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def users(tmp_path: Path, clock: Clock) -> UserStore:
    h = Historian(tmp_path / "line.db")
    store = UserStore(
        h,
        AuditTrail(h, clock=clock),
        max_failed=3,
        session_ttl=timedelta(hours=8),
        hasher=FAST_TEST_HASHER,
    )
    admin = store.add_user("ada", "Ada Admin", R.ADMINISTRATOR, PW, by=None, reason="bootstrap")
    store.add_user("olga", "Olga Operator", R.OPERATOR, PW, by=admin, reason="new hire")
    return store


def _user(role: Role) -> User:
    return User(1, f"u_{role}", "Some One", role, active=True, locked=False, failed_attempts=0)


def test_the_matrix_is_the_agreed_one() -> None:
    assert {r: set(a) for r, a in PERMISSIONS.items()} == EXPECTED


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
def test_every_role_and_action_is_allowed_or_refused_by_name(role: Role, action: Action) -> None:
    user = _user(role)
    if action in EXPECTED[role]:
        authorize(user, action)
        return
    with pytest.raises(PermissionDenied) as err:
        authorize(user, action)
    assert str(err.value) == f"user 'u_{role}' (role {role}) may not {action}"
    assert (err.value.username, err.value.role, err.value.action) == (f"u_{role}", role, action)


def test_operator_acknowledges_alarms_but_cannot_change_a_spec_release_or_go_automatic() -> None:
    op = _user(R.OPERATOR)
    authorize(op, A.ACKNOWLEDGE_ALARM)
    for action in (A.CHANGE_SPECIFICATION, A.RELEASE_BATCH, A.SWITCH_MODE_AUTOMATIC):
        with pytest.raises(PermissionDenied, match="operator"):
            authorize(op, action)
    allowed = [r for r in Role if A.SWITCH_MODE_AUTOMATIC in PERMISSIONS[r]]
    assert allowed == [R.PROCESS_ENGINEER]


def test_passwords_are_stored_as_argon2id_hashes_only(users: UserStore) -> None:
    with users.engine.connect() as c:
        stored = c.execute(sa.text("SELECT password_hash FROM app_user")).scalars().all()
    assert all(h.startswith("$argon2id$") and PW not in h for h in stored)
    assert users.authenticate("olga", PW).username == "olga"


def test_a_wrong_password_or_unknown_user_is_refused_alike_and_audited(users: UserStore) -> None:
    for name in ("olga", "nobody"):
        with pytest.raises(AuthenticationError, match="wrong username or password"):
            users.authenticate(name, "not the password")
    actions = [(e.actor, e.action) for e in users.audit.entries()]
    assert ("olga", "login_failed") in actions and ("nobody", "login_failed") in actions


def test_the_account_locks_after_n_failures_until_an_admin_unlocks_it(users: UserStore) -> None:
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            users.authenticate("olga", "guess guess")
    assert users.get_user("olga").locked
    with pytest.raises(AuthenticationError, match="locked"):
        users.authenticate("olga", PW)  # even the right password
    lock = [e for e in users.audit.entries() if e.action == "user_lock"]
    assert len(lock) == 1 and lock[0].new_value == {"locked": True}
    admin = users.authenticate("ada", PW)
    users.update_user("olga", by=admin, unlock=True, reason="identity checked by phone")
    assert users.authenticate("olga", PW).failed_attempts == 0


def test_sessions_are_random_tokens_stored_hashed_that_expire(users: UserStore, clock) -> None:
    token, session = users.login("olga", PW)
    assert len(token) >= 43 and session.expires_utc == T0 + timedelta(hours=8)
    with users.engine.connect() as c:
        stored = c.execute(sa.text("SELECT token_sha256 FROM user_session")).scalar_one()
    assert stored != token and len(stored) == 64
    assert users.authorize(token, A.ACKNOWLEDGE_ALARM).username == "olga"
    clock.t = T0 + timedelta(hours=8)
    with pytest.raises(SessionExpired, match="olga"):
        users.session(token)
    with pytest.raises(SessionExpired):
        users.authorize(session, A.READ)  # a session object kept by a client expires too
    with pytest.raises(SessionExpired):
        authorize(session, A.READ, now=clock.t)


def test_a_closed_or_unknown_session_is_refused(users: UserStore) -> None:
    token, _ = users.login("olga", PW)
    users.logout(token)
    with pytest.raises(SessionExpired):
        users.session(token)
    with pytest.raises(AuthenticationError, match="unknown session"):
        users.session("forged-token")


def test_a_role_change_or_deactivation_applies_at_once(users: UserStore) -> None:
    _, session = users.login("olga", PW)
    admin = users.authenticate("ada", PW)
    users.update_user("olga", by=admin, role=R.PROCESS_ENGINEER, reason="promotion")
    assert users.authorize(session, A.SWITCH_MODE_AUTOMATIC).role == R.PROCESS_ENGINEER
    users.update_user("olga", by=admin, active=False, reason="left the company")
    with pytest.raises(PermissionDenied, match="inactive"):
        users.authorize(session, A.READ)
    change = next(e for e in users.audit.entries() if e.action == "user_update")
    assert (change.actor, change.old_value, change.new_value, change.reason) == (
        "ada",
        {"role": "operator"},
        {"role": "process_engineer"},
        "promotion",
    )


def test_only_the_first_user_is_a_bootstrap_and_only_admins_manage_users(
    tmp_path: Path, users: UserStore
) -> None:
    fresh = UserStore(Historian(tmp_path / "new.db"), hasher=FAST_TEST_HASHER)
    with pytest.raises(PermissionDenied):
        fresh.add_user("olga", "Olga", R.OPERATOR, PW, by=None, reason="first is not an admin")
    with pytest.raises(PermissionDenied):
        users.add_user("x", "X", R.ADMINISTRATOR, PW, by=None, reason="second bootstrap")
    olga = users.authenticate("olga", PW)
    with pytest.raises(PermissionDenied, match="manage_users"):
        users.add_user("x", "X", R.ADMINISTRATOR, PW, by=olga, reason="self-service")
    with pytest.raises(ValueError, match="at least 8"):
        users.add_user("x", "X", R.OPERATOR, "short", by=users.get_user("ada"), reason="r")
    created = [e.object_id for e in users.audit.entries() if e.action == "user_create"]
    assert created == ["ada", "olga"]


def test_a_session_principal_is_accepted_by_the_module_authorize() -> None:
    session = Session(_user(R.QA_APPROVER), T0, T0 + timedelta(hours=1))
    authorize(session, A.RELEASE_BATCH, now=T0)
    with pytest.raises(PermissionDenied):
        authorize(session, A.RECORD_QC_RESULT, now=T0)
