"""The CP-SAT model of a set of batches: intervals, suite choice, changeovers, staff, objective.

One builder serves the monolithic solve, each window of the rolling horizon and the
infeasibility explanation. Operations already placed (earlier windows) enter as fixed
intervals; the hard requirements that may conflict (hard due dates, shelf-life windows,
closures) can be guarded by assumption literals that name them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, cast

from ortools.sat.python import cp_model

from biopilot.planning.instance import Instance, off_shift_blocks

__all__ = ["Built", "Objective", "Placement", "build_model", "hint", "read_solution"]

Objective = Literal["tardiness", "makespan", "throughput"]
TARDINESS_SCALE = 100  # integer weights: a batch weight w counts as round(100 w) per minute


@dataclass(frozen=True)
class Placement:
    """Where and when an operation runs: suite index (None off-suite) and start minute."""

    suite: int | None
    start: int


@dataclass
class Built:
    """A built model and the handles needed to hint it and read its solution."""

    model: cp_model.CpModel
    batches: list[int]
    starts: dict[int, cp_model.IntVar]
    choice: dict[int, dict[int, cp_model.IntVar]]
    present: dict[int, cp_model.IntVar]
    finish: dict[int, cp_model.IntVar]
    assumptions: dict[int, str] = field(default_factory=dict)


def build_model(
    inst: Instance,
    batches: list[int],
    objective: Objective,
    *,
    fixed: dict[int, Placement] | None = None,
    candidates: dict[int, tuple[int, ...]] | None = None,
    hard_due: bool = False,
    explain: bool = False,
    flow_weight: int = 0,
) -> Built:
    """Build the CP-SAT model for ``batches`` of ``inst``.

    Parameters
    ----------
    inst : Instance
        The compiled site (minutes).
    batches : list of int
        Indices of the batches to schedule.
    objective : {"tardiness", "makespan", "throughput"}
        Weighted total tardiness (minimised), last operation end (minimised) or the number
        of batches delivered within the horizon (maximised; batches may be left out).
    fixed : dict, optional
        Operations already placed, by operation index; they occupy suites and resources.
    candidates : dict, optional
        Allowed suites per batch, narrowing each operation's eligible suites.
    hard_due : bool
        Due dates become deadlines instead of tardiness.
    explain : bool
        Guard deadlines, shelf-life windows and closures with assumption literals.
    flow_weight : int
        Weight of the sum of batch finish times added to the objective (packs work early).
    """
    fixed = fixed or {}
    m = cp_model.CpModel()
    ub = inst.upper_time(batches) + max((p.start for p in fixed.values()), default=0)
    b = Built(m, batches, {}, {}, {}, {})
    suite_iv: list[list[tuple[cp_model.IntervalVar, int, cp_model.IntVar | None]]] = [
        [] for _ in inst.suites
    ]
    role_iv: list[list[tuple[cp_model.IntervalVar, int]]] = [[] for _ in inst.roles]
    equip_iv: list[list[tuple[cp_model.IntervalVar, int]]] = [[] for _ in inst.equipment]
    t0 = min((inst.batches[i].release for i in batches), default=0)
    _add_fixed(inst, m, fixed, t0, suite_iv, role_iv, equip_iv)
    _add_calendar(inst, b, t0, ub, suite_iv, role_iv, explain)
    for bi in batches:
        batch = inst.batches[bi]
        pres = m.new_bool_var(f"y{bi}")
        if objective != "throughput":
            m.add(pres == 1)
        b.present[bi] = pres
        ends = []
        for oi in batch.ops:
            op = inst.ops[oi]
            s = m.new_int_var(batch.release, ub, f"s{oi}")
            b.starts[oi] = s
            ends.append(s + op.duration)
            for p in op.preds:
                m.add(s >= b.starts[p] + inst.ops[p].duration)
            if op.staff or op.equipment or not op.suites:
                iv = m.new_optional_interval_var(s, op.duration, s + op.duration, pres, f"r{oi}")
                for r, q in op.staff:
                    role_iv[r].append((iv, q))
                for e, q in op.equipment:
                    equip_iv[e].append((iv, q))
            if op.suites:
                allowed = [k for k in op.suites if candidates is None or k in candidates[bi]]
                allowed = allowed or list(op.suites)
                lits = {k: m.new_bool_var(f"x{oi}_{k}") for k in allowed}
                m.add(sum(lits.values()) == pres)
                b.choice[oi] = lits
                size = inst.suite_time(oi)
                for k, lit in lits.items():
                    iv = m.new_optional_interval_var(s, size, s + size, lit, f"i{oi}_{k}")
                    suite_iv[k].append((iv, batch.product, lit))
        fin = m.new_int_var(batch.release, ub, f"f{bi}")
        m.add_max_equality(fin, ends)
        b.finish[bi] = fin
        _add_due(inst, b, bi, fin, hard_due, explain, objective)
    for k, in_suite in enumerate(suite_iv):
        m.add_no_overlap([iv for iv, _, _ in in_suite])
        _add_changeovers(inst, m, in_suite, k)
    pools = [*zip(role_iv, inst.role_capacity, strict=True)]
    pools += zip(equip_iv, inst.equipment_capacity, strict=True)
    for ivs, cap in pools:
        if ivs:
            m.add_cumulative([iv for iv, _ in ivs], [q for _, q in ivs], cap)
    _set_objective(inst, b, objective, ub, flow_weight)
    return b


def read_solution(inst: Instance, built: Built, solver: cp_model.CpSolver) -> dict[int, Placement]:
    """Placements of the scheduled operations in a solved model (left-out batches omitted)."""
    out: dict[int, Placement] = {}
    for bi in built.batches:
        if not solver.boolean_value(built.present[bi]):
            continue
        for oi in inst.batches[bi].ops:
            lits = built.choice.get(oi, {})
            suite = next((k for k, lit in lits.items() if solver.boolean_value(lit)), None)
            out[oi] = Placement(suite, solver.value(built.starts[oi]))
    return out


def hint(inst: Instance, built: Built, placements: dict[int, Placement]) -> None:
    """Give CP-SAT a starting solution (a dispatch) for the batches it holds."""
    m = built.model
    for bi in built.batches:
        ops = inst.batches[bi].ops
        if not all(o in placements for o in ops):
            continue
        m.add_hint(built.present[bi], 1)
        for oi in ops:
            m.add_hint(built.starts[oi], placements[oi].start)
            for k, lit in built.choice.get(oi, {}).items():
                m.add_hint(lit, int(k == placements[oi].suite))
        m.add_hint(built.finish[bi], max(placements[o].start + inst.ops[o].duration for o in ops))


def _add_fixed(
    inst: Instance,
    m: cp_model.CpModel,
    fixed: dict[int, Placement],
    t0: int,
    suite_iv: list[list[tuple[cp_model.IntervalVar, int, cp_model.IntVar | None]]],
    role_iv: list[list[tuple[cp_model.IntervalVar, int]]],
    equip_iv: list[list[tuple[cp_model.IntervalVar, int]]],
) -> None:
    """Operations already placed that still occupy something at or after ``t0``."""
    for oi, pl in fixed.items():
        op = inst.ops[oi]
        prod = inst.batches[op.batch].product
        reach = pl.start + inst.suite_time(oi) + max(inst.setup[prod])
        if pl.suite is not None and reach > t0:
            iv = m.new_fixed_size_interval_var(pl.start, inst.suite_time(oi), f"F{oi}")
            suite_iv[pl.suite].append((iv, prod, None))
        if pl.start + op.duration > t0 and (op.staff or op.equipment):
            iv = m.new_fixed_size_interval_var(pl.start, op.duration, f"G{oi}")
            for r, q in op.staff:
                role_iv[r].append((iv, q))
            for e, q in op.equipment:
                equip_iv[e].append((iv, q))


def _add_calendar(
    inst: Instance,
    b: Built,
    t0: int,
    ub: int,
    suite_iv: list[list[tuple[cp_model.IntervalVar, int, cp_model.IntVar | None]]],
    role_iv: list[list[tuple[cp_model.IntervalVar, int]]],
    explain: bool,
) -> None:
    """Suite closures (guarded when explaining) and off-shift blocks of each staff role."""
    m = b.model
    for k, spans in enumerate(inst.closures):
        for (a, e), why in zip(spans, inst.closure_names[k], strict=True):
            if e <= t0 or a >= ub:
                continue
            if explain:
                lit = m.new_bool_var(f"closure{k}_{a}")
                b.assumptions[lit.index] = f"closure of suite {inst.suites[k]} ({why})"
                iv = m.new_optional_fixed_size_interval_var(a, e - a, lit, f"C{k}_{a}")
            else:
                iv = m.new_fixed_size_interval_var(a, e - a, f"C{k}_{a}")
            suite_iv[k].append((iv, -1, None))
    for r, pool in enumerate(inst.site.staff):
        for a, e in off_shift_blocks(pool, inst.site, t0, ub):
            iv = m.new_fixed_size_interval_var(a, e - a, f"off{r}_{a}")
            role_iv[r].append((iv, inst.role_capacity[r]))


def _add_due(
    inst: Instance,
    b: Built,
    bi: int,
    fin: cp_model.IntVar,
    hard_due: bool,
    explain: bool,
    objective: Objective,
) -> None:
    """Deadlines (hard due), shelf-life windows and, for throughput, the horizon."""
    m, batch = b.model, inst.batches[bi]
    delivered = fin + batch.tail
    rules = []
    if hard_due and batch.due is not None:
        rules.append((delivered <= batch.due, f"due date of batch {batch.id}"))
    if batch.earliest_delivery is not None:
        rules.append(
            (delivered >= batch.earliest_delivery, f"shelf life of batch {batch.id} at its due")
        )
    if objective == "throughput":
        m.add(delivered <= inst.horizon).only_enforce_if(b.present[bi])
    for rule, why in rules:
        if explain:
            lit = m.new_bool_var(why)
            b.assumptions[lit.index] = why
            m.add(rule).only_enforce_if(lit)
        else:
            m.add(rule)


def _add_changeovers(
    inst: Instance,
    m: cp_model.CpModel,
    ivs: list[tuple[cp_model.IntervalVar, int, cp_model.IntVar | None]],
    k: int,
) -> None:
    """Sequence-dependent changeovers in suite ``k``: one order boolean per product pair.

    Enforced between every pair of intervals of different products, which equals the
    consecutive-pair rule when changeover times obey the triangle inequality.
    """
    for i, (a, pa, la) in enumerate(ivs):
        for c, pc, lc in ivs[i + 1 :]:
            if pa < 0 or pc < 0 or pa == pc or (la is None and lc is None):
                continue
            ac, ca = inst.setup[pa][pc], inst.setup[pc][pa]
            if ac == 0 and ca == 0:
                continue
            first = m.new_bool_var(f"o{k}_{a.index}_{c.index}")
            both = [x for x in (la, lc) if x is not None]
            sa, ea = _expr(a.start_expr()), _expr(a.end_expr())
            sc, ec = _expr(c.start_expr()), _expr(c.end_expr())
            m.add(sc >= ea + ac).only_enforce_if([first, *both])
            m.add(sa >= ec + ca).only_enforce_if([~first, *both])


def _expr(x: object) -> cp_model.LinearExpr:
    """An interval's start or end as a linear expression (the stubs type them loosely)."""
    return cast(cp_model.LinearExpr, x)


def _set_objective(
    inst: Instance, b: Built, objective: Objective, ub: int, flow_weight: int
) -> None:
    """Minimise tardiness or makespan, or maximise throughput."""
    m = b.model
    flow = sum(b.finish.values()) * flow_weight if flow_weight else 0
    if objective == "makespan":
        cmax = m.new_int_var(0, ub, "cmax")
        m.add_max_equality(cmax, list(b.finish.values()))
        m.minimize(cmax + flow)
    elif objective == "throughput":
        m.maximize(sum(round(inst.batches[i].weight * 100) * y for i, y in b.present.items()))
    else:
        terms = []
        for bi, fin in b.finish.items():
            batch = inst.batches[bi]
            if batch.due is None:
                continue
            tard = m.new_int_var(0, ub, f"t{bi}")
            m.add(tard >= fin + batch.tail - batch.due)
            terms.append(round(batch.weight * TARDINESS_SCALE) * tard)
        m.minimize(sum(terms) + flow)
