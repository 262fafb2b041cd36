"""A lower bound on total flow time (sum of batch release-to-delivery times) that sees queues.

The plain bound lets every batch run alone on its critical path. This one also charges the
queueing that suites and staff make unavoidable. The in-suite operations that share a set of
eligible suites can run at most ``m`` at a time (``m`` = the suites, each operation holding
its suite for its cleaning too; or what the staff allows), so they finish no earlier than on
one preemptive machine of speed ``m``, where shortest remaining processing time first
(SRPT) is optimal for the sum of completion times [1]_. A batch's delivery is at least each
of its operations' completion plus that operation's tail (the rest of its critical path, QC
and shipping), so the sum of deliveries is at least the average over its operations.

References
----------
.. [1] L. Schrage (1968), A proof of the optimality of the shortest remaining processing time
   discipline, Oper. Res. 16:687-690. The fast single machine relaxation of parallel machines:
   C. Chekuri, R. Motwani, B. Natarajan, C. Stein (2001), SIAM J. Comput. 31:146-166.
"""

from __future__ import annotations

import heapq
import math

from biopilot.planning.instance import Instance

__all__ = ["flow_lower_bound"]


def flow_lower_bound(inst: Instance, batches: list[int] | None = None) -> float:
    """Lower bound on the sum over ``batches`` of (delivery - release), in minutes.

    Returns the larger of the critical-path bound and the queueing bound of the module text.
    """
    ids = list(range(len(inst.batches))) if batches is None else batches
    alone = float(sum(inst.batches[b].min_lead for b in ids))
    head, tail = _heads_tails(inst, ids)
    groups: dict[tuple[object, ...], list[int]] = {}
    for b in ids:
        for o in inst.batches[b].ops:
            if inst.ops[o].suites:  # every subset is a valid relaxation: all, and by step
                groups.setdefault(inst.ops[o].suites, []).append(o)
                groups.setdefault((*inst.ops[o].suites, inst.ops[o].name), []).append(o)
    best = alone
    for ops in groups.values():
        suites = inst.ops[ops[0]].suites
        per_batch: dict[int, int] = {}
        for o in ops:
            per_batch[inst.ops[o].batch] = per_batch.get(inst.ops[o].batch, 0) + 1
        release = [inst.batches[inst.ops[o].batch].release + head[o] for o in ops]
        staff = _staff_limit(inst, ops)
        clean = [inst.suite_time(o) - inst.ops[o].duration for o in ops]
        # suites busy for duration + cleaning: completion + cleaning on |suites| machines
        completions = _srpt_total(
            [(r, inst.suite_time(o) / len(suites)) for r, o in zip(release, ops, strict=True)]
        ) - sum(clean)
        if staff is not None:
            jobs = [(r, inst.ops[o].duration / staff) for r, o in zip(release, ops, strict=True)]
            completions = max(completions, _srpt_total(jobs))
        k_max = max(per_batch.values())
        tails = sum(tail[o] / per_batch[inst.ops[o].batch] for o in ops)
        releases = sum(inst.batches[b].release for b in per_batch)
        # batches of the group that have no operation in it still need their critical path
        others = sum(inst.batches[b].min_lead for b in ids if b not in per_batch)
        best = max(best, completions / k_max + tails - releases + others)
    return best


def _heads_tails(inst: Instance, ids: list[int]) -> tuple[dict[int, int], dict[int, int]]:
    """Per operation: earliest start after release, and the minimum time from its end to
    delivery (longest path of the operations after it, then QC and shipping)."""
    head: dict[int, int] = {}
    tail: dict[int, int] = {}
    for b in ids:
        batch = inst.batches[b]
        for o in batch.ops:  # precedence order
            head[o] = max((head[p] + inst.ops[p].duration for p in inst.ops[o].preds), default=0)
        for o in reversed(batch.ops):
            succ = [s for s in batch.ops if o in inst.ops[s].preds]
            tail[o] = max((inst.ops[s].duration + tail[s] for s in succ), default=batch.tail)
    return head, tail


def _staff_limit(inst: Instance, ops: list[int]) -> float | None:
    """How many of ``ops`` the staff lets run at once, or None if staff does not limit them."""
    limit = math.inf
    for r, cap in enumerate(inst.role_capacity):
        needs = [dict(inst.ops[o].staff).get(r, 0) for o in ops]
        if min(needs) > 0:
            limit = min(limit, float(cap // min(needs)))
    return None if math.isinf(limit) else max(limit, 1.0)


def _srpt_total(jobs: list[tuple[int, float]]) -> float:
    """Sum of completion times of (release, length) jobs on one preemptive machine, SRPT."""
    jobs = sorted(jobs)
    heap: list[float] = []
    t, i, total = 0.0, 0, 0.0
    while i < len(jobs) or heap:
        if not heap:
            t = max(t, jobs[i][0])
        while i < len(jobs) and jobs[i][0] <= t:
            heapq.heappush(heap, jobs[i][1])
            i += 1
        rem = heapq.heappop(heap)
        nxt = jobs[i][0] if i < len(jobs) else math.inf
        if t + rem <= nxt:
            t += rem
            total += t
        else:
            heapq.heappush(heap, rem - (nxt - t))
            t = nxt
    return total
