"""Benchmark the feeding NMPC's solve time against do-mpc 5.x on the same problem, same run.

The same economic NLP (``biopilot.control.nlp``: multiple shooting over the 56 six-hour
intervals from inoculation to harvest, ``-titer * volume`` at harvest, move regularisation,
seven L1-penalised soft rows with the :class:`~biopilot.control.Bands` back-offs) is built
a second time with do-mpc: a ``'discrete'`` model whose right-hand side is
``IntervalModel.step`` (theta = 1), the 12 scaled states, the 3 scaled moves, and
time-varying parameters for the interval's temperature (shift on day 5, as the recipe), an
*active* flag and the move-change weight. do-mpc's horizon is fixed once built (``setup()``
rebuilds the whole NLP, tens of seconds here), so its horizon stays at 56 and the shrinking
is done as ours does it: intervals past harvest are frozen by the *active* flag (state carried,
soft rows off), so both NLPs have the same solution at every step.

Timed: (a) the first plan from inoculation, cold (ours; do-mpc from its own guess, ``x0``
held and moves 0, and from ours' recipe-like guess), and (b) warm re-solves along a closed
loop on the twin (:class:`~biopilot.twin.Bioreactor` with the mismatched plant and noisy
estimate of ``bench_control.py``): every ``--stride`` intervals both re-solve from the same
estimate and ours' plan drives the plant until the next re-solve. do-mpc re-solves from
ours' kind of warm start (``--warm shifted``: its last primal-dual point shifted to the new
interval, ours' IPOPT warm options, one more solver build) and/or as shipped (``--warm
shipped``: ``make_step`` with its last solution, not shifted, as the guess). IPOPT with MUMPS
and the same tolerances everywhere; ours' wall-time cap is lifted (``time_budget_s``) so every
solve runs to convergence. ``--seeds 2`` takes about 9 min on two loaded cores (16 min with
``--warm shipped,shifted``); the default (1 seed) about 5.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import io
import os
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from _util import print_table
from bench_control import noisy_estimate, plant_parameters
from biopilot.control import make_problem
from biopilot.control import nlp as _nlp
from biopilot.control.model import ADAPTED_PARAMETERS, STATE_SCALE, state_index
from biopilot.control.nlp import ShrinkingHorizonProblem
from biopilot.models.kinetics import STATE_NAMES
from biopilot.twin import Bioreactor, PlantInputs, Recipe, default_recipe

MOVES = ("feed_bolus", "glucose_bolus", "feed_rate")
_U_SCALE = _nlp._U_SCALE
_GLC, _OSM, _VOL, _LAC, _TITER = (
    state_index(n)
    for n in (
        "glucose_g_per_l",
        "osmolality_mosm_per_kg",
        "volume_l",
        "lactate_g_per_l",
        "titer_g_per_l",
    )
)
#: IPOPT options of every solve (ours sets the same in ``nlp._build``; MUMPS is the default).
COMMON = {
    "print_level": 0,
    "sb": "yes",
    "linear_solver": "mumps",
    "tol": 1e-6,
    "acceptable_tol": 1e-4,
    "acceptable_iter": 5,
    "mu_strategy": "adaptive",
}
#: do-mpc's cold solve (exact Hessian, do-mpc's default; no quasi-Newton stage as ours has).
COLD = {"max_iter": 1000, "max_wall_time": 300.0}
#: Ours' warm-start options (``nlp._WARM``), given to do-mpc's second variant too.
WARM = dict(_nlp._WARM)
#: L1 weight of the soft rows (``make_problem`` leaves ours at this default; feed cost 0).
_PENALTY = inspect.signature(ShrinkingHorizonProblem).parameters["penalty_per_unit"].default
#: Ours' budget: large, so its warm solves are not stopped by the wall-time cap (40 % of it).
BUDGET_S = 100.0


def temperatures(recipe: Recipe, n: int, interval_h: float) -> np.ndarray:
    """Return the recipe's temperature of each interval (the shift on its day)."""
    t = np.arange(n) * interval_h
    shift_h = 24.0 * (recipe.temperature_shift_day or np.inf)
    return np.where(t >= shift_h - 1e-9, recipe.shift_temperature_c, recipe.temperature_c)


@dataclass
class Solve:
    """One timed solve: wall time, IPOPT iterations and status, predicted harvest (kg)."""

    wall_s: float
    iterations: int
    status: str
    harvest_kg: float

    @property
    def ok(self) -> bool:
        return self.status in ("Solve_Succeeded", "Solved_To_Acceptable_Level")


