"""The live terminal view of the demo line: per unit its estimates, MSPC status and alarms.

On a terminal it is a :class:`rich.live.Live` table redrawn four times a second; when stdout
is not a terminal (a log file, CI) it prints one plain line per unit every ``every_s`` wall
seconds instead, and a last one at the end.
"""

from __future__ import annotations

import math
import time
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from biopilot.cli.run_live import LiveState
from biopilot.monitor.online_types import KEY_STATES, UnitStatus

__all__ = ["LiveView", "render", "unit_line"]

#: Column heading and display scale of each key estimate.
_SHOWN: dict[str, tuple[str, float]] = {
    "vcd_cells_per_ml": ("VCD 1e6/mL", 1e-6),
    "glucose_g_per_l": ("glucose g/L", 1.0),
    "lactate_g_per_l": ("lactate g/L", 1.0),
    "titer_g_per_l": ("titer g/L", 1.0),
}
_MSPC: tuple[tuple[str, str], ...] = (("t2", "T2"), ("spe", "SPE"), ("t2_checks", "probe T2"))
_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


class LiveView:
    """Show :class:`LiveState` updates: a live table on a terminal, plain lines elsewhere.

    Use as a context manager and call it with each state.
    """

    def __init__(self, console: Console, *, every_s: float = 10.0) -> None:
        self.console = console
        self.every_s = every_s
        self.live: Live | None = None
        self._printed_at = -math.inf
        self._last: LiveState | None = None

    def __enter__(self) -> LiveView:
        if self.console.is_terminal:
            self.live = Live(console=self.console, refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.live is not None:
            self.live.__exit__(exc_type, exc, tb)
        elif self._last is not None and self._printed_at > -math.inf:
            self._plain(self._last)  # the final state

    def __call__(self, state: LiveState) -> None:
        self._last = state
        if self.live is not None:
            self.live.update(render(state))
        elif time.monotonic() - self._printed_at >= self.every_s:
            self._plain(state)

    def _plain(self, state: LiveState) -> None:
        self._printed_at = time.monotonic()
        self.console.print(_header(state).plain, highlight=False, soft_wrap=True)
        for st in state.monitor.values():
            self.console.print(unit_line(st), highlight=False, soft_wrap=True)


def render(state: LiveState) -> Group:
    """Return the live view of ``state``: a header and one table row per unit."""
    table = Table(expand=False, pad_edge=False)
    table.add_column("unit", no_wrap=True)
    table.add_column("day", justify="right")
    for name in KEY_STATES:
        table.add_column(_SHOWN[name][0], justify="right", no_wrap=True)
    for _, title in _MSPC:
        table.add_column(title, justify="right", no_wrap=True)
    table.add_column("alarms", justify="right")
    alarms = Text()
    for st in state.monitor.values():
        row: list[Text | str] = [st.unit, f"{st.day:5.2f}"]
        for name in KEY_STATES:
            row.append(_estimate(st, name))
        for key, _ in _MSPC:
            row.append(_mspc(st, key))
        active = [a for a in st.alarms if a.state != "unack_rtn"]
        row.append(Text(str(len(active)), style="bold red" if active else "green"))
        table.add_row(*row)
        if st.alarms:
            alarms.append(f"{st.unit}  ", style="bold")
            alarms.append_text(_alarms(st, since=True))
            alarms.append("\n")
    table.caption = "estimates: mean [2-sd interval]; MSPC: last bin / alarm limit"
    return Group(_header(state), table, alarms or Text("no alarms", style="green"))


def unit_line(st: UnitStatus) -> str:
    """One plain line of a unit: day, estimates with intervals, MSPC against limits, alarms."""
    parts = [f"{st.unit} day {st.day:5.2f}"]
    for name in KEY_STATES:
        parts.append(f"{_SHOWN[name][0].split()[0]} {_estimate(st, name).plain}")
    mspc = " ".join(f"{title} {_mspc(st, key).plain}" for key, title in _MSPC if key in st.mspc)
    if mspc:
        parts.append(mspc)
    parts.append(f"alarms: {_alarms(st).plain}")
    return " | ".join(parts)


def _header(state: LiveState) -> Text:
    minutes, seconds = divmod(int(state.wall_s), 60)
    done = state.phase in ("storing", "done")
    link = "stopped" if done else "connected" if state.connected else "reconnecting"
    text = Text()
    text.append("biopilot demo line", style="bold")
    text.append(
        f"  plant {state.endpoint}  day {state.plant_h / 24:5.2f} of {state.until_h / 24:g}"
        f"  x{state.speed:g}  wall {minutes}:{seconds:02d}  [{state.phase}]\n"
    )
    text.append(f"ingest {link}", style="green" if state.connected or done else "bold yellow")
    text.append(
        f": {state.received:,} samples received ({state.backfilled:,} backfilled), "
        f"{state.stored:,} stored, sessions {state.sessions}, connection losses {state.losses}; "
        f"monitor backlog {state.backlog:,}"
    )
    return text


def _estimate(st: UnitStatus, name: str) -> Text:
    if name not in st.estimates:
        return Text("-")
    scale = _SHOWN[name][1]
    mean, lo, hi = (v * scale for v in st.estimates[name])
    return Text(f"{mean:.2f} [{lo:.2f}-{hi:.2f}]")


def _mspc(st: UnitStatus, key: str) -> Text:
    if key not in st.mspc:
        return Text("-")
    value = st.mspc[key]
    if key not in st.mspc_limits:  # scored, not alarmed (a controlled unit's process block)
        return Text(f"{value:.3g} (info)", style="dim")
    limit = st.mspc_limits[key]
    style = "bold red" if value > limit else "green"
    return Text(f"{value:.3g}/{limit:.3g}", style=style)


def _alarms(st: UnitStatus, *, since: bool = False) -> Text:
    """Active alarms by severity; cleared ones still to acknowledge, dimmed."""
    if not st.alarms:
        return Text("none", style="green")
    text = Text()
    for i, a in enumerate(st.alarms):
        if i:
            text.append(", ")
        if a.state == "unack_rtn":
            text.append(f"{a.alarm} (cleared)", style="dim")
            continue
        text.append(a.alarm, style=_SEVERITY_STYLE.get(a.severity, ""))
        if since and a.since_utc is not None and st.time_utc is not None:
            day = st.day - (st.time_utc - a.since_utc).total_seconds() / 86400.0
            text.append(f" since day {day:.2f}")
        if a.alarm.endswith(".MSPC") and st.diagnosis:
            text.append(f" <- {st.diagnosis}")
    return text
