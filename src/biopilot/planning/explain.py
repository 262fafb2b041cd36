"""Explain an infeasible schedule: name the deadlines, shelf-life windows and closures in conflict.

CP-SAT is asked to solve with each such requirement guarded by an assumption literal; when it
proves infeasibility, ``SufficientAssumptionsForInfeasibility`` returns a set of them that
cannot hold together, which is then shrunk (deletion filter) to a minimal conflict. Static
conflicts (a procedure longer than every shift of a role it needs) are refused earlier, when
the site is loaded.
"""

from __future__ import annotations

from ortools.sat.python import cp_model

from biopilot.planning.instance import Instance
from biopilot.planning.model import Objective, build_model

__all__ = ["explain_infeasibility"]


def explain_infeasibility(
    inst: Instance,
    batches: list[int],
    objective: Objective,
    hard_due: bool,
    time_limit_s: float = 10.0,
    max_solves: int = 30,
) -> list[str]:
    """Name the requirements that cannot hold together, one message each.

    Returns
    -------
    list of str
        A minimal conflicting set when one is found within ``max_solves`` solves, else the
        set CP-SAT reported, else a line saying why none was isolated.
    """
    built = build_model(inst, batches, objective, hard_due=hard_due, explain=True)
    lits = list(built.assumptions)
    core = _core(built.model, lits, time_limit_s)
    if core is None:
        return ["no conflict isolated within the time limit"]
    if not core:
        return ["infeasible even without deadlines, shelf-life windows or closures"]
    for solves, lit in enumerate(list(core)):
        if solves >= max_solves or len(core) == 1:
            break
        rest = [x for x in core if x != lit]
        if _core(built.model, rest, time_limit_s / 4) is not None:
            core = rest  # still infeasible without it: not needed to explain the conflict
    return [f"conflict: {built.assumptions[i]}" for i in core]


def _core(model: cp_model.CpModel, lits: list[int], limit: float) -> list[int] | None:
    """Assumptions sufficient for infeasibility, or None when feasible or undecided."""
    model.clear_assumptions()
    model.proto.assumptions.extend(lits)  # literal indices, as the core returns them
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = limit
    solver.parameters.num_workers = 1  # cores from assumptions need the sequential search
    if solver.solve(model) != cp_model.INFEASIBLE:
        return None
    return list(solver.sufficient_assumptions_for_infeasibility())
