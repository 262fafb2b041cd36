"""Serve stepping bioreactor twins over OPC UA, on an accelerated simulated clock.

Time: each unit is a :class:`biopilot.twin.Bioreactor` stepped one simulated minute at a
time. At ``speed`` simulated seconds per wall second, ``speed / 60`` steps are due per wall
second; a tick loop (every 20 ms of wall time) runs the steps due since the start (for at
most :data:`TICK_BUDGET_S` at a time, so the server stays responsive) and publishes each step's
readings with the twin's *simulated* UTC time as source timestamp. Wall time is only used
to pace the loop. A Raman spectrum is published every 15 simulated minutes. A unit stops
at its recipe's harvest; the server keeps serving its values and history.

Setpoints: ``temperature_c/SP`` (degC) and ``feed/SP`` (continuous feed, L/h) are NaN by
default (the recipe runs). Once a client writes a finite value to either, the unit runs on
:class:`~biopilot.twin.PlantInputs` from the next step: the written value(s), the recipe's
value for the other, and no recipe boluses (a controller then owns the feeding). Dose
commands ``bolus/SP`` (L of the recipe's bolus feed) and ``glucose_bolus/SP`` (L of its
glucose stock) are delivered at the next step and reset to 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from biopilot.line.address_space import SETPOINT_SPECS, TWIN_TAG_SPECS, node_text
from biopilot.line.server import LineServer
from biopilot.line.tagmap import TagMap
from biopilot.models.kinetics import STATE_NAMES
from biopilot.twin import Bioreactor, PlantInputs
from biopilot.twin.bioreactor import RAMAN_PERIOD_MIN
from biopilot.twin.process import segment_inputs
from biopilot.twin.raman import BatchEffects, RamanSynthesizer

__all__ = ["TICK_BUDGET_S", "TwinLine", "twin_tagmap", "unit_names"]

#: Most wall seconds of stepping before the loop yields to the server.
TICK_BUDGET_S = 0.02
_TICK_S = 0.02
_log = logging.getLogger(__name__)
# Raman concentration keys -> the twin state they come from.
_RAMAN_FROM_STATE = {
    "glucose_g_per_l": "glucose_g_per_l",
    "lactate_g_per_l": "lactate_g_per_l",
    "glutamine_mmol_per_l": "glutamine_mmol_per_l",
    "ammonium_mmol_per_l": "ammonia_mmol_per_l",
    "titer_g_per_l": "titer_g_per_l",
    "vcd_cells_per_ml": "vcd_cells_per_ml",
}


def unit_names(n_units: int) -> list[str]:
    """Return the names of ``n_units`` bioreactors: BR-01, BR-02, ..."""
    return [f"BR-{i + 1:02d}" for i in range(n_units)]


def twin_tagmap(
    n_units: int, *, site: str = "Site", area: str = "Area", ns: int = 2, raman: bool = True
) -> TagMap:
    """Return the tag map of a twin server of ``n_units`` (every PV, and Raman if asked)."""
    tags: list[dict[str, str]] = []
    for unit in unit_names(n_units):
        for spec in TWIN_TAG_SPECS:
            if spec.array and not raman:
                continue
            entry = {
                "unit": unit,
                "tag": spec.tag,
                "node": node_text(ns, site, area, unit, spec.tag),
                "units": spec.units,
            }
            if spec.array:
                entry["kind"] = "spectrum"
                entry["axis_node"] = node_text(ns, site, area, unit, spec.tag, "wavenumbers_cm1")
            tags.append(entry)
    return TagMap.model_validate({"site": site, "area": area, "tags": tags})


@dataclass
class _Unit:
    twin: Bioreactor
    rng: np.random.Generator
    effects: BatchEffects


class TwinLine:
    """``n_units`` stepping bioreactor twins published through a :class:`LineServer`.

    Parameters
    ----------
    server : LineServer
        Where the units are served (not started yet).
    n_units : int
        Number of bioreactors, named by :func:`unit_names`.
    seed : int
        Unit ``i`` is seeded ``seed + i`` (its batch), its Raman stream ``seed + 1000 + i``.
    speed : float
        Simulated seconds per wall second (3600: an hour a second, a 14-day batch in ~5.6 min).
    faults : sequence of str
        Faults injected in every unit (``"NAME@DAY[:MAG]"``).
    """

    def __init__(
        self,
        server: LineServer,
        n_units: int,
        *,
        seed: int = 0,
        speed: float = 3600.0,
        faults: Sequence[str] = (),
    ) -> None:
        if n_units < 1:
            raise ValueError(f"n_units must be >= 1, got {n_units}")
        if not speed > 0:
            raise ValueError(f"speed must be > 0 simulated s per wall s, got {speed}")
        self.server, self.speed = server, float(speed)
        self.raman = RamanSynthesizer()
        self.units: dict[str, _Unit] = {}
        for i, name in enumerate(unit_names(n_units)):
            rng = np.random.default_rng(seed + 1000 + i)
            twin = Bioreactor(seed=seed + i, unit=name, faults=faults)
            self.units[name] = _Unit(twin, rng, self.raman.draw_batch_effects(rng))
            server.add_unit(
                name, TWIN_TAG_SPECS + SETPOINT_SPECS, axis_cm1=self.raman.wavenumbers_cm1
            )
        self.steps = 0
        self._served = {spec.tag for spec in TWIN_TAG_SPECS}
        self._unserved: set[str] = set()
        server.clock = self._clock

    @property
    def finished(self) -> bool:
        """True once every unit has reached its harvest."""
        return all(u.twin.t_h >= u.twin.recipe.harvest_h - 1e-9 for u in self.units.values())

    async def advance(self, n_steps: int) -> None:
        """Step every unit ``n_steps`` simulated minutes (fewer at harvest) and publish."""
        for _ in range(n_steps):
            for name, unit in self.units.items():
                if unit.twin.t_h < unit.twin.recipe.harvest_h - 1e-9:
                    await self._step(name, unit)
            self.steps += 1

    async def run(self, duration_s: float | None = None, stop: asyncio.Event | None = None) -> None:
        """Step in simulated time at ``speed`` until harvest, ``duration_s`` or ``stop``.

        If the machine cannot keep up, the clock falls behind (steps are never skipped) and
        the loop still yields every :data:`TICK_BUDGET_S` so clients are served.
        """
        t0 = time.monotonic()
        done = 0
        while not self.finished and not (stop is not None and stop.is_set()):
            now = time.monotonic()
            if duration_s is not None and now - t0 >= duration_s:
                return
            due = int((now - t0) * self.speed / 60.0)
            while done < due and time.monotonic() - now < TICK_BUDGET_S and not self.finished:
                await self.advance(1)
                done += 1
            await asyncio.sleep(_TICK_S if done >= due else 0.0)

    def _clock(self, unit: str) -> datetime:
        """The simulated time of ``unit`` now."""
        return self.units[unit].twin.time_utc.to_pydatetime()

    async def _step(self, name: str, unit: _Unit) -> None:
        twin = unit.twin
        readings: dict[str, float | np.ndarray] = {}
        for tag, value in twin.step(await self._inputs(name, twin)).items():
            if tag in self._served:
                readings[tag] = value
            elif tag not in self._unserved:  # a tag the twin gained after this server started
                self._unserved.add(tag)
                _log.warning("twin tag %r has no variable in the address space; not served", tag)
        minute = round(twin.t_h * 60.0)
        if minute % RAMAN_PERIOD_MIN == 0:
            conc = {
                k: np.array([max(float(twin.state[STATE_NAMES.index(v)]), 0.0)])
                for k, v in _RAMAN_FROM_STATE.items()
            }
            spectrum = self.raman.spectra(np.array([twin.t_h]), conc, unit.rng, batch=unit.effects)
            readings["raman"] = spectrum[0]
        await self.server.publish(name, readings, twin.time_utc.to_pydatetime())

    async def _inputs(self, name: str, twin: Bioreactor) -> PlantInputs | None:
        """The plant inputs of the next step: None (recipe) unless a setpoint was written."""
        temp = self.server.setpoint(name, "temperature_c")
        feed = self.server.setpoint(name, "feed")
        bolus = await self.server.take_dose(name, "bolus")
        glucose = await self.server.take_dose(name, "glucose_bolus")
        if temp is None and feed is None and bolus == 0.0 and glucose == 0.0:
            return None
        t0 = twin.t_h
        recipe = twin.recipe
        day = t0 / 24.0
        active = [c.medium for c in recipe.continuous_feeds if c.start_day <= day < c.end_day]
        media = active or [c.medium for c in recipe.continuous_feeds] or list(recipe.media)
        rate = segment_inputs(recipe, [], t0, t0 + 1.0 / 60.0)[0] if feed is None else feed
        bolus_media = [b.medium for b in recipe.bolus_feeds] or list(recipe.media)
        return PlantInputs(
            feed_l_per_h=rate,
            feed_medium=media[0] if media else None,
            bolus_l=bolus,
            bolus_medium=bolus_media[0] if bolus_media else None,
            glucose_bolus_l=glucose,
            temperature_setpoint_c=temp,
        )
