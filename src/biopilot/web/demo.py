"""Demo accounts to try the cockpit: one user per role, known passwords (never in production)."""

from __future__ import annotations

from dataclasses import dataclass

from biopilot.store.permissions import AuthenticationError, Role
from biopilot.store.users import UserStore

__all__ = ["DEMO_USERS", "DemoUser", "ensure_demo_users"]


@dataclass(frozen=True)
class DemoUser:
    """A demo login: user name, printed name, role and password."""

    username: str
    full_name: str
    role: Role
    password: str


DEMO_USERS = (
    DemoUser("admin", "Ada Admin", Role.ADMINISTRATOR, "admin-demo-pw"),
    DemoUser("operator", "Otto Operator", Role.OPERATOR, "operator-demo-pw"),
    DemoUser("engineer", "Erin Engineer", Role.PROCESS_ENGINEER, "engineer-demo-pw"),
    DemoUser("qc", "Quinn Analyst", Role.QC_ANALYST, "qc-demo-pw"),
    DemoUser("qa", "Quincy Approver", Role.QA_APPROVER, "qa-demo-pw"),
)


def ensure_demo_users(users: UserStore) -> list[DemoUser]:
    """Create the demo users that are missing (the admin first, creating the others).

    Returns the demo users created now. Raises PermissionDenied if the store already has
    users but no ``admin`` demo account to create the others with.
    """
    created: list[DemoUser] = []
    admin = None
    for demo in DEMO_USERS:
        try:
            users.get_user(demo.username)
        except AuthenticationError:
            users.add_user(demo.username, demo.full_name, demo.role, demo.password,
                           by=admin, reason="demo account for the cockpit")
            created.append(demo)
        if demo.role == Role.ADMINISTRATOR:
            admin = users.get_user(demo.username)
    return created
