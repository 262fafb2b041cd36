"""The recipe as a controller output: what the fallback applies when the plan cannot be used.

The fallback follows the batch's recipe (its feed boluses, continuous feed, temperature
profile) but holds the glucose top-up inside the plant's band: the platform recipe tops up to
8 g/L once a day, which breaks the 1-6 g/L limit the controller must keep, so the fallback
tops up at every control interval to the band's upper limit minus its back-off, and never
feeds past the working volume. It needs only the state estimate, so it is always available.
"""

from __future__ import annotations

import numpy as np

from biopilot.control.model import state_index
from biopilot.control.nlp import Bands
from biopilot.control.setpoints import Setpoints
from biopilot.models.kinetics import add_bolus
from biopilot.twin import Recipe
from biopilot.twin.process import bolus_plan, segment_inputs

__all__ = ["recipe_setpoints"]

_GLC, _VOL = state_index("glucose_g_per_l"), state_index("volume_l")


def recipe_setpoints(
    recipe: Recipe,
    x: np.ndarray,
    t_h: float,
    interval_h: float,
    bands: Bands,
    *,
    bolus_medium: str = "feed_a",
    feed_medium: str = "feed_b",
) -> Setpoints:
    """Return the recipe's moves for the interval ``[t_h, t_h + interval_h)`` from state ``x``.

    Boluses of ``bolus_medium`` due in the interval are given at its start; the continuous
    ``feed_medium`` runs at the recipe's rate where the recipe runs it; glucose stock tops the
    level up to ``glucose_max - back-off`` once the recipe's glucose feeding has started;
    every volume is cut so the batch stays below ``volume_max - back-off``.
    """
    end = t_h + interval_h - 1e-9
    plan = bolus_plan(recipe, ())  # the twin's own reading of the recipe
    bolus = sum(
        volume for t, items in plan.items() if t_h - 1e-9 <= t < end
        for kind, medium, volume in items if kind == "bolus_feed" and medium == bolus_medium
    )  # fmt: skip
    held = segment_inputs(recipe, (), t_h, t_h + interval_h)
    rate = held[0] if any(c.medium == feed_medium for c in recipe.continuous_feeds) else 0.0
    room = max(0.0, bands.volume_max_l - bands.volume_backoff_l - float(x[_VOL]))
    bolus = min(bolus, room)
    rate = min(rate, max(0.0, room - bolus) / interval_h)
    glucose = 0.0
    g = recipe.glucose_feed
    if g is not None and t_h >= g.start_day * 24.0 - 1e-9:
        after = np.asarray(add_bolus(x, bolus, recipe.media[bolus_medium].composition()))
        band_top = bands.glucose_max_g_per_l - bands.glucose_backoff_high_g_per_l
        target = min(g.target_g_per_l, band_top)
        vol, level = float(after[_VOL]), float(after[_GLC])
        if level < target:
            glucose = (target - level) * vol / (g.stock_g_per_l - target)
        glucose = min(glucose, max(0.0, room - bolus - rate * interval_h))
    return Setpoints(bolus, glucose, rate, held[4])