class DoMpcProblem:
    """Our shrinking-horizon NLP, built with do-mpc (fixed horizon, frozen tail).

    Parameters
    ----------
    problem : ShrinkingHorizonProblem
        Ours: the interval model, bands, move bounds and weights are read from it.
    temps : ndarray
        Temperature of each interval, degC.
    symvar : str
        do-mpc's symbolic type, ``"SX"`` (its default) or ``"MX"``.
    shifted : bool
        Also build a second IPOPT instance with ours' warm-start options (for the
        ``"shifted"`` warm start; its build takes as long as ``setup``).
    """

    def __init__(
        self,
        problem: ShrinkingHorizonProblem,
        temps: np.ndarray,
        symvar: str = "SX",
        *,
        shifted: bool = False,
    ) -> None:
        import casadi as ca

        with warnings.catch_warnings():  # "ONNX feature is not available" on import
            warnings.simplefilter("ignore")
            import do_mpc
        # do-mpc calls numpy on casadi values (casadi 3.8 warns once, legacy result kept).
        warnings.filterwarnings("ignore", "\ncasadi: a numpy function", FutureWarning)

        self.n = n = problem.n
        self.nx = nx = len(STATE_NAMES)
        self.interval_h = problem.model.interval_h
        step = problem.model.step
        t0 = time.perf_counter()
        model = do_mpc.model.Model("discrete", symvar)
        xs = ca.vertcat(*(model.set_variable("_x", s) for s in STATE_NAMES))
        us = ca.vertcat(*(model.set_variable("_u", s) for s in MOVES))
        temp = model.set_variable("_tvp", "T")
        active = model.set_variable("_tvp", "active")
        model.set_variable("_tvp", "dw")
        theta = ca.DM.ones(len(ADAPTED_PARAMETERS))
        _, xe = step(xs, us * ca.DM(_U_SCALE), temp, theta)
        x_next = active * xe + (1 - active) * xs  # past harvest: carried, as ours' frozen nodes
        for i, s in enumerate(STATE_NAMES):
            model.set_rhs(s, x_next[i])
        model.setup()

        x = ca.vertcat(*(model.x[s] for s in STATE_NAMES))
        u = ca.vertcat(*(model.u[s] for s in MOVES))
        temp, active, dw = model.tvp["T"], model.tvp["active"], model.tvp["dw"]
        xb, xe = step(x, u * ca.DM(_U_SCALE), temp, theta)
        mpc = do_mpc.controller.MPC(model)
        mpc.settings.n_horizon = n
        mpc.settings.t_step = self.interval_h
        mpc.settings.use_terminal_bounds = True  # ours bounds the harvest node too
        mpc.settings.store_lagr_multiplier = False
        mpc.settings.store_solver_stats = []
        mpc.settings.nlpsol_opts = _nlpsol_opts(COLD)
        # The seven soft rows of nlp._build, same back-offs, same scaling, same L1 weight.
        b = problem.bands
        glc_hi = b.glucose_max_g_per_l - b.glucose_backoff_high_g_per_l
        glc_lo = b.glucose_min_g_per_l + b.glucose_backoff_low_g_per_l
        osm_hi = (b.osmolality_max_mosm_per_kg - b.osmolality_backoff_mosm_per_kg) / 1e2
        vol_hi = (b.volume_max_l - b.volume_backoff_l) / 1e3
        lac_hi = b.lactate_max_g_per_l - b.lactate_backoff_g_per_l
        glc_cap = 0.5 * (glc_hi + x[_GLC] + ca.sqrt((glc_hi - x[_GLC]) ** 2 + 1e-4))
        rows = {
            "glucose_high_after_bolus": xb[_GLC] - glc_cap,
            "glucose_low_end": glc_lo - xe[_GLC],
            "osmolality_after_bolus": (xb[_OSM] - osm_hi) * 10.0,
            "osmolality_end": (xe[_OSM] - osm_hi) * 10.0,
            "volume_after_bolus": (xb[_VOL] - vol_hi) * 100.0,
            "volume_end": (xe[_VOL] - vol_hi) * 100.0,
            "lactate_end": (xe[_LAC] - lac_hi) * 2.0,
        }
        rho = _PENALTY  # make_problem keeps ShrinkingHorizonProblem's default
        for name, expr in rows.items():
            mpc.set_nl_cons(name, active * expr, ub=0.0, soft_constraint=True,
                            penalty_term_cons=rho)  # fmt: skip
        w = problem.move_weight
        # mterm in kg (scaled titer g/L x scaled volume m3); lterm + rterm = ours' move terms.
        mpc.set_objective(mterm=-x[_TITER] * x[_VOL], lterm=w * ca.sumsqr(u))
        mpc.set_rterm(rterm=10.0 * w * dw * ca.sumsqr(u - mpc.u_prev.cat))
        upper = problem.bounds.upper() / _U_SCALE
        for i, s in enumerate(MOVES):
            mpc.bounds["lower", "_u", s] = 0.0
            mpc.bounds["upper", "_u", s] = upper[i]
        for i, s in enumerate(STATE_NAMES):
            mpc.bounds["lower", "_x", s] = _nlp._STATE_MIN
            mpc.bounds["upper", "_x", s] = _nlp._STATE_MAX[i] / STATE_SCALE[i]
        self._tvps = [self._tvp_at(mpc, temps, j) for j in range(n)]
        mpc.set_tvp_fun(lambda t: self._tvps[round(float(np.ravel(t)[0]) / self.interval_h)])
        self.define_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        mpc.setup()
        self.setup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        self._cold = mpc.S
        self._warm = None
        if shifted:
            opts = _nlpsol_opts(WARM | {"max_iter": 200})
            self._warm = ca.nlpsol("S", "ipopt", mpc.nlp, opts)
        self.warm_build_s = time.perf_counter() - t0
        self.mpc = mpc
        # Flat indices of the variables (to shift a warm start by one interval).
        idx = mpc._opt_x(ca.DM(np.arange(mpc.n_opt_x)))
        self._ix = np.array([np.asarray(idx["_x", k, 0, -1]).ravel() for k in range(n + 1)], int)
        self._iu = np.array([np.asarray(idx["_u", k, 0]).ravel() for k in range(n)], int)
        self._ie = np.array([np.asarray(idx["_eps", k, 0]).ravel() for k in range(n)], int)
        n_soft = len(rows)
        assert mpc.n_opt_lagr == nx + n * (nx + n_soft), "unexpected do-mpc constraint layout"
        self._ig = nx + np.arange(n * (nx + n_soft)).reshape(n, nx + n_soft)
        self._states: dict[str, tuple[Any, Any, Any, bool]] = {}
        self.n_variables, self.n_constraints = mpc.n_opt_x, mpc.n_opt_lagr

    @staticmethod
    def _tvp_at(mpc: Any, temps: np.ndarray, j0: int) -> Any:
        tvp = mpc.get_tvp_template()
        n = len(temps)
        for k in range(n + 1):
            j = j0 + k
            tvp["_tvp", k] = np.array([temps[min(j, n - 1)], float(j < n), float(0 < j < n)])
        return tvp

    def first_plan(self, x0: np.ndarray, guess: np.ndarray | None = None) -> Solve:
        """Cold solve from inoculation: do-mpc's own guess (``x0`` held, moves 0) or ``guess``.

        ``guess`` is ours' point layout (scaled states by node, scaled moves, slacks).
        """
        mpc = self.mpc
        xs0 = x0 / STATE_SCALE
        mpc.x0, mpc.u0, mpc.t0 = xs0, np.zeros(3), 0.0
        mpc.set_initial_guess()
        mpc.flags["initial_run"] = False  # no multipliers: a cold start
        if guess is not None:
            n, nx = self.n, self.nx
            v = np.asarray(mpc.opt_x_num.cat).ravel().copy()
            v[self._ix] = guess[: nx * (n + 1)].reshape(n + 1, nx)
            v[self._iu] = guess[nx * (n + 1) : nx * (n + 1) + 3 * n].reshape(n, 3)
            v[self._ie] = 0.0
            mpc.opt_x_num.master = _dm(v)
        mpc.S = self._cold
        return self._make_step(xs0)

    def warm_step(self, variant: str, x: np.ndarray, j: int, m: int = 1) -> Solve:
        """Re-solve at interval ``j`` from estimate ``x``, warm-started from ``variant``'s last.

        ``"shipped"``: do-mpc's ``make_step`` as is (its last solution, unshifted, is the
        guess; same solver options as the cold solve). ``"shifted"``: the last primal-dual
        point moved ``m`` intervals ahead (the intervals since it was solved) and ours' IPOPT
        warm-start options.
        """
        mpc = self.mpc
        v, lam_x, lam_g, _ = self._states[variant]
        mpc.opt_x_num.master = v
        mpc.lam_x_num, mpc.lam_g_num = lam_x, lam_g
        mpc.flags["initial_run"] = True
        mpc.S = self._cold
        if variant == "shifted":
            mpc.opt_x_num.master = _dm(self._shift(np.asarray(v).ravel(), m, x / STATE_SCALE))
            mpc.lam_x_num = _dm(self._shift(np.asarray(lam_x).ravel(), m, None))
            mpc.lam_g_num = _dm(self._shift_g(np.asarray(lam_g).ravel(), m))
            mpc.S = self._warm
        mpc.u0 = np.zeros(3)  # ours: the move before the horizon is a frozen (zero) move
        mpc.t0 = j * self.interval_h
        return self._make_step(x / STATE_SCALE)

    def save(self, variant: str) -> None:
        """Keep the current primal-dual point as ``variant``'s warm start."""
        m = self.mpc
        self._states[variant] = (_dm(m.opt_x_num.master), _dm(m.lam_x_num), _dm(m.lam_g_num), True)

    def _shift(self, v: np.ndarray, m: int, xs0: np.ndarray | None) -> np.ndarray:
        """Move a point ``m`` intervals ahead; the new tail is frozen (last node, no moves)."""
        v = v.copy()
        for ind in (self._ix, self._iu, self._ie):
            v[ind[:-m]] = v[ind[m:]]
        v[self._ix[-m:]] = v[self._ix[-m - 1]] if xs0 is not None else 0.0
        v[self._iu[-m:]] = 0.0
        v[self._ie[-m:]] = 0.0
        if xs0 is not None:
            v[self._ix[0]] = xs0
        return v

    def _shift_g(self, lam: np.ndarray, m: int) -> np.ndarray:
        lam = lam.copy()
        lam[self._ig[:-m]] = lam[self._ig[m:]]
        lam[self._ig[-m:]] = 0.0
        return lam

    def _make_step(self, xs0: np.ndarray) -> Solve:
        mpc = self.mpc
        with contextlib.redirect_stdout(io.StringIO()):  # do-mpc's own prints
            t0 = time.perf_counter()
            mpc.make_step(xs0)
            wall = time.perf_counter() - t0
        st = mpc.solver_stats
        x_h = np.asarray(mpc.opt_x_num["_x", self.n, 0, -1]).ravel()
        iters, status = int(st.get("iter_count", -1)), str(st.get("return_status", "?"))
        return Solve(wall, iters, status, float(x_h[_TITER] * x_h[_VOL]))

    def point_in_ours(self, first: int) -> np.ndarray:
        """Return the current do-mpc solution in ours' variable layout at interval ``first``."""
        n, nx, j = self.n, self.nx, first
        v = np.asarray(self.mpc.opt_x_num.cat).ravel()
        xs = np.empty((n + 1, nx))
        us = np.zeros((n, 3))
        es = np.zeros((n, len(self._ie[0])))
        xs[: j + 1] = v[self._ix[0]]
        xs[j:] = v[self._ix[: n + 1 - j]]
        us[j:] = v[self._iu[: n - j]]
        es[j:] = v[self._ie[: n - j]]
        return np.concatenate([xs.ravel(), us.ravel(), es.ravel()])


