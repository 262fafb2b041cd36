"""Schedule a site with CP-SAT: one model for small sites, a rolling horizon for large ones.

The rolling horizon cuts the batches into windows by release time (a day by default), places
each window by greedy dispatch and improves it with CP-SAT (the dispatch as hint) while earlier
windows stay fixed; CP-SAT may move each batch to a few candidate suites (least loaded, same
product first) so the model stays small. Its gap is measured against
:func:`~biopilot.planning.instance.lower_bound`, a resource relaxation that is valid for the
whole problem, not against the windows' own bounds (which are not).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from ortools.sat.python import cp_model

from biopilot.planning.dispatch import Dispatcher
from biopilot.planning.explain import explain_infeasibility
from biopilot.planning.instance import MIN_PER_H, Instance, compile_site, lower_bound
from biopilot.planning.model import (
    TARDINESS_SCALE,
    Objective,
    Placement,
    build_model,
    hint,
    read_solution,
)
from biopilot.planning.schedule import Schedule, make_schedule
from biopilot.planning.site import Site

__all__ = ["Method", "solve", "solve_instance"]

Method = Literal["auto", "monolithic", "rolling"]
MONOLITHIC_MAX_BATCHES = 150
AFFINITY = 100  # a changeover weighs like 100 times its length of queued work
_RELAXATION = "resource relaxation: each batch alone on its critical path"


def solve(
    site: Site,
    horizon_h: float,
    objective: Objective = "tardiness",
    *,
    time_limit_s: float = 30.0,
    num_workers: int = 2,
    hard_due: bool = False,
    method: Method = "auto",
    window_h: float = 24.0,
    candidates: int = 2,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Schedule:
    """Schedule the batches of ``site`` released within ``horizon_h`` hours of its start.

    Parameters
    ----------
    site : Site
        The validated site model.
    horizon_h : float
        Planning horizon in hours: batches released (orders, apheresis) inside it are planned.
    objective : {"tardiness", "makespan", "throughput"}
        Weighted total tardiness against due dates, makespan, or batches delivered by the
        end of the horizon.
    time_limit_s : float
        Wall-time budget for CP-SAT, all windows together.
    num_workers : int
        CP-SAT search workers.
    hard_due : bool
        Treat due dates as deadlines; an infeasible plan is then explained.
    method : {"auto", "monolithic", "rolling"}
        ``auto`` uses one model up to 150 batches and the rolling horizon above.
    window_h, candidates : float, int
        Rolling horizon: window length (hours) and candidate suites per batch.
    seed : int
        CP-SAT random seed.
    progress : callable, optional
        Called as ``progress(done, total)`` after each window.

    Returns
    -------
    Schedule
        With ``status`` OPTIMAL, FEASIBLE, INFEASIBLE (and ``conflicts`` naming why) or
        UNKNOWN (no solution within the time limit).
    """
    inst = compile_site(site, horizon_h)
    return solve_instance(
        inst,
        objective,
        time_limit_s=time_limit_s,
        num_workers=num_workers,
        hard_due=hard_due,
        method=method,
        window_h=window_h,
        candidates=candidates,
        seed=seed,
        progress=progress,
    )


def solve_instance(
    inst: Instance,
    objective: Objective = "tardiness",
    *,
    time_limit_s: float = 30.0,
    num_workers: int = 2,
    hard_due: bool = False,
    method: Method = "auto",
    window_h: float = 24.0,
    candidates: int = 2,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Schedule:
    """Schedule a compiled instance; see :func:`solve` for the parameters."""
    t_start = time.perf_counter()
    if method == "auto":
        method = "monolithic" if len(inst.batches) <= MONOLITHIC_MAX_BATCHES else "rolling"
    params = dict(num_workers=num_workers, seed=seed)
    failing = list(range(len(inst.batches)))
    if method == "monolithic":
        placements, status, bound = _monolithic(inst, objective, time_limit_s, hard_due, params)
        how = "CP-SAT best bound and " + _RELAXATION
    else:
        placements, status, failing = _rolling(
            inst, objective, time_limit_s, hard_due, window_h, candidates, params, progress
        )
        bound, how = None, _RELAXATION + " (valid for the whole problem, not per window)"
    relaxed = lower_bound(inst, objective) / (1 if objective == "throughput" else MIN_PER_H)
    if bound is None:
        bound = relaxed
    else:
        bound = min(bound, relaxed) if objective == "throughput" else max(bound, relaxed)
    conflicts: list[str] = []
    if status == "INFEASIBLE":
        conflicts = explain_infeasibility(inst, failing, objective, hard_due, time_limit_s)
    return make_schedule(
        inst,
        placements,
        objective=objective,
        status=status,
        best_bound=bound if status in ("OPTIMAL", "FEASIBLE") else None,
        bound_method=how,
        wall_time_s=time.perf_counter() - t_start,
        conflicts=conflicts,
    )


def _solver(time_limit_s: float, params: dict[str, int]) -> cp_model.CpSolver:
    """A CP-SAT solver with a time limit, worker count and seed."""
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.05, time_limit_s)
    solver.parameters.num_workers = params["num_workers"]
    solver.parameters.random_seed = params["seed"]
    return solver


def _monolithic(
    inst: Instance, objective: Objective, limit: float, hard_due: bool, params: dict[str, int]
) -> tuple[dict[int, Placement], str, float | None]:
    """One model for every batch, hinted by a dispatch; placements, status, bound (hours)."""
    ids = list(range(len(inst.batches)))
    greedy = Dispatcher(inst).place(sorted(ids, key=lambda i: inst.batches[i].release))
    built = build_model(inst, ids, objective, hard_due=hard_due)
    hint(inst, built, greedy)
    solver = _solver(limit, params)
    code = solver.solve(built.model)
    status = solver.status_name(code)
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        if code == cp_model.UNKNOWN and _cost(inst, ids, greedy, objective, hard_due) is not None:
            return greedy, "FEASIBLE", None  # the dispatch stands; bound from the relaxation
        return {}, status, None
    raw = solver.best_objective_bound
    scale = {"tardiness": TARDINESS_SCALE * MIN_PER_H, "makespan": MIN_PER_H, "throughput": 100}
    return read_solution(inst, built, solver), status, raw / scale[objective]


def _rolling(
    inst: Instance,
    objective: Objective,
    limit: float,
    hard_due: bool,
    window_h: float,
    n_cand: int,
    params: dict[str, int],
    progress: Callable[[int, int], None] | None,
) -> tuple[dict[int, Placement], str, list[int]]:
    """Windows by release time: dispatch, then CP-SAT improvement, earlier windows fixed.

    Returns the placements, the status and, when a window fails, that window's batches.
    """
    t_end = time.perf_counter() + limit
    order = sorted(range(len(inst.batches)), key=lambda i: inst.batches[i].release)
    width = round(window_h * MIN_PER_H)
    windows: list[list[int]] = []
    for bi in order:
        if windows and inst.batches[bi].release < inst.batches[windows[-1][0]].release + width:
            windows[-1].append(bi)
        else:
            windows.append([bi])
    disp = Dispatcher(inst)
    placements: dict[int, Placement] = {}
    active: dict[int, Placement] = {}
    proven = len(windows) == 1
    for w, ids in enumerate(windows):
        t_window = time.perf_counter()
        budget = (t_end - t_window) / (len(windows) - w)
        greedy = disp.place(ids)
        cands = _candidates(inst, ids, active, greedy, n_cand)
        built = build_model(
            inst, ids, objective, fixed=active, candidates=cands, hard_due=hard_due, flow_weight=1
        )
        hint(inst, built, greedy)
        solver = _solver(budget - (time.perf_counter() - t_window), params)
        code = solver.solve(built.model)
        best, best_cost = greedy, _cost(inst, ids, greedy, objective, hard_due)
        if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            sol = read_solution(inst, built, solver)
            cost = _cost(inst, ids, sol, objective, hard_due)
            if cost is not None and (best_cost is None or cost <= best_cost):
                best, best_cost = sol, cost
        proven = proven and code == cp_model.OPTIMAL and best is not greedy
        if best_cost is None:
            disp.remove(greedy)
            return placements, "INFEASIBLE" if code == cp_model.INFEASIBLE else "UNKNOWN", ids
        if best is not greedy:
            disp.remove(greedy)
            disp.add(best)
        placements.update(best)
        active.update(best)
        nxt = inst.batches[windows[w + 1][0]].release if w + 1 < len(windows) else 0
        active = {o: p for o, p in active.items() if _reach(inst, o, p) > nxt}
        if progress:
            progress(w + 1, len(windows))
    return placements, "OPTIMAL" if proven else "FEASIBLE", []


def _cost(
    inst: Instance,
    ids: list[int],
    pl: dict[int, Placement],
    objective: Objective,
    hard_due: bool,
) -> float | None:
    """The window objective of CP-SAT, measured on placements; None if a hard rule breaks."""
    total, cmax, done = 0.0, 0, 0.0
    for bi in ids:
        b = inst.batches[bi]
        if not all(o in pl for o in b.ops):
            continue
        fin = max(pl[o].start + inst.ops[o].duration for o in b.ops)
        delivered = fin + b.tail
        if (hard_due and b.due is not None and delivered > b.due) or (
            b.earliest_delivery is not None and delivered < b.earliest_delivery
        ):
            return None
        if objective == "tardiness" and b.due is not None:
            total += round(b.weight * TARDINESS_SCALE) * max(0, delivered - b.due)
        total += fin
        cmax = max(cmax, fin)
        done += round(b.weight * 100) * (delivered <= inst.horizon)
    return {"tardiness": total, "makespan": cmax + total, "throughput": -done}[objective]


def _candidates(
    inst: Instance,
    ids: list[int],
    active: dict[int, Placement],
    greedy: dict[int, Placement],
    n: int,
) -> dict[int, tuple[int, ...]]:
    """Per batch: the suites its dispatch used, plus the least loaded (same product first)."""
    load = [0.0] * len(inst.suites)
    last = [-1] * len(inst.suites)
    last_start = [-1] * len(inst.suites)
    for oi, pl in active.items():
        if pl.suite is not None:
            load[pl.suite] += inst.suite_time(oi)
            if pl.start > last_start[pl.suite]:
                last_start[pl.suite] = pl.start
                last[pl.suite] = inst.batches[inst.ops[oi].batch].product
    out: dict[int, tuple[int, ...]] = {}
    for bi in ids:
        batch = inst.batches[bi]
        eligible = sorted({k for o in batch.ops for k in inst.ops[o].suites})
        used = {k for o in batch.ops if (k := greedy[o].suite) is not None}
        work = sum(inst.suite_time(o) for o in batch.ops if inst.ops[o].suites)
        pick = sorted(
            (k for k in eligible if k not in used),
            key=lambda k: (
                load[k] + (AFFINITY * inst.setup[last[k]][batch.product] if last[k] >= 0 else 0)
            ),
        )[: max(0, n - len(used))]
        for k in used | set(pick):
            load[k] += work / len(used | set(pick))
            last[k] = batch.product
        out[bi] = tuple(sorted(used | set(pick)))
    return out


def _reach(inst: Instance, oi: int, pl: Placement) -> int:
    """Last minute an operation still constrains others: end, cleaning, worst changeover."""
    prod = inst.batches[inst.ops[oi].batch].product
    return pl.start + inst.suite_time(oi) + max(inst.setup[prod])
