"""Adapt the controller's model to the batch it runs: fit parameter multipliers to what it saw.

Each applied control interval leaves a transition (state estimate at its start, the moves
and temperature applied, the estimate at its end). The multipliers ``theta`` of
:data:`~biopilot.control.model.ADAPTED_PARAMETERS` are fitted by weighted least squares of
the one-interval predictions of the *same* interval model the optimiser uses, over a window
of the latest transitions, with a Gaussian prior on ``log theta`` around the nominal values
(so a short history moves theta little). This is the controller's answer to plant-model
mismatch; an estimator with augmented parameters can supply theta instead.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from biopilot.control.model import ADAPTED_PARAMETERS, STATE_SCALE, IntervalModel

__all__ = ["FIT_STATE_SD", "ParameterAdapter", "Transition"]

#: Standard deviation (scaled units, see STATE_SCALE) of each state in the fit; huge = unused.
#: VCD 5e5 cells/mL, dead 1e6, glucose 0.2 g/L, lactate 0.15 g/L, titer 0.05 g/L.
FIT_STATE_SD = np.array([0.05, 0.1, 0.2, 1e3, 0.15, 1e3, 0.05, 1e3, 1e3, 1e3, 1e3, 1e3])


@dataclass(frozen=True)
class Transition:
    """One applied interval: start state, moves, temperature (degC), end state (unscaled)."""

    x_start: np.ndarray
    moves: np.ndarray
    temperature_c: float
    x_end: np.ndarray


class ParameterAdapter:
    """Fit multipliers of the adapted parameters to the latest transitions.

    Parameters
    ----------
    model : IntervalModel
        The controller's interval model (shared kinetics).
    window : int
        Number of latest transitions fitted.
    prior_sd : float
        Standard deviation of ``log theta`` around 0 (nominal parameters).
    bounds : (float, float)
        Lower and upper bound of each multiplier.
    """

    def __init__(
        self,
        model: IntervalModel,
        *,
        window: int = 8,
        prior_sd: float = 0.15,
        bounds: tuple[float, float] = (0.6, 1.5),
    ) -> None:
        self.window = window
        self.bounds = bounds
        self.history: deque[Transition] = deque(maxlen=window)
        self.theta_ = np.ones(len(ADAPTED_PARAMETERS))
        self._solver = self._build(model, prior_sd)

    def add(self, transition: Transition) -> None:
        """Record one applied interval."""
        self.history.append(transition)

    def fit(self) -> np.ndarray:
        """Refit and return ``theta_`` (unchanged, and returned, if the fit fails)."""
        if not self.history:
            return self.theta_
        m, nx = self.window, len(STATE_SCALE)
        xs = np.zeros((m, nx))
        xe = np.zeros((m, nx))
        us = np.zeros((m, 3))
        temps = np.full(m, 37.0)
        weight = np.zeros(m)
        first = self.history[0]  # unused rows repeat it with weight 0 (zeros would give NaN)
        xs[:], xe[:], us[:] = first.x_start / STATE_SCALE, first.x_end / STATE_SCALE, first.moves
        for i, tr in enumerate(self.history):
            xs[i], xe[i] = tr.x_start / STATE_SCALE, tr.x_end / STATE_SCALE
            us[i], temps[i], weight[i] = tr.moves, tr.temperature_c, 1.0
        p = np.concatenate([xs.ravel(), us.ravel(), temps, xe.ravel(), weight])
        lo, hi = np.log(self.bounds[0]), np.log(self.bounds[1])
        sol = self._solver(x0=np.log(self.theta_), p=p, lbx=lo, ubx=hi)
        if self._solver.stats().get("success", False):
            self.theta_ = np.exp(np.asarray(sol["x"]).ravel())
        return self.theta_

    def _build(self, model: IntervalModel, prior_sd: float) -> Any:
        import casadi as ca

        m, nx, npar = self.window, len(STATE_SCALE), len(ADAPTED_PARAMETERS)
        log_theta = ca.SX.sym("log_theta", npar)
        xs = ca.SX.sym("xs", nx, m)
        us = ca.SX.sym("us", 3, m)
        temps = ca.SX.sym("T", m)
        xe = ca.SX.sym("xe", nx, m)
        weight = ca.SX.sym("w", m)
        theta = ca.exp(log_theta)
        _, pred = model.step.map(m)(xs, us, temps.T, ca.repmat(theta, 1, m))
        resid = (pred - xe) / ca.repmat(ca.DM(FIT_STATE_SD), 1, m)
        cost = ca.sum2(weight.T * ca.sum1(resid**2)) + ca.sumsqr(log_theta / prior_sd)
        p = ca.vertcat(ca.vec(xs), ca.vec(us), temps, ca.vec(xe), weight)
        opts: dict[str, Any] = {
            "print_time": False,
            "ipopt": {"print_level": 0, "sb": "yes", "max_iter": 50},
        }
        return ca.nlpsol("adapt", "ipopt", {"x": log_theta, "f": cost, "p": p}, opts)