def _nlpsol_opts(extra: dict[str, Any]) -> dict[str, Any]:
    return {"print_time": False, **{f"ipopt.{k}": v for k, v in (COMMON | extra).items()}}


def _dm(v: np.ndarray) -> Any:
    import casadi as ca

    return ca.DM(v)


def ours_solve(problem: ShrinkingHorizonProblem, x: np.ndarray, j: int, temps: np.ndarray,
               warm: Any) -> tuple[Solve, Any, Any]:  # fmt: skip
    """Solve ours (cold when ``warm`` is None); return the timing, the warm start, the plan."""
    sol, point = problem.solve(x, j, temps, warm=warm)
    solver = problem._refine_solver if warm is None else problem._warm_solver
    status = str(solver.stats().get("return_status", "?")) if sol.success else sol.status
    iters = problem.last_iterations
    if warm is None:  # the cold path runs a quasi-Newton stage first
        iters += int(problem._solver.stats().get("iter_count", 0))
    return Solve(sol.solve_time_s, iters, status, sol.harvest_kg), point, sol


def objective_check(problem: ShrinkingHorizonProblem, dm: DoMpcProblem, x0: np.ndarray,
                    j: int, temps: np.ndarray) -> tuple[float, float, float]:  # fmt: skip
    """Evaluate ours' objective and constraints at do-mpc's current point.

    Returns ours' objective there, its largest equality-row residual (the shooting gaps) and
    do-mpc's own objective at the same point.
    """
    oracle = problem._refine_solver.oracle()
    n, nx = problem.n, len(STATE_NAMES)
    active = (np.arange(n) >= j).astype(float)
    p = np.concatenate([x0 / STATE_SCALE, temps, np.ones(len(ADAPTED_PARAMETERS)), active])
    out = oracle(x=dm.point_in_ours(j), p=p)
    gap = float(np.max(np.abs(np.asarray(out["g"]).ravel()[: nx * n])))
    m = dm.mpc
    theirs = float(m.S.oracle()(x=m.opt_x_num.cat, p=m.opt_p_num.cat)["f"])
    return float(out["f"]), gap, theirs


