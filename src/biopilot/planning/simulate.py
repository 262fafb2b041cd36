"""Monte Carlo of a schedule: stochastic durations and batch failures, vectorised over runs.

The plan is kept as a timetable: each operation starts at its planned time or later, when its
predecessors are done and its suite is free again (same order, cleaning and changeovers). A
failed batch (probability ``failure_rate`` of its product) is remade after the product's
``rework_delay_h`` (for autologous therapies: a new apheresis) at its minimum lead time.
Staff and equipment are assumed to follow the plan.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from biopilot.planning.instance import MIN_PER_H, Instance, compile_site
from biopilot.planning.schedule import BatchPlan, Schedule
from biopilot.planning.site import Site

__all__ = ["ProductOutcome", "SimulationResult", "simulate"]


class ProductOutcome(BaseModel):
    """Outcome of one product over all runs (hours; days for vein-to-vein)."""

    product: str
    batches: int
    on_time_rate: float | None = None
    failures_per_run: float
    lateness_p50_h: float | None = None
    lateness_p95_h: float | None = None
    vein_to_vein_p50_days: float | None = None
    vein_to_vein_p95_days: float | None = None


class SimulationResult(BaseModel):
    """Monte Carlo summary: on-time rate, vein-to-vein P50/P95, failures per product."""

    runs: int
    seed: int
    on_time_rate: float | None = None
    vein_to_vein_p50_days: float | None = None
    vein_to_vein_p95_days: float | None = None
    failures_per_run: float
    products: list[ProductOutcome] = Field(default_factory=list)


def simulate(
    site: Site,
    schedule: Schedule,
    runs: int = 1000,
    seed: int = 0,
    failure_rate: float | None = None,
) -> SimulationResult:
    """Simulate ``schedule`` of ``site`` ``runs`` times.

    Parameters
    ----------
    site : Site
        The site the schedule was made for.
    schedule : Schedule
        A feasible schedule (``schedule.feasible``).
    runs : int
        Monte Carlo runs.
    seed : int
        Seed of the random generator.
    failure_rate : float, optional
        Replaces every product's ``failure_rate`` (what-if studies).

    Returns
    -------
    SimulationResult
        On-time rate among batches with a due date, vein-to-vein P50/P95 (autologous
        products), failed batches per run, per product and in total.

    Raises
    ------
    ValueError
        If the schedule holds no solution or ``runs`` < 1.
    """
    if not schedule.feasible or runs < 1:
        raise ValueError("simulate needs a feasible schedule and runs >= 1")
    inst = compile_site(site, schedule.horizon_h)
    rng = np.random.default_rng(seed)
    plans = {b.id: b for b in schedule.batches}
    suite_idx = {n: k for k, n in enumerate(inst.suites)}
    nodes = []  # (planned start h, op index, suite index or -1)
    for batch in inst.batches:
        plan = plans.get(batch.id)
        if plan is None:
            continue
        for oi, step in zip(batch.ops, plan.steps, strict=True):
            nodes.append((step.start_h, oi, -1 if step.suite is None else suite_idx[step.suite]))
    nodes.sort()
    end: dict[int, np.ndarray] = {}
    fin: dict[int, np.ndarray] = {}
    left = {bi: len(b.ops) for bi, b in enumerate(inst.batches)}
    suite_end = [np.full(runs, -np.inf) for _ in inst.suites]
    suite_prod = [-1] * len(inst.suites)
    for start_h, oi, k in nodes:
        op = inst.ops[oi]
        prod = inst.batches[op.batch].product
        s = np.full(runs, start_h)
        for p in op.preds:
            np.maximum(s, end[p], out=s)
        if k >= 0:
            gap = inst.setup[suite_prod[k]][prod] if suite_prod[k] not in (-1, prod) else 0
            np.maximum(s, suite_end[k] + gap / MIN_PER_H, out=s)
        end[oi] = s + op.duration / MIN_PER_H * _factor(rng, op.cv, runs)
        if k >= 0:
            suite_end[k] = end[oi] + inst.clean[prod] / MIN_PER_H
            suite_prod[k] = prod
        fin[op.batch] = np.maximum(fin.get(op.batch, end[oi]), end[oi])
        left[op.batch] -= 1
        if not left[op.batch]:  # the batch is done: its operations are needed no more
            for o in inst.batches[op.batch].ops:
                del end[o]
    return _summarise(site, inst, plans, fin, rng, runs, seed, failure_rate)


def _factor(rng: np.random.Generator, cv: float, runs: int) -> np.ndarray:
    """Lognormal duration multipliers with mean 1 and coefficient of variation ``cv``."""
    if cv <= 0:
        return np.ones(runs)
    sigma2 = np.log1p(cv**2)
    return rng.lognormal(-sigma2 / 2, np.sqrt(sigma2), runs)


def _summarise(
    site: Site,
    inst: Instance,
    plans: dict[str, BatchPlan],
    fin_by_batch: dict[int, np.ndarray],
    rng: np.random.Generator,
    runs: int,
    seed: int,
    failure_rate: float | None,
) -> SimulationResult:
    """Deliveries, failures and their statistics per product and overall."""
    late_all, on_all, v2v_all, fails = [], [], [], 0.0
    outcomes = []
    for pi, prod in enumerate(site.products):
        ids = [i for i, b in enumerate(inst.batches) if b.product == pi and b.id in plans]
        if not ids:
            continue
        batches = [inst.batches[i] for i in ids]
        rate = prod.failure_rate if failure_rate is None else failure_rate
        fin = np.stack([fin_by_batch[i] for i in ids])
        tail = np.array([b.tail for b in batches])[:, None] / MIN_PER_H
        lead = np.array([b.min_lead for b in batches])[:, None] / MIN_PER_H
        failed = rng.random(fin.shape) < rate
        delivered = fin + tail + failed * (prod.rework_delay_h + lead)
        due = np.array([np.nan if b.due is None else b.due / MIN_PER_H for b in batches])
        late = delivered - due[:, None]
        has_due = ~np.isnan(due)
        on = late[has_due] <= 1e-9
        v2v = None
        if prod.kind == "autologous":
            release = np.array([b.release for b in batches])[:, None] / MIN_PER_H
            v2v = ((delivered - release) / 24).ravel()
            v2v_all.append(v2v)
        if has_due.any():
            late_all.append(late[has_due].ravel())
            on_all.append(on.ravel())
        fails += failed.sum() / runs
        outcomes.append(
            ProductOutcome(
                product=prod.name,
                batches=len(batches),
                on_time_rate=float(on.mean()) if has_due.any() else None,
                failures_per_run=float(failed.sum() / runs),
                lateness_p50_h=_pct(late[has_due], 50),
                lateness_p95_h=_pct(late[has_due], 95),
                vein_to_vein_p50_days=_pct(v2v, 50),
                vein_to_vein_p95_days=_pct(v2v, 95),
            )
        )
    v2v_cat = np.concatenate(v2v_all) if v2v_all else None
    return SimulationResult(
        runs=runs,
        seed=seed,
        on_time_rate=float(np.concatenate(on_all).mean()) if on_all else None,
        vein_to_vein_p50_days=_pct(v2v_cat, 50),
        vein_to_vein_p95_days=_pct(v2v_cat, 95),
        failures_per_run=float(fails),
        products=outcomes,
    )


def _pct(x: np.ndarray | None, q: float) -> float | None:
    """Percentile ``q`` of ``x``, or None when there is nothing to summarise."""
    if x is None or x.size == 0:
        return None
    return float(np.percentile(x, q))
