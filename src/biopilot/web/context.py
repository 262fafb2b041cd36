"""What every request of the web app shares: the historian, the users, the audit trail, limits."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from biopilot.store import Historian
from biopilot.store.audit import AuditTrail
from biopilot.store.users import UserStore
from biopilot.web.panels import DeployedModels

__all__ = ["WebContext", "get_ctx"]


@dataclass(frozen=True)
class WebContext:
    """The store objects, models and settings of one running app (in ``app.state.ctx``)."""

    historian: Historian
    users: UserStore
    audit: AuditTrail
    live_interval_s: float = 1.0
    live_max_s: float = 300.0
    trend_max_points: int = 2000
    models: DeployedModels = field(default_factory=DeployedModels)


def get_ctx(request: Request) -> WebContext:
    """Return the app's context (a FastAPI dependency)."""
    ctx: WebContext = request.app.state.ctx
    return ctx
