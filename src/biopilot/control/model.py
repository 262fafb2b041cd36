"""The controller's view of the culture: one control interval of the shared kinetics in CasADi.

An interval starts with two boluses (``feed_a``-type medium, then glucose stock) mixed in by
:func:`biopilot.models.kinetics.add_bolus`, then holds a continuous feed and a temperature
for ``interval_h`` hours, integrated by fixed-step RK4 on
:func:`biopilot.models.kinetics.derivatives` with the CasADi backend, its ``max`` rounded
(:func:`smooth_casadi_ops`) — DESIGN rule 2: the same equations as the twin and the
estimator, with the controller's own parameter values.
States are scaled by :data:`STATE_SCALE` so the NLP is well conditioned. A few parameters
enter as *multipliers* ``theta`` of their nominal values, so the same function serves the
optimiser (theta fixed) and the parameter fit (theta free).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from biopilot.models.kinetics import (
    STATE_NAMES,
    FeedComposition,
    KineticParameters,
    Ops,
    add_bolus,
    casadi_ops,
    derivatives,
)

__all__ = [
    "ADAPTED_PARAMETERS",
    "N_CONTROLS",
    "SMOOTH_MAX_EPS",
    "STATE_SCALE",
    "IntervalModel",
    "MoveMedia",
    "smooth_casadi_ops",
    "state_index",
]

#: Typical magnitude of each state (divides the states inside the NLP).
STATE_SCALE = np.array([1e7, 1e7, 1.0, 1.0, 1.0, 1.0, 1.0, 1e3, 1e2, 1e4, 1e4, 10.0])
#: Parameters the controller adapts, as multipliers of the nominal values (in this order).
ADAPTED_PARAMETERS: tuple[str, ...] = (
    "mu_max_per_h",
    "q_mab_g_per_cell_h",
    "m_glc_mmol_per_cell_h",
    "kd_basal_per_h",
)
#: Controls per interval: feed bolus (L), glucose bolus (L), continuous feed (L/h).
N_CONTROLS = 3

#: Rounding width of the smooth ``max`` (in the arguments' units: cells/L, mmol/L, mmol/L/h).
SMOOTH_MAX_EPS = 1e-2
_IDX = {n: i for i, n in enumerate(STATE_NAMES)}


@dataclass(frozen=True)
class MoveMedia:
    """What the three manipulated streams bring in: bolus feed, glucose stock, continuous feed."""

    bolus: FeedComposition
    glucose: FeedComposition
    continuous: FeedComposition


class IntervalModel:
    """CasADi functions of one control interval of the shared kinetics.

    Parameters
    ----------
    media : MoveMedia
        Compositions of the bolus feed, the glucose stock and the continuous feed.
    parameters : KineticParameters, optional
        The controller's nominal parameters (default :class:`KineticParameters`).
    interval_h : float
        Length of one control interval, hours.
    substeps : int
        RK4 steps per interval.

    Attributes
    ----------
    step : casadi.Function
        ``(xs, u, temperature_c, theta) -> (xs_after_boluses, xs_end)``; ``xs`` scaled
        states, ``u`` = [feed bolus L, glucose bolus L, continuous feed L/h].
    """

    def __init__(
        self,
        media: MoveMedia,
        parameters: KineticParameters | None = None,
        *,
        interval_h: float = 12.0,
        substeps: int = 6,
    ) -> None:
        import casadi as ca

        self.media = media
        self.parameters = KineticParameters() if parameters is None else parameters
        self.interval_h = interval_h
        self.substeps = substeps
        xs = ca.SX.sym("xs", len(STATE_NAMES))
        u = ca.SX.sym("u", N_CONTROLS)
        temp = ca.SX.sym("temperature_c")
        theta = ca.SX.sym("theta", len(ADAPTED_PARAMETERS))
        x_b, x_end = self._expressions(xs, u, temp, theta)
        self.step = ca.Function(
            "interval",
            [xs, u, temp, theta],
            [x_b, x_end],
            ["xs", "u", "T", "theta"],
            ["xs_b", "xs_end"],
        )

    def predict(
        self, x: np.ndarray, u: np.ndarray, temperature_c: float, theta: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the unscaled states after the boluses and at the end of the interval."""
        th = np.ones(len(ADAPTED_PARAMETERS)) if theta is None else theta
        x_b, x_end = self.step(np.asarray(x) / STATE_SCALE, u, temperature_c, th)
        return np.asarray(x_b).ravel() * STATE_SCALE, np.asarray(x_end).ravel() * STATE_SCALE

    def _expressions(self, xs: Any, u: Any, temp: Any, theta: Any) -> tuple[Any, Any]:
        import casadi as ca

        ops = smooth_casadi_ops()
        scale = ca.DM(STATE_SCALE)
        p = dataclasses.replace(
            self.parameters,
            **{n: getattr(self.parameters, n) * theta[i] for i, n in enumerate(ADAPTED_PARAMETERS)},
        )
        x = xs * scale
        x = add_bolus(x, u[0], self.media.bolus, ops)
        x = add_bolus(x, u[1], self.media.glucose, ops)
        x_b = x / scale
        c = self.media.continuous
        kin_u = ca.vertcat(
            u[2], c.glucose_g_per_l, c.glutamine_mmol_per_l, c.osmolality_mosm_per_kg, temp
        )
        h = self.interval_h / self.substeps

        def f(z: Any) -> Any:
            return derivatives(z * scale, kin_u, p, ops) / scale

        z = x_b
        for _ in range(self.substeps):
            k1 = f(z)
            k2 = f(z + 0.5 * h * k1)
            k3 = f(z + 0.5 * h * k2)
            k4 = f(z + h * k3)
            z = z + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        return x_b, z


def smooth_casadi_ops(eps: float = SMOOTH_MAX_EPS) -> Ops:
    """Return the CasADi backend with a smooth ``max(a, b)`` (same equations, no kinks).

    ``max`` is rounded as ``(a + b + sqrt((a - b)^2 + eps^2)) / 2``: Newton-type solvers stall
    on the kinks of the exact max (pH-control base switching off when lactate turns from
    produced to consumed, concentrations at zero); the rounding moves the value by at most
    ``eps / 2`` (0.005 mmol/L or mmol/L/h by default).
    """
    import casadi as ca

    exact = casadi_ops()
    return Ops(
        exp=exact.exp,
        fmax=lambda a, b: 0.5 * (a + b + ca.sqrt((a - b) ** 2 + eps**2)),
        stack=exact.stack,
    )


def state_index(name: str) -> int:
    """Return the row of state ``name`` in :data:`~biopilot.models.kinetics.STATE_NAMES`."""
    return _IDX[name]
