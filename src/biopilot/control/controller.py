"""The feeding controller: shrinking-horizon economic NMPC with modes, limits and recipe fallback.

The loop reads as do-mpc's (STYLE.md)::

    decision = controller.step(estimate, t_h)   # decide (every interval_h hours)
    y = plant.step(decision.inputs, dt_h)       # None = the recipe runs
    estimate = estimator.step(y)

Manipulated: a bolus of the main feed and of glucose stock at the start of each interval, a
continuous feed rate held over it, and the temperature-shift time. The shift is integer-like;
it is handled by *enumeration*: while it is still ahead, the step solves the NLP with the
shift at the next candidate time and, when the current time is itself a candidate, also with
the shift now, and keeps the better plan (a one-step look-ahead on the shift decision; at
most two warm-started solves per step). Parameter multipliers are refitted each step
(:class:`~biopilot.control.adapt.ParameterAdapter`) before solving.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from biopilot.control.adapt import ParameterAdapter, Transition
from biopilot.control.fallback import recipe_setpoints
from biopilot.control.model import ADAPTED_PARAMETERS, IntervalModel, MoveMedia
from biopilot.control.nlp import Bands, MoveBounds, ShrinkingHorizonProblem, Solution, WarmStart
from biopilot.control.setpoints import (
    Alarm,
    ControlDecision,
    ControlMode,
    SetpointLimits,
    Setpoints,
    clamp_setpoints,
)
from biopilot.models.kinetics import STATE_NAMES, KineticParameters
from biopilot.twin import PlantInputs, Recipe, default_recipe

__all__ = ["Controller", "make_problem", "state_vector"]


def make_problem(
    recipe: Recipe | None = None,
    parameters: KineticParameters | None = None,
    *,
    interval_h: float = 6.0,
    bands: Bands | None = None,
    time_budget_s: float = 2.0,
    bolus_medium: str = "feed_a",
    feed_medium: str = "feed_b",
    feed_cost_kg_per_l: float = 0.0,
    limits: SetpointLimits | None = None,
) -> ShrinkingHorizonProblem:
    """Build the NLP for ``recipe`` (reusable by many controllers with the same settings).

    Raises
    ------
    KeyError
        If the recipe has no ``bolus_medium`` or ``feed_medium``.
    ValueError
        If the recipe has no glucose feed, or ``interval_h`` does not divide the batch.
    """
    recipe = default_recipe() if recipe is None else recipe
    if recipe.glucose_feed is None:
        raise ValueError("recipe.glucose_feed: the controller needs a glucose stock")
    n = recipe.harvest_h / interval_h
    if abs(n - round(n)) > 1e-9:
        raise ValueError(f"interval_h ({interval_h}) must divide the batch ({recipe.harvest_h} h)")
    media = MoveMedia(
        bolus=recipe.media[bolus_medium].composition(),
        glucose=recipe.glucose_feed.composition(),
        continuous=recipe.media[feed_medium].composition(),
    )
    bands = Bands(volume_max_l=recipe.working_volume_l) if bands is None else bands
    lim = SetpointLimits() if limits is None else limits  # the NLP's pump limits = the clamp's
    model = IntervalModel(media, parameters, interval_h=interval_h)
    return ShrinkingHorizonProblem(
        model,
        round(n),
        bands=bands,
        bounds=MoveBounds(lim.feed_bolus_max_l, lim.glucose_bolus_max_l, lim.feed_max_l_per_h),
        feed_cost_kg_per_l=feed_cost_kg_per_l,
        time_budget_s=time_budget_s,
    )


def state_vector(estimate: Any) -> np.ndarray:
    """Return the mean state (STATE_NAMES order) of an array, a name mapping or an estimate.

    An estimate is any object with a ``mean`` attribute (array or mapping), such as
    :class:`biopilot.monitor.estimator.Estimate`.

    Raises
    ------
    ValueError
        If the state has the wrong length, a missing name, or a non-finite value.
    """
    plain = isinstance(estimate, np.ndarray | Mapping | list | tuple)
    mean = estimate if plain else getattr(estimate, "mean", estimate)
    if isinstance(mean, Mapping):
        missing = [n for n in STATE_NAMES if n not in mean]
        if missing:
            raise ValueError(f"estimate: missing states {missing}")
        x = np.array([float(mean[n]) for n in STATE_NAMES])
    else:
        x = np.asarray(mean, dtype=float).ravel()
    if x.shape != (len(STATE_NAMES),) or not np.all(np.isfinite(x)):
        raise ValueError(f"estimate: expected {len(STATE_NAMES)} finite states, got {x}")
    return x


class Controller:
    """Shrinking-horizon economic NMPC of one fed-batch, with operator modes and fallback.

    Parameters
    ----------
    recipe : Recipe, optional
        The batch's recipe: media, glucose stock, temperatures, harvest time, and the
        fallback when the controller cannot decide (default :func:`default_recipe`).
    mode : ControlMode
        Starting mode.
    problem : ShrinkingHorizonProblem, optional
        A prebuilt NLP (:func:`make_problem`); built from ``recipe`` and ``parameters``
        if None.
    parameters : KineticParameters, optional
        The controller's nominal model parameters (when ``problem`` is None).
    shift_candidates_day : sequence of float
        Days at which the temperature shift may happen (multiples of the interval).
    limits : SetpointLimits, optional
        Clamps and rate limits of the output.
    adapt : bool
        Refit parameter multipliers to the batch's own transitions.
    bolus_medium, feed_medium : str
        Recipe media of the bolus feed and of the continuous feed.
    """

    def __init__(
        self,
        recipe: Recipe | None = None,
        *,
        mode: ControlMode = ControlMode.AUTOMATIC,
        problem: ShrinkingHorizonProblem | None = None,
        parameters: KineticParameters | None = None,
        shift_candidates_day: Sequence[float] = (4.0, 5.0, 6.0, 7.0),
        limits: SetpointLimits | None = None,
        adapt: bool = True,
        bolus_medium: str = "feed_a",
        feed_medium: str = "feed_b",
    ) -> None:
        self.recipe = default_recipe() if recipe is None else recipe
        self.mode = ControlMode(mode)
        self.limits = SetpointLimits() if limits is None else limits
        self.problem = problem or make_problem(self.recipe, parameters, limits=self.limits)
        self.media_names = (bolus_medium, feed_medium)
        self.interval_h = self.problem.model.interval_h
        self.shift_candidates_h = tuple(sorted(24.0 * d for d in shift_candidates_day))
        self.adapter = ParameterAdapter(self.problem.model) if adapt else None
        self.accepted: list[tuple[float, str]] = []
        self._shift_h: float | None = None
        self._warm: dict[float, WarmStart] = {}
        self._last: tuple[int, np.ndarray, Setpoints] | None = None
        self._pending: tuple[int, np.ndarray, ControlDecision] | None = None
        self._previous: Setpoints | None = None

    def step(self, estimate: Any, t_h: float) -> ControlDecision:
        """Decide the setpoints of the control interval starting at ``t_h`` hours.

        Parameters
        ----------
        estimate : array, mapping or estimate
            Current state estimate (see :func:`state_vector`).
        t_h : float
            Batch time, hours from inoculation (rounded to the control interval).

        Returns
        -------
        ControlDecision
            ``inputs`` is what to send the plant (None: the recipe runs).
        """
        x = state_vector(estimate)
        k = round(t_h / self.interval_h)
        if self._pending is not None:  # the last recommendation was not accepted
            self._recipe_runs(self._pending[2].t_h)
            self._pending = None
        theta = self._adapt(k, x)
        if self.mode is ControlMode.MANUAL or k >= self.problem.n:
            self._recipe_runs(t_h)
            status = "manual" if self.mode is ControlMode.MANUAL else "harvest"
            return ControlDecision(
                t_h, self.mode, None, None, x[None, :], float("nan"), status, 0.0
            )
        cold = not self._warm  # the first plan, made before inoculation, has no budget
        sol, shift_h, elapsed = self._solve(x, k, theta)
        late = not cold and elapsed > self.problem.time_budget_s
        if sol is None or not sol.success or late:
            return self._fallback(t_h, k, x, sol, elapsed, theta)
        temp = self._temperatures(shift_h)[k]
        bolus, glucose, feed = (float(v) for v in sol.moves[0])
        proposed = Setpoints(bolus, glucose, feed, float(temp))
        safe, notes = clamp_setpoints(proposed, self._previous, self.limits)
        inputs = safe.plant_inputs(*self.media_names)
        decision = ControlDecision(
            t_h, self.mode, safe, None, sol.states, sol.harvest_kg, sol.status, elapsed,
            shift_h=shift_h, theta=theta, notes=notes,
        )  # fmt: skip
        if self.mode is ControlMode.ADVISORY:
            self._pending = (k, x, decision)  # the recipe runs until someone accepts
            self._last = None
            return decision
        self._apply(k, x, safe)
        return replace(decision, inputs=inputs)

    @property
    def pending(self) -> ControlDecision | None:
        """The advisory recommendation awaiting acceptance, if any."""
        return None if self._pending is None else self._pending[2]

    def accept(self, user: str) -> PlantInputs:
        """Accept the pending advisory recommendation as ``user``; return what to send.

        Raises
        ------
        RuntimeError
            If there is no pending recommendation (not advisory, or already superseded).
        """
        if self._pending is None or self._pending[2].setpoints is None:
            raise RuntimeError("no recommendation is pending (advisory mode, latest step)")
        k, x, decision = self._pending
        assert decision.setpoints is not None
        self._apply(k, x, decision.setpoints)
        self.accepted.append((decision.t_h, user))
        self._pending = None
        return decision.setpoints.plant_inputs(*self.media_names)

    def _apply(self, k: int, x: np.ndarray, setpoints: Setpoints) -> None:
        self._last = (k, x, setpoints)
        self._previous = setpoints
        if self._shift_h is None and setpoints.temperature_c < self.recipe.temperature_c - 1e-9:
            self._shift_h = k * self.interval_h

    def _adapt(self, k: int, x: np.ndarray) -> np.ndarray:
        """Record the interval just applied (if any) and return the refitted multipliers."""
        if self.adapter is None:
            return np.ones(len(ADAPTED_PARAMETERS))
        if self._last is not None and self._last[0] == k - 1:
            _, x0, sp = self._last
            self.adapter.add(Transition(x0, sp.moves(), sp.temperature_c, x))
            return self.adapter.fit()
        return self.adapter.theta_

    def _recipe_runs(self, t_h: float) -> None:
        """Note that the recipe drives the next interval (its shift then happens as planned)."""
        self._last = None
        shift = self.recipe.temperature_shift_day
        if self._shift_h is None and shift is not None and t_h + self.interval_h > shift * 24.0:
            self._shift_h = shift * 24.0

    def _solve(
        self, x: np.ndarray, k: int, theta: np.ndarray
    ) -> tuple[Solution | None, float | None, float]:
        """Solve for each shift option still open; return the best plan, its shift, the time."""
        t = k * self.interval_h
        if self._shift_h is not None:
            options: list[float | None] = [self._shift_h]
        else:
            ahead = [c for c in self.shift_candidates_h if c >= t - 1e-9]
            options = list(ahead[:2] if ahead and abs(ahead[0] - t) < 1e-9 else ahead[:1])
            options = options or [None]
        best: tuple[Solution, float | None] | None = None
        elapsed, failed = 0.0, None
        for c in options:
            key = -1.0 if c is None else c
            warm = self._warm.get(key) or next(iter(self._warm.values()), None)
            sol, point = self.problem.solve(x, k, self._temperatures(c), theta, warm=warm)
            elapsed += sol.solve_time_s
            if sol.success or key not in self._warm:
                self._warm[key] = point
            if not sol.success:
                failed = sol
            elif best is None or sol.harvest_kg > best[0].harvest_kg:
                best = (sol, c)
        if best is None:
            return failed, None, elapsed
        return best[0], best[1], elapsed

    def _temperatures(self, shift_h: float | None) -> np.ndarray:
        t = np.arange(self.problem.n) * self.interval_h
        r = self.recipe
        if shift_h is None:
            return np.full(self.problem.n, r.temperature_c)
        return np.where(t >= shift_h - 1e-9, r.shift_temperature_c, r.temperature_c)

    def _fallback(
        self, t_h: float, k: int, x: np.ndarray, sol: Solution | None, elapsed: float,
        theta: np.ndarray,
    ) -> ControlDecision:
        """Return the recipe's action (glucose held in the band) with an alarm saying why.

        In automatic mode the recipe's moves are computed from the estimate and sent like any
        setpoints (clamped, rate-limited); in advisory mode nothing is sent: the plant's own
        recipe runs, as it does until a recommendation is accepted.
        """
        status = "no solve" if sol is None else sol.status
        if sol is not None and sol.success:
            reason = f"solver late: {elapsed:.3f} s > budget {self.problem.time_budget_s:g} s"
        else:
            reason = f"solver failed: {status}"
        alarm = Alarm(t_h, "MPC_FALLBACK", f"MPC fell back to the recipe ({reason})")
        safe, inputs = None, None
        notes: tuple[str, ...] = ()
        if self.mode is ControlMode.AUTOMATIC:
            bolus, feed = self.media_names
            moves = recipe_setpoints(self.recipe, x, t_h, self.interval_h, self.problem.bands,
                                     bolus_medium=bolus, feed_medium=feed)
            if self._shift_h is not None:  # keep the temperature the plan already shifted
                moves = replace(moves, temperature_c=float(self._temperatures(self._shift_h)[k]))
            safe, notes = clamp_setpoints(moves, self._previous, self.limits)
            inputs = safe.plant_inputs(bolus, feed)
            self._apply(k, x, safe)
        else:
            self._recipe_runs(t_h)
        return ControlDecision(
            t_h, self.mode, safe, inputs, x[None, :], float("nan"), status, elapsed,
            fallback_reason=reason, alarm=alarm, shift_h=self._shift_h, theta=theta,
            notes=notes,
        )  # fmt: skip
