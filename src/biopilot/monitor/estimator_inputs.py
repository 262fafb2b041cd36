"""What the state estimator knows the vessel received: recipe feeds, logged boluses, temperature.

The estimator is told the inputs a plant logs (feed pump rates, bolus volumes, temperature
setpoint), not the culture's response. The recipe's continuous feeds and temperature profile
come from :func:`biopilot.twin.process.segment_inputs` (the same code the twin uses, without
faults: the estimator does not know of a fault); boluses come from the batch log.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from biopilot.models.kinetics import INPUT_NAMES, FeedComposition
from biopilot.twin.batch import BatchResult
from biopilot.twin.process import bolus_plan, segment_inputs
from biopilot.twin.recipe import Recipe

__all__ = ["Bolus", "FeedSchedule", "Segment", "StepInputs", "glucose_stock"]

_EPS_H = 1e-9


@dataclass(frozen=True)
class Bolus:
    """A bolus of ``volume_l`` litres of ``feed`` added at ``t_h`` hours after inoculation."""

    t_h: float
    volume_l: float
    feed: FeedComposition


@dataclass(frozen=True)
class Segment:
    """Inputs held over ``[t0_h, t1_h)``; ``boluses`` are mixed in at ``t0_h``."""

    t0_h: float
    t1_h: float
    u: tuple[float, ...]
    boluses: tuple[Bolus, ...] = ()


@dataclass(frozen=True)
class StepInputs:
    """Inputs of one estimator step, as a live plant logs them.

    Parameters
    ----------
    u : sequence of float, optional
        Kinetic inputs held over the step, in the order of
        :data:`~biopilot.models.kinetics.INPUT_NAMES` (feed L/h, its glucose g/L, glutamine
        mmol/L, osmolality mOsm/kg, temperature degC); None takes the estimator's schedule.
        Given, it replaces the schedule (its feeds and boluses) for this step.
    boluses : sequence of (float, FeedComposition)
        Boluses (litres, composition) added at the start of the step, beside the schedule's.
    """

    u: Sequence[float] | None = None
    boluses: Sequence[tuple[float, FeedComposition]] = field(default_factory=tuple)


class FeedSchedule:
    """The inputs of a batch over time: the recipe's feeds and temperature, and the boluses.

    Parameters
    ----------
    recipe : Recipe
        Continuous feeds, temperature profile and media.
    boluses : sequence of Bolus
        Boluses actually delivered (from the batch log); see :meth:`planned` and
        :meth:`from_batch`.
    """

    def __init__(self, recipe: Recipe, boluses: Sequence[Bolus] = ()) -> None:
        self.recipe = recipe
        self.boluses = tuple(sorted(boluses, key=lambda b: b.t_h))
        breaks = set(bolus_plan(recipe, ())) | {b.t_h for b in self.boluses}
        self._breaks = tuple(sorted(breaks))

    @classmethod
    def planned(cls, recipe: Recipe) -> FeedSchedule:
        """Return the schedule of the recipe's planned bolus feeds (no glucose top-ups)."""
        return cls(
            recipe,
            [
                Bolus(b.day * 24.0, b.volume_l, recipe.media[b.medium].composition())
                for b in recipe.bolus_feeds
            ],
        )

    @classmethod
    def from_batch(cls, batch: BatchResult) -> FeedSchedule:
        """Return the schedule of the boluses a batch logged (its ``bolus_feed``/``glucose_feed``).

        A bolus feed's medium is the recipe's at that time; a glucose top-up is the recipe's
        glucose stock. Volumes are those delivered (after any pump fault or volume limit).
        """
        recipe = batch.recipe
        media = {
            round(t, 6): [m for kind, m, _ in items if kind == "bolus_feed"]
            for t, items in bolus_plan(recipe, ()).items()
        }
        out = []
        for e in batch.events:
            if e.kind not in ("bolus_feed", "glucose_feed") or not e.value:
                continue
            t_h = (e.time_utc - batch.start_utc) / pd.Timedelta(hours=1)
            if e.kind == "glucose_feed":
                feed = glucose_stock(recipe)
            else:
                medium = media[round(t_h, 6)].pop(0)
                feed = recipe.media[medium].composition()
            out.append(Bolus(float(t_h), float(e.value), feed))
        return cls(recipe, out)

    def segments(self, t0_h: float, t1_h: float) -> list[Segment]:
        """Return the constant-input segments of ``[t0_h, t1_h)`` with their boluses.

        A bolus at ``t0_h`` belongs to this interval; one at ``t1_h`` to the next. An empty
        interval (``t0_h == t1_h``) is one segment with the inputs that start there and the
        boluses given at that instant.
        """
        if t1_h <= t0_h + _EPS_H:
            u = segment_inputs(self.recipe, (), t0_h, t0_h)
            here = tuple(x for x in self.boluses if abs(x.t_h - t0_h) <= _EPS_H)
            return [Segment(t0_h, t0_h, tuple(u), here)]
        inner = [t for t in self._breaks if t0_h + _EPS_H < t < t1_h - _EPS_H]
        out = []
        for a, b in itertools.pairwise([t0_h, *inner, t1_h]):
            u = segment_inputs(self.recipe, (), a, b)
            here = tuple(x for x in self.boluses if a - _EPS_H <= x.t_h < b - _EPS_H)
            out.append(Segment(a, b, tuple(u), here))
        return out

    def step_segments(self, t0_h: float, t1_h: float, inputs: StepInputs | None) -> list[Segment]:
        """Return the segments of one step: the schedule's, or the ``inputs`` given for it."""
        if inputs is None:
            return self.segments(t0_h, t1_h)
        sched = self.segments(t0_h, t1_h)
        extra = tuple(Bolus(t0_h, v, f) for v, f in inputs.boluses)
        if inputs.u is None:
            first = sched[0] if sched else Segment(t0_h, t1_h, ())
            return [Segment(first.t0_h, first.t1_h, first.u, first.boluses + extra), *sched[1:]]
        if len(inputs.u) != len(INPUT_NAMES):
            raise ValueError(f"inputs.u: expected {len(INPUT_NAMES)} values {INPUT_NAMES}")
        return [Segment(t0_h, t1_h, tuple(float(v) for v in inputs.u), extra)]


def glucose_stock(recipe: Recipe) -> FeedComposition:
    """Return the composition of the recipe's glucose stock (osmolality from its molarity)."""
    g = recipe.glucose_feed
    if g is None:
        raise ValueError("recipe has no glucose_feed: a glucose top-up cannot be interpreted")
    return g.composition()
