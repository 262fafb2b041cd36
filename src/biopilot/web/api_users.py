"""User management routes of the web API (administrators): list, create, change role, disable.

Passwords are hashed with argon2 and every change is audited with its reason by
:class:`~biopilot.store.users.UserStore`, which checks the administrator's right again.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from biopilot.store.permissions import Action, AuthenticationError, User
from biopilot.web.auth import require
from biopilot.web.context import WebContext, get_ctx
from biopilot.web.schemas import NewUserBody, UserChangeBody

__all__ = ["account", "router"]

router = APIRouter(prefix="/api/users", tags=["users"])
MANAGE = Depends(require(Action.MANAGE_USERS))


def account(user: User) -> dict[str, Any]:
    """Return what an administrator sees of an account (never the password hash)."""
    return {"username": user.username, "full_name": user.full_name, "role": user.role.value,
            "active": user.active, "locked": user.locked,
            "failed_attempts": user.failed_attempts}


@router.get("", summary="Every user account")
def users(ctx: WebContext = Depends(get_ctx), _: User = MANAGE) -> list[dict[str, Any]]:
    """Return the accounts by user name."""
    return [account(u) for u in ctx.users.list_users()]


@router.post("", summary="Create a user account", status_code=201)
def create_user(
    body: NewUserBody, ctx: WebContext = Depends(get_ctx), admin: User = MANAGE
) -> dict[str, Any]:
    """Create the account (audited as ``user_create``); 409 if the name is taken."""
    if _exists(ctx, body.username):
        raise HTTPException(409, f"username {body.username!r} is taken")
    new = ctx.users.add_user(body.username, body.full_name, body.role, body.password,
                             by=admin, reason=body.reason)
    return account(new)


@router.patch("/{username}", summary="Change a user's role, disable or enable, unlock, reset")
def change_user(
    username: str, body: UserChangeBody, ctx: WebContext = Depends(get_ctx), admin: User = MANAGE
) -> dict[str, Any]:
    """Apply the change (audited as ``user_update`` with old and new values).

    404 for an unknown user, 409 for an administrator changing their own role or disabling
    their own account (another administrator must), 422 when nothing is to change.
    """
    if body.role is None and body.active is None and not body.unlock and body.password is None:
        raise ValueError("nothing to change: give role, active, unlock or password")
    if not _exists(ctx, username):
        raise HTTPException(404, f"no user {username!r}")
    if username == admin.username and (body.role is not None or body.active is False):
        raise HTTPException(409, "administrators cannot change their own role or disable "
                                 "their own account: another administrator must")
    changed = ctx.users.update_user(username, by=admin, reason=body.reason, role=body.role,
                                    active=body.active, unlock=body.unlock,
                                    password=body.password)
    return account(changed)


def _exists(ctx: WebContext, username: str) -> bool:
    try:
        ctx.users.get_user(username)
    except AuthenticationError:
        return False
    return True
