"""The typed bodies of the web API: what a client may send, refused with the field named."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from biopilot.store.signatures import Meaning

__all__ = ["AckBody", "LoginBody", "RecordBody", "SignBody"]


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