def _plant_inputs(move: np.ndarray, temp: float) -> PlantInputs:
    bolus, glucose, feed = (float(max(v, 0.0)) for v in move)
    return PlantInputs(
        feed_l_per_h=feed, feed_medium="feed_b",
        bolus_l=bolus if bolus >= 0.1 else 0.0, bolus_medium="feed_a",
        glucose_bolus_l=glucose if glucose >= 0.1 else 0.0, temperature_setpoint_c=temp,
    )  # fmt: skip


def _pct(v: list[float], q: float) -> float:
    return float(np.percentile(v, q)) if v else float("nan")


def main(argv: list[str] | None = None) -> None:
    """Run the comparison over ``--seeds`` closed loops and print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=1, help="closed loops (twin seeds 0..)")
    ap.add_argument("--stride", type=int, default=2, help="re-solve every STRIDE intervals")
    ap.add_argument("--steps", type=int, default=0, help="warm re-solves per loop (0 = all)")
    ap.add_argument("--symvar", choices=("SX", "MX"), default="SX", help="do-mpc's symbols")
    ap.add_argument(
        "--warm",
        default="shifted",
        help="do-mpc warm starts to time: shifted (one more solver build), shipped, or both",
    )
    args, _ = ap.parse_known_args(argv)  # run_all.py passes its own arguments through
    t_start, load = time.perf_counter(), os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    recipe = default_recipe()
    t0 = time.perf_counter()
    problem = make_problem(recipe, time_budget_s=BUDGET_S)
    ours_build = time.perf_counter() - t0
    n, ih = problem.n, problem.model.interval_h
    temps = temperatures(recipe, n, ih)
    variants = [v for v in ("shipped", "shifted") if v in args.warm.split(",")]
    dm = DoMpcProblem(problem, temps, args.symvar, shifted="shifted" in variants)
    print(
        f"do-mpc {args.symvar}: model {dm.define_s:.1f} s, setup {dm.setup_s:.1f} s"
        + (f", warm nlpsol {dm.warm_build_s:.1f} s" if "shifted" in variants else "")
        + f"; {dm.n_variables} variables, {dm.n_constraints} constraints."
        f" Ours: build {ours_build:.2f} s",
        file=sys.stderr,
        flush=True,
    )
    firsts: dict[str, list[Solve]] = {"ours": [], "do-mpc own guess": [], "do-mpc our guess": []}
    checks: list[dict[str, Any]] = []
    warm: dict[str, list[Solve]] = {"ours": [], **{f"do-mpc {v}": [] for v in variants}}
    gaps: dict[str, list[float]] = {f"do-mpc {v}": [] for v in variants}
    ones = np.ones(len(ADAPTED_PARAMETERS))
    for seed in range(args.seeds):
        plant = Bioreactor(seed=seed, parameters=plant_parameters(seed))
        rng = np.random.default_rng(seed)
        x0 = plant.state.copy()
        first, point, sol = ours_solve(problem, x0, 0, temps, None)
        firsts["ours"].append(first)
        p0 = np.concatenate([x0 / STATE_SCALE, temps, ones, np.ones(n)])
        f_ours = float(problem._refine_solver.oracle()(x=point.primal, p=p0)["f"])
        guess = problem._initial_guess(x0 / STATE_SCALE, 0, temps, ones)
        d_ours = dm.first_plan(x0, guess)
        firsts["do-mpc our guess"].append(d_ours)
        check_ours = objective_check(problem, dm, x0, 0, temps)
        d_own = dm.first_plan(x0)  # do-mpc's own start last: its point warm-starts the loop
        firsts["do-mpc own guess"].append(d_own)
        check_own = objective_check(problem, dm, x0, 0, temps)
        for v in variants:
            dm.save(v)
        checks.append({"seed": seed, "ours": f_ours, "own": check_own, "guess": check_ours})
        print(
            f"seed {seed} first plan: ours {first.wall_s:.2f} s {first.harvest_kg:.4f} kg, "
            f"do-mpc own guess {d_own.wall_s:.2f} s {d_own.harvest_kg:.4f} kg, "
            f"our guess {d_ours.wall_s:.2f} s {d_ours.harvest_kg:.4f} kg",
            file=sys.stderr,
            flush=True,
        )
        last, done = 0, 0
        for j in range(n):
            if j > 0 and j % args.stride == 0 and (args.steps <= 0 or done < args.steps):
                x = noisy_estimate(plant.state, rng)
                s, point, sol = ours_solve(problem, x, j, temps, point)
                warm["ours"].append(s)
                for v in variants:
                    d = dm.warm_step(v, x, j, j - last)
                    dm.save(v)
                    warm[f"do-mpc {v}"].append(d)
                    gaps[f"do-mpc {v}"].append(abs(d.harvest_kg / s.harvest_kg - 1.0))
                last, done = j, done + 1
                times = ", ".join(f"{v} {warm[f'do-mpc {v}'][-1].wall_s:.2f} s" for v in variants)
                print(f"  seed {seed} interval {j}: ours {s.wall_s:.2f} s, do-mpc {times}",
                      file=sys.stderr, flush=True)  # fmt: skip
            # Between re-solves the plant gets ours' plan open loop (boluses in the first hour).
            u = _plant_inputs(sol.moves[j - sol.first], float(temps[j]))
            no_bolus = dataclasses.replace(u, bolus_l=0.0, glucose_bolus_l=0.0)
            for h in range(round(ih)):
                plant.step(u if h == 0 else no_bolus, dt_h=1.0)
    load_end = os.getloadavg()
    rows = []
    for name, sols in firsts.items():
        gap = [
            abs(d.harvest_kg / o.harvest_kg - 1.0)
            for d, o in zip(sols, firsts["ours"], strict=True)
        ]
        rows.append(_row(f"{name}, first plan (cold)", sols, gap if name != "ours" else None))
    for name, sols in warm.items():
        rows.append(_row(f"{name}, warm re-solves", sols, gaps.get(name)))
    print(
        f"\nload average at end: {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}; "
        f"run {time.perf_counter() - t_start:.0f} s"
    )
    print(
        f"{args.seeds} seed(s), re-solve every {args.stride} x {ih:g} h, "
        f"{len(warm['ours'])} warm re-solves; IPOPT + MUMPS, tol 1e-6 (acceptable 1e-4) in all; "
        f"do-mpc {args.symvar} setup {dm.setup_s:.1f} s, ours build {ours_build:.2f} s\n"
    )
    print_table(rows)
    print("\nSame problem? Ours' NLP evaluated at do-mpc's first plan (objective, kg):\n")
    print_table(
        [
            {
                "seed": c["seed"],
                "ours f at ours' plan": f"{c['ours']:.6f}",
                "do-mpc plan (own guess): ours f": f"{c['own'][0]:.6f}",
                "do-mpc f": f"{c['own'][2]:.6f}",
                "max shooting gap": f"{c['own'][1]:.1e}",
                "do-mpc plan (our guess): ours f": f"{c['guess'][0]:.6f}",
                "do-mpc f ": f"{c['guess'][2]:.6f}",
                "max shooting gap ": f"{c['guess'][1]:.1e}",
            }
            for c in checks
        ]
    )


def _row(name: str, sols: list[Solve], gaps: list[float] | None = None) -> dict[str, Any]:
    walls = [s.wall_s for s in sols]
    its = [s.iterations for s in sols]
    harvest = statistics.median(s.harvest_kg for s in sols) if sols else float("nan")
    return {
        "solver": name,
        "solves": len(sols),
        "median s": statistics.median(walls) if walls else float("nan"),
        "p99 s": _pct(walls, 99),
        "max s": max(walls, default=float("nan")),
        "iters median": statistics.median(its) if its else float("nan"),
        "iters max": max(its, default=-1),
        "not converged": sum(not s.ok for s in sols),
        "harvest kg (median)": harvest,
        "|harvest / ours - 1| median": (f"{100 * statistics.median(gaps):.2g} %" if gaps else "-"),
    }


if __name__ == "__main__":
    main()
