"""Sessions and authorisation of the web API: login, logout, ``/api/me``, and ``require(action)``.

A session token travels as an HttpOnly, SameSite=Strict cookie (the cockpit) or as an
``Authorization: Bearer`` header (scripts). Every route depends on :func:`require` with
the :class:`~biopilot.store.permissions.Action` it needs; the check runs in
:meth:`UserStore.authorize` against the role-permission matrix at the server's clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from biopilot.store.permissions import PERMISSIONS, Action, AuthenticationError, User
from biopilot.web.context import WebContext, get_ctx
from biopilot.web.schemas import LoginBody

__all__ = ["COOKIE", "require", "route_action", "router", "session_token", "user_dict"]

COOKIE = "biopilot_session"

router = APIRouter(prefix="/api", tags=["session"])


def session_token(request: Request) -> str:
    """Return the session token of a request (bearer header first, then cookie).

    Raises AuthenticationError (401) if there is none.
    """
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    token = request.cookies.get(COOKIE)
    if not token:
        raise AuthenticationError("not logged in: POST /api/login first")
    return token


def require(action: Action) -> Callable[..., User]:
    """Return a dependency that yields the request's user if the user may take ``action``.

    Raises (through the app's handlers) 401 for no, an unknown or an expired session and
    403 naming user, role and action when the role may not.
    """

    def dependency(request: Request, ctx: WebContext = Depends(get_ctx)) -> User:
        return ctx.users.authorize(session_token(request), action)

    dependency.action = action  # type: ignore[attr-defined]  # read by route_action
    dependency.__name__ = f"require_{action.value}"
    return dependency


def route_action(route: Any) -> Action | None:
    """Return the Action a route requires (from its ``require`` dependency), or None."""
    stack = list(getattr(getattr(route, "dependant", None), "dependencies", []))
    while stack:
        dep = stack.pop()
        found = getattr(dep.call, "action", None)
        if isinstance(found, Action):
            return found
        stack.extend(dep.dependencies)
    return None


def user_dict(user: User) -> dict[str, Any]:
    """Return what a client may know of a user: name, role and the actions it allows."""
    actions = sorted(a.value for a in PERMISSIONS[user.role])
    return {"username": user.username, "full_name": user.full_name, "role": user.role.value,
            "actions": actions}


@router.post("/login", summary="Open a session (token in an HttpOnly cookie and the body)")
def login(
    body: LoginBody, response: Response, ctx: WebContext = Depends(get_ctx)
) -> dict[str, Any]:
    """Check the password (audited by the user store) and open a session."""
    token, session = ctx.users.login(body.username, body.password)
    max_age = int((session.expires_utc - session.created_utc).total_seconds())
    response.set_cookie(COOKIE, token, max_age=max_age, httponly=True, samesite="strict",
                        path="/")
    return {"token": token, "token_type": "bearer", "expires_utc": session.expires_utc.isoformat(),
            "user": user_dict(session.user)}


@router.post("/logout", summary="Close the session")
def logout(request: Request, response: Response, ctx: WebContext = Depends(get_ctx),
           user: User = Depends(require(Action.READ))) -> dict[str, Any]:
    """Revoke the session token and clear the cookie; audited."""
    ctx.users.logout(session_token(request))
    ctx.audit.record(user.username, "logout", "user", user.username, reason="user logged out")
    response.delete_cookie(COOKIE, path="/")
    return {"logged_out": user.username}


@router.get("/me", summary="The logged-in user and what the role allows")
def me(user: User = Depends(require(Action.READ))) -> dict[str, Any]:
    """Return the session's user."""
    return user_dict(user)
