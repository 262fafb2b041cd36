"""The typed bodies of the web API: what a client may send, refused with the field named."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from biopilot.quality.spec import Spec
from biopilot.store.permissions import Role
from biopilot.store.signatures import Meaning

__all__ = [
    "AckBody",
    "DispositionBody",
    "LoginBody",
    "NewUserBody",
    "RecordBody",
    "SignBody",
    "SpecBody",
    "UserChangeBody",
]



def _reason() -> Any:
    return Field(min_length=3, max_length=2000, description="why (goes to the audit trail)")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LoginBody(_Body):
    """User name and password to open a session."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class AckBody(_Body):
    """Why an alarm is acknowledged (required: it goes to the audit trail)."""

    reason: str = Field(min_length=3, max_length=2000)


class RecordBody(_Body):
    """A QC result or a comment filed in a batch record, with the reason for filing it."""

    kind: Literal["qc_result", "comment"]
    body: dict[str, Any] = Field(description="the result (assay, value, units...) or the text")
    reason: str = Field(min_length=3, max_length=2000)


class SignBody(_Body):
    """An electronic signature of a batch release: password re-entered, meaning, comment."""

    password: str = Field(min_length=1, max_length=256)
    meaning: Meaning
    comment: str = Field(min_length=3, max_length=2000)
    record_digest: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="digest of the batch record as reviewed"
    )


class DispositionBody(_Body):
    """A QC disposition of a batch: judged on a stored specification, or decided by hand.

    Without ``disposition`` the batch's QC results are judged against the latest stored
    specification of its product; with it, the analyst's own verdict and ``reasons`` are filed.
    """

    disposition: Literal["pass", "fail", "review"] | None = None
    reasons: list[str] = Field(default_factory=list, max_length=50)
    reason: str = _reason()


class SpecBody(_Body):
    """A new or changed release specification of a product, with the reason for it."""

    specification: Spec
    reason: str = _reason()


class NewUserBody(_Body):
    """A user account to create (password hashed with argon2 by the store)."""

    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    full_name: str = Field(min_length=1, max_length=200)
    role: Role
    password: str = Field(min_length=8, max_length=256)
    reason: str = _reason()


class UserChangeBody(_Body):
    """A change to a user account: role, enable/disable, unlock, password reset."""

    role: Role | None = None
    active: bool | None = None
    unlock: bool = False
    password: str | None = Field(default=None, min_length=8, max_length=256)
    reason: str = _reason()


class AcceptBody(_Body):
    """Which controller recommendation is accepted (its batch hour) and why."""

    t_h: float = Field(ge=0, le=10_000, description="batch hour of the recommendation")
    reason: str = Field(min_length=3, max_length=2000)


class ModeBody(_Body):
    """The controller mode to switch to, and why."""

    mode: Literal["manual", "advisory", "automatic"]
    reason: str = Field(min_length=3, max_length=2000)
