"""What the line client reports and how it waits: its errors, backoff policy and counters."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["Backoff", "ClientStats", "LineConfigError", "LoginRefusedError", "UnknownNodeError"]


class LineConfigError(Exception):
    """The connection cannot work as configured (map, credentials, security): not retried."""


class UnknownNodeError(LineConfigError, LookupError):
    """A node of the tag map is not on the server (the message names tag and node)."""


class LoginRefusedError(LineConfigError, PermissionError):
    """The server refused the user name or password."""


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff between reconnection attempts: initial, x factor, capped."""

    initial_s: float = 0.5
    factor: float = 2.0
    max_s: float = 30.0

    def delays(self) -> Iterator[float]:
        """Yield the successive waits, seconds."""
        d = self.initial_s
        while True:
            yield d
            d = min(d * self.factor, self.max_s)


@dataclass
class ClientStats:
    """Counters of a client's life: sessions, samples live and backfilled, duplicates."""

    sessions: int = 0
    live: int = 0
    backfilled: int = 0
    duplicates: int = 0
    connection_losses: int = 0
    last_error: str | None = None
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=50))  # the latest ones
