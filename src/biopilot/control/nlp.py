"""The shrinking-horizon economic NLP: maximise harvested mAb, multiple shooting, IPOPT.

One NLP is built for the whole batch (``n_intervals`` control intervals from inoculation to
harvest) and reused at every step: intervals already past are *frozen* by a parameter flag
(their state is carried unchanged, their moves fixed to zero), so the horizon shrinks without
rebuilding the solver, and the previous solution is a warm start at the same indices.

Objective (minimised): ``-titer * volume`` at harvest (kg of mAb) plus a feed cost
(``feed_cost_kg_per_l`` kg-equivalent per litre fed, 0 by default) plus an exact L1 penalty on
soft path constraints. Constraints are soft (slack ``s >= 0``) so a state already outside its
band (after a disturbance) never makes the problem infeasible; with the back-offs of
:class:`Bands` the nominal plan keeps a margin to the hard limits for plant-model mismatch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from biopilot.control.model import ADAPTED_PARAMETERS, N_CONTROLS, STATE_SCALE, IntervalModel
from biopilot.control.model import state_index as _i

__all__ = ["Bands", "MoveBounds", "ShrinkingHorizonProblem", "Solution", "WarmStart"]

_GLC, _OSM, _VOL, _LAC, _TITER = (
    _i("glucose_g_per_l"),
    _i("osmolality_mosm_per_kg"),
    _i("volume_l"),
    _i("lactate_g_per_l"),
    _i("titer_g_per_l"),
)
_U_SCALE = np.array([10.0, 5.0, 0.5])
_N_SOFT = 7
#: Statuses whose point is used as the plan.
_ACCEPTED = ("Solve_Succeeded", "Solved_To_Acceptable_Level")
#: A real-time iterate stopped by the iteration or time cap is used when this (nearly)
#: feasible: the plan then improves over the following steps, each warm-started from the last
#: (real-time iteration, Diehl et al. 2005, "Real-time optimization for large scale nonlinear
#: processes", Springer LNCSE 47).
_USABLE_INF_PR = 1e-3
_CAPPED = ("Maximum_Iterations_Exceeded", "Maximum_CpuTime_Exceeded", "Maximum_WallTime_Exceeded")
#: IPOPT options of a cold solve (before inoculation, offline): quasi-Newton, generous limits.
_COLD = {"hessian_approximation": "limited-memory", "max_iter": 600, "max_wall_time": 120.0}
#: Limits of the exact-Hessian refinement of a cold solve (offline, not held to the budget).
_REFINE = {"max_iter": 400, "max_wall_time": 120.0}
#: IPOPT options of a primal-dual warm start (small initial barrier, little push inward).
_WARM = {
    "max_iter": 200,
    "warm_start_init_point": "yes",
    "mu_init": 1e-5,
    "warm_start_bound_push": 1e-6,
    "warm_start_mult_bound_push": 1e-6,
    "warm_start_slack_bound_push": 1e-6,
}
#: Lower bound of the scaled states: a little below zero, as fixed-step RK4 undershoots where a
#: nutrient runs out (a bound at 0 would make those nodes locally infeasible).
_STATE_MIN = -0.05
#: Loose physical upper bounds on the states (keep IPOPT's iterates in a sane region).
_STATE_MAX = np.array([1e8, 1e8, 30.0, 50.0, 20.0, 50.0, 30.0, 4e3, 1e3, 1e6, 1e6, 1e3])


@dataclass(frozen=True)
class Bands:
    """Hard limits on the true plant and the back-off margins the plan keeps from them.

    Units in the names; the NLP bound is the limit minus (or plus) its back-off.
    """

    glucose_min_g_per_l: float = 1.0
    glucose_max_g_per_l: float = 6.0
    osmolality_max_mosm_per_kg: float = 450.0
    volume_max_l: float = 2000.0
    lactate_max_g_per_l: float = 4.0
    glucose_backoff_low_g_per_l: float = 0.8
    glucose_backoff_high_g_per_l: float = 0.6
    osmolality_backoff_mosm_per_kg: float = 20.0
    volume_backoff_l: float = 25.0
    lactate_backoff_g_per_l: float = 0.5


@dataclass(frozen=True)
class MoveBounds:
    """Pump limits per control interval: bolus volumes (L) and continuous feed rate (L/h)."""

    feed_bolus_max_l: float = 60.0
    glucose_bolus_max_l: float = 20.0
    feed_rate_max_l_per_h: float = 1.0

    def upper(self) -> np.ndarray:
        """Return the upper bounds as an array ``[feed bolus, glucose bolus, feed rate]``."""
        return np.array(
            [self.feed_bolus_max_l, self.glucose_bolus_max_l, self.feed_rate_max_l_per_h]
        )


@dataclass(frozen=True)
class WarmStart:
    """A primal-dual point of the NLP (variables, bound and constraint multipliers)."""

    primal: np.ndarray
    lam_x: np.ndarray
    lam_g: np.ndarray


@dataclass(frozen=True)
class Solution:
    """One NLP solve: the plan from interval ``first`` on, and how the solve went.

    ``moves`` rows are intervals (``[feed bolus L, glucose bolus L, feed L/h]``), ``states``
    rows are interval boundaries (unscaled states); ``harvest_kg`` the predicted mAb at
    harvest; ``max_slack`` the largest constraint relaxation (scaled units, 0 = all met).
    """

    success: bool
    status: str
    solve_time_s: float
    harvest_kg: float
    moves: np.ndarray
    states: np.ndarray
    max_slack: float
    first: int


class ShrinkingHorizonProblem:
    """A reusable shrinking-horizon NLP over one batch (build once, solve every step).

    Parameters
    ----------
    model : IntervalModel
        The interval map (shared kinetics with the controller's parameters).
    n_intervals : int
        Control intervals from inoculation to harvest.
    bands : Bands
        Limits and back-offs.
    bounds : MoveBounds
        Pump limits.
    feed_cost_kg_per_l : float
        Cost of one litre fed, in kg of mAb equivalent (0 = pure yield objective).
    penalty_per_unit : float
        L1 penalty (kg per unit of scaled violation) of the soft constraints.
    time_budget_s : float
        Wall time allowed for one control step, seconds. A warm solve stops at 40 % of it
        (IPOPT ``max_wall_time``: a step solves at most two NLPs, each re-simulated first)
        and its iterate is used if feasible, else the re-simulated previous plan; a solve
        that still overruns the budget is reported as failed ("late").
    ipopt_options, warm_options : dict, optional
        Extra IPOPT options of every solve, and of the warm-started solves only.
    move_weight : float
        Weight (kg per scaled move squared) of the moves and of 10x their changes between
        intervals: regularises flat directions and smooths the feed profile.
    """

    def __init__(
        self,
        model: IntervalModel,
        n_intervals: int,
        *,
        bands: Bands | None = None,
        bounds: MoveBounds | None = None,
        feed_cost_kg_per_l: float = 0.0,
        penalty_per_unit: float = 50.0,
        time_budget_s: float = 2.0,
        ipopt_options: dict[str, Any] | None = None,
        warm_options: dict[str, Any] | None = None,
        move_weight: float = 1e-2,
    ) -> None:
        self.model = model
        self.n = n_intervals
        self.bands = Bands() if bands is None else bands
        self.bounds = MoveBounds() if bounds is None else bounds
        self.time_budget_s = time_budget_s
        self.move_weight = move_weight
        extra = ipopt_options or {}
        self.last_iterations = 0
        self._solver = self._build(feed_cost_kg_per_l, penalty_per_unit, _COLD | extra)
        self._refine_solver = self._build(
            feed_cost_kg_per_l, penalty_per_unit, _WARM | _REFINE | extra
        )
        self._warm_solver = self._build(
            feed_cost_kg_per_l, penalty_per_unit, _WARM | extra | (warm_options or {})
        )

    def solve(
        self,
        x0: np.ndarray,
        first: int,
        temperatures_c: np.ndarray,
        theta: np.ndarray | None = None,
        *,
        warm: WarmStart | None = None,
    ) -> tuple[Solution, WarmStart]:
        """Solve from state ``x0`` at the start of interval ``first``.

        Parameters
        ----------
        x0 : ndarray
            Current state estimate (unscaled, :data:`STATE_NAMES` order).
        first : int
            Index of the current interval (0 = inoculation).
        temperatures_c : ndarray
            Temperature setpoint of each of the ``n_intervals`` intervals, degC.
        theta : ndarray, optional
            Multipliers of :data:`ADAPTED_PARAMETERS` (default ones).
        warm : WarmStart, optional
            Primal-dual warm start (a previous return value). Without one, a cold quasi-Newton
            solve from a recipe-like forward simulation comes first (for the plan made before
            inoculation; it may take seconds and is not held to ``time_budget_s``).

        Returns
        -------
        (Solution, WarmStart)
            The plan and the primal-dual point to warm-start the next solve.
        """
        nx, n = len(STATE_SCALE), self.n
        th = np.ones(len(ADAPTED_PARAMETERS)) if theta is None else np.asarray(theta, float)
        active = (np.arange(n) >= first).astype(float)
        xs0 = np.asarray(x0, float) / STATE_SCALE
        lbx, ubx = self._variable_bounds(xs0, active)
        params = np.concatenate([xs0, temperatures_c, th, active])
        t0, cold = time.perf_counter(), warm is None
        if warm is None:  # cold: quasi-Newton from a recipe-like guess, then refine
            w0 = self._initial_guess(xs0, first, temperatures_c, th)
            sol = self._solver(
                x0=np.clip(w0, lbx, ubx), p=params, lbx=lbx, ubx=ubx, lbg=self._lbg, ubg=self._ubg
            )
            warm = WarmStart(*(np.asarray(sol[k]).ravel() for k in ("x", "lam_x", "lam_g")))
        w0 = warm.primal.copy() if cold else self._feasible_start(warm.primal, params, first)
        w0[:nx] = xs0
        solver = self._refine_solver if cold else self._warm_solver
        duals = {"lam_x0": warm.lam_x, "lam_g0": warm.lam_g}
        sol = solver(
            x0=np.clip(w0, lbx, ubx),
            p=params,
            lbx=lbx,
            ubx=ubx,
            lbg=self._lbg,
            ubg=self._ubg,
            **duals,
        )
        elapsed = time.perf_counter() - t0
        stats = solver.stats()
        status = str(stats.get("return_status", "unknown"))
        w = np.asarray(sol["x"]).ravel()
        self.last_iterations = int(stats.get("iter_count", -1))
        point = WarmStart(w, np.asarray(sol["lam_x"]).ravel(), np.asarray(sol["lam_g"]).ravel())
        inf_pr = stats.get("iterations", {}).get("inf_pr", [np.inf])[-1]
        usable = status in _CAPPED and inf_pr < _USABLE_INF_PR
        ok = bool(stats.get("success", False)) or status in _ACCEPTED or usable
        if usable:
            status = f"suboptimal iterate (inf_pr {inf_pr:.1e}): {status}"
        elif not ok and not cold and status in _CAPPED:
            # The capped iterate is not yet feasible: the re-simulated previous plan is (it
            # was the start), so it stands for this step while the iterations go on.
            w, ok = w0, True
            status = f"previous plan, re-simulated ({status})"
        if not cold and elapsed > self.time_budget_s:
            ok, status = False, f"late ({elapsed:.3f} s > {self.time_budget_s:g} s): {status}"
        return self._unpack(w, ok, status, elapsed, first), point

    def _build(self, feed_cost: float, rho: float, extra: dict[str, Any]) -> Any:
        import casadi as ca

        nx, n, nu = len(STATE_SCALE), self.n, N_CONTROLS
        X = ca.MX.sym("X", nx, n + 1)
        U = ca.MX.sym("U", nu, n)
        S = ca.MX.sym("S", _N_SOFT, n)
        xs0 = ca.MX.sym("x0", nx)
        temp = ca.MX.sym("T", n)
        theta = ca.MX.sym("theta", len(ADAPTED_PARAMETERS))
        active = ca.MX.sym("active", n)
        b = self.bands
        u = U * ca.repmat(ca.DM(_U_SCALE), 1, n)
        xb, xe = self.model.step.map(n)(X[:, :n], u, temp.T, ca.repmat(theta, 1, n))
        on = ca.repmat(active.T, nx, 1)
        # X[:, 0] is fixed to the estimate by its bounds (no redundant equality rows).
        g_eq = ca.vec(X[:, 1:] - (on * xe + (1 - on) * X[:, :n]))
        glc_hi = b.glucose_max_g_per_l - b.glucose_backoff_high_g_per_l
        glc_lo = b.glucose_min_g_per_l + b.glucose_backoff_low_g_per_l
        osm_hi = (b.osmolality_max_mosm_per_kg - b.osmolality_backoff_mosm_per_kg) / 1e2
        vol_hi = (b.volume_max_l - b.volume_backoff_l) / 1e3
        lac_hi = b.lactate_max_g_per_l - b.lactate_backoff_g_per_l
        # The upper band limits what the boluses add: a level already above it (the medium
        # starts at the limit) falls by consumption alone and must not force dilution.
        glc_cap = 0.5 * (glc_hi + X[_GLC, :n] + ca.sqrt((glc_hi - X[_GLC, :n]) ** 2 + 1e-4))
        over = ca.vertcat(
            xb[_GLC, :] - glc_cap,
            glc_lo - xe[_GLC, :],
            (xb[_OSM, :] - osm_hi) * 10.0,
            (xe[_OSM, :] - osm_hi) * 10.0,
            (xb[_VOL, :] - vol_hi) * 100.0,
            (xe[_VOL, :] - vol_hi) * 100.0,
            (xe[_LAC, :] - lac_hi) * 2.0,
        )
        g_soft = ca.vec(over - S)
        xu = ca.vertcat(ca.vec(X), ca.vec(U))
        self._over = ca.Function("over", [xu, xs0, temp, theta], [over])
        fed = ca.sum2(u[0, :] + u[1, :] + u[2, :] * self.model.interval_h)
        cost = feed_cost * fed + rho * ca.sum2(active.T * ca.sum1(S))
        cost += self.move_weight * (ca.sumsqr(U) + 10.0 * ca.sumsqr(ca.diff(U, 1, 1)))
        harvest_kg = X[_TITER, n] * X[_VOL, n]
        w = ca.vertcat(ca.vec(X), ca.vec(U), ca.vec(S))
        g = ca.vertcat(g_eq, g_soft)
        nlp: dict[str, Any] = {
            "x": w,
            "f": cost - harvest_kg,
            "g": g,
            "p": ca.vertcat(xs0, temp, theta, active),
        }
        self._harvest = ca.Function("harvest", [w], [harvest_kg])
        self._lbg = np.concatenate([np.zeros(nx * n), np.full(_N_SOFT * n, -np.inf)])
        self._ubg = np.zeros(nx * n + _N_SOFT * n)
        opts: dict[str, Any] = {
            "print_time": False,
            "ipopt": {
                "print_level": 0,
                "sb": "yes",
                "max_iter": 300,
                "tol": 1e-6,
                "acceptable_tol": 1e-4,
                "acceptable_iter": 5,
                "mu_strategy": "adaptive",
                "max_wall_time": 0.4 * self.time_budget_s,
                **extra,
            },
        }
        return ca.nlpsol("shrinking_horizon", "ipopt", nlp, opts)

    def _feasible_start(self, w: np.ndarray, params: np.ndarray, first: int) -> np.ndarray:
        """Re-simulate the shooting nodes from the new estimate under the previous moves.

        A warm start whose first node moved to a new estimate violates the continuity rows by
        the estimate's change, and IPOPT (started near its old barrier) then crawls; rolled
        forward, the point is feasible and only optimality is left, so even an iterate stopped
        by the time cap is a usable plan. The slacks are set to the constraint excesses.
        """
        nx, n, nu = len(STATE_SCALE), self.n, N_CONTROLS
        xs0 = params[:nx]
        temps = params[nx : nx + n]
        theta = params[nx + n : nx + n + len(ADAPTED_PARAMETERS)]
        w = w.copy()
        xs = w[: nx * (n + 1)].reshape(n + 1, nx)
        us = w[nx * (n + 1) : nx * (n + 1) + nu * n].reshape(n, nu)
        old = xs.copy()
        xs[: first + 1] = xs0
        us[:first] = 0.0  # past intervals are frozen: no moves (their bounds say so)
        for j in range(first, n):
            us[j] = self._track_glucose(old[j], xs[j], us[j], temps[j], theta)
            _, xe = self.model.step(xs[j], us[j] * _U_SCALE, temps[j], theta)
            xs[j + 1] = np.clip(np.asarray(xe).ravel(), _STATE_MIN, _STATE_MAX / STATE_SCALE)
        over = np.asarray(self._over(w[: nx * (n + 1) + nu * n], xs0, temps, theta))
        slack = np.maximum(over, 0.0)  # past intervals' slacks cost nothing (not active)
        w[nx * (n + 1) + nu * n :] = slack.T.ravel()
        return w

    def _track_glucose(
        self, x_old: np.ndarray, x_new: np.ndarray, u: np.ndarray, temp: float, theta: np.ndarray
    ) -> np.ndarray:
        """Re-size the interval's glucose bolus to reach the old plan's post-bolus level.

        The level is kept inside the band, and raised once if the interval would end below
        it: the old bolus volumes, applied to a different state, would leave the band.
        """
        b, stock = self.bands, self.model.media.glucose.glucose_g_per_l
        lo = b.glucose_min_g_per_l + b.glucose_backoff_low_g_per_l
        hi = b.glucose_max_g_per_l - b.glucose_backoff_high_g_per_l
        scaled = u * _U_SCALE
        x_old_b, _ = self.model.step(x_old, scaled, temp, theta)
        target = float(np.asarray(x_old_b)[_GLC, 0]) * STATE_SCALE[_GLC]
        no_glc = scaled * np.array([1.0, 0.0, 1.0])
        x_fed, x_end = (np.asarray(v).ravel() * STATE_SCALE for v in self.model.step(
            x_new, no_glc, temp, theta))  # fmt: skip
        level, vol = x_fed[_GLC], x_fed[_VOL]
        target = min(max(target, lo), hi)
        for _ in range(2):
            glucose = max(0.0, (target - level) * vol / max(stock - target, 1.0))
            glucose = min(glucose, self.bounds.glucose_bolus_max_l)
            out = no_glc + np.array([0.0, glucose, 0.0])
            _, x_end = self.model.step(x_new, out, temp, theta)
            end = float(np.asarray(x_end)[_GLC, 0]) * STATE_SCALE[_GLC]
            if end >= lo or target >= hi:
                break
            target = min(hi, target + (lo - end))
        return out / _U_SCALE

    def _variable_bounds(self, xs0: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, ...]:
        nx, n = len(STATE_SCALE), self.n
        lx = np.full((n + 1, nx), _STATE_MIN)
        ux = np.tile(_STATE_MAX / STATE_SCALE, (n + 1, 1))
        lx[0] = ux[0] = xs0
        uu = np.outer(active, self.bounds.upper() / _U_SCALE)
        lu = np.zeros_like(uu)
        ls, us = np.zeros(_N_SOFT * n), np.full(_N_SOFT * n, np.inf)
        lbx = np.concatenate([lx.ravel(), lu.ravel(), ls])
        ubx = np.concatenate([ux.ravel(), uu.ravel(), us])
        return lbx, ubx

    def _initial_guess(
        self, xs0: np.ndarray, first: int, temps: np.ndarray, theta: np.ndarray
    ) -> np.ndarray:
        """Forward-simulate a recipe-like plan (daily feed, glucose held near mid-band)."""
        _nx, n = len(STATE_SCALE), self.n
        b, ih = self.bands, self.model.interval_h
        target = 0.5 * (b.glucose_min_g_per_l + b.glucose_max_g_per_l)
        stock = self.model.media.glucose.glucose_g_per_l
        xs = np.tile(xs0, (n + 1, 1))
        us = np.zeros((n, N_CONTROLS))
        for j in range(first, n):
            x = xs[j] * STATE_SCALE
            day = j * ih / 24.0
            feed = 33.0 * ih / 24.0 if 3.0 <= day < 13.0 else 0.0
            vol = x[_VOL] + feed
            glc = (x[_GLC] * x[_VOL] + feed * self.model.media.bolus.glucose_g_per_l) / vol
            u = np.array([feed, max(0.0, (target - glc) * vol / (stock - target)), 0.3])
            u = np.minimum(u, self.bounds.upper())
            us[j] = u / _U_SCALE
            _, xe = self.model.step(xs[j], u, temps[j], theta)
            xs[j + 1] = np.maximum(np.asarray(xe).ravel(), 0.0)
        return np.concatenate([xs.ravel(), us.ravel(), np.zeros(_N_SOFT * n)])

    def _unpack(self, w: np.ndarray, ok: bool, status: str, t: float, first: int) -> Solution:
        nx, n = len(STATE_SCALE), self.n
        xs = w[: nx * (n + 1)].reshape(n + 1, nx) * STATE_SCALE
        us = w[nx * (n + 1) : nx * (n + 1) + N_CONTROLS * n].reshape(n, N_CONTROLS) * _U_SCALE
        slack = w[nx * (n + 1) + N_CONTROLS * n :].reshape(n, _N_SOFT)
        return Solution(
            success=ok,
            status=status,
            solve_time_s=t,
            harvest_kg=float(self._harvest(w)),
            moves=us[first:],
            states=xs[first:],
            max_slack=float(slack[first:].max(initial=0.0)),
            first=first,
        )
