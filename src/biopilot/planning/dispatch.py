"""Greedy dispatch: place operations one by one at their earliest feasible time and suite.

Used by the rolling horizon as the starting schedule of each window (CP-SAT then improves
it from this hint), and as the fallback when CP-SAT finds nothing in time. It honours every
rule the model has: suites allowed, precedence, cleaning and changeovers with both
neighbours in a suite, closures, staff shifts and capacities, equipment capacities.
"""

from __future__ import annotations

import bisect

from biopilot.planning.instance import Instance, off_shift_blocks
from biopilot.planning.model import Placement

__all__ = ["Dispatcher"]

SWITCH_WEIGHT = 4  # a suite that needs a changeover counts as this many changeovers later
_GIVE_UP = 5 * 365 * 24 * 60  # minutes: a guard against resources that never free up


class Dispatcher:
    """Keeps suite timelines and resource profiles; places batches earliest-first."""

    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        self.suites: list[list[tuple[int, int, int]]] = [[] for _ in inst.suites]
        self.closed = [sorted(spans) for spans in inst.closures]
        self.roles = [_Profile(c) for c in inst.role_capacity]
        self.equipment = [_Profile(c) for c in inst.equipment_capacity]
        self._calendar_end = 0

    def add(self, placements: dict[int, Placement]) -> None:
        """Record operations placed elsewhere (by CP-SAT) so later batches respect them."""
        for oi, pl in placements.items():
            self._book(oi, pl)

    def remove(self, placements: dict[int, Placement]) -> None:
        """Forget operations booked earlier (a trial dispatch that CP-SAT improved upon)."""
        for oi, pl in placements.items():
            op = self.inst.ops[oi]
            if pl.suite is not None:
                prod = self.inst.batches[op.batch].product
                self.suites[pl.suite].remove((pl.start, pl.start + self.inst.suite_time(oi), prod))
            for r, q in op.staff:
                self.roles[r].add(pl.start, pl.start + op.duration, -q)
            for e, q in op.equipment:
                self.equipment[e].add(pl.start, pl.start + op.duration, -q)

    def place(self, batches: list[int]) -> dict[int, Placement]:
        """Place ``batches`` in order, each operation at its earliest feasible start."""
        out: dict[int, Placement] = {}
        for bi in batches:
            batch = self.inst.batches[bi]
            for oi in batch.ops:
                op = self.inst.ops[oi]
                ends = [out[p].start + self.inst.ops[p].duration for p in op.preds]
                est = max([batch.release, *ends])
                if batch.earliest_delivery is not None:  # shelf life: not ready too early
                    est = max(est, batch.earliest_delivery - batch.min_lead)
                pl = self._earliest(oi, est)
                self._book(oi, pl)
                out[oi] = pl
        return out

    def _earliest(self, oi: int, est: int) -> Placement:
        """The earliest placement of one operation at or after ``est``."""
        op = self.inst.ops[oi]
        if not op.suites:
            return Placement(None, self._resources_from(oi, est))
        best: Placement | None = None
        best_cost = 0
        prod = self.inst.batches[op.batch].product
        for k in op.suites:
            t = est
            while True:
                t = self._open_from(k, oi, self._suite_from(k, oi, t))
                t2 = self._resources_from(oi, self._suite_from(k, oi, t))
                if t2 == t:
                    break
                if t2 > est + _GIVE_UP:
                    raise RuntimeError(f"cannot place {op.name} of batch {op.batch} (resources)")
                t = t2
            cost = t + SWITCH_WEIGHT * self._switch(k, prod, t)
            if best is None or cost < best_cost:
                best, best_cost = Placement(k, t), cost
        assert best is not None
        return best

    def _switch(self, k: int, prod: int, t: int) -> int:
        """Changeover minutes from the operation before ``t`` in suite k to product ``prod``."""
        line = self.suites[k]
        i = bisect.bisect_right(line, (t, 1 << 62, 0)) - 1
        if i < 0 or line[i][2] == prod:
            return 0
        return self.inst.setup[line[i][2]][prod]

    def _open_from(self, k: int, oi: int, t: int) -> int:
        """Earliest start >= t at which the operation overlaps no closure of suite k."""
        size = self.inst.suite_time(oi)
        for a, e in self.closed[k]:
            if t < e and t + size > a:
                t = e
        return t

    def _suite_from(self, k: int, oi: int, t: int) -> int:
        """Earliest start >= t in suite k, with cleaning and changeovers on both sides."""
        inst, line = self.inst, self.suites[k]
        prod = inst.batches[inst.ops[oi].batch].product
        size = inst.suite_time(oi)
        i = max(0, bisect.bisect_right(line, (t, 1 << 62, 0)) - 1)
        while True:
            if i < len(line) and line[i][0] <= t:
                a, e, p = line[i]
                t = max(t, e + (inst.setup[p][prod] if p >= 0 and p != prod else 0))
                i += 1
                continue
            if i >= len(line):
                return t
            a, e, p = line[i]
            after = inst.setup[prod][p] if p >= 0 and p != prod else 0
            if t + size + after <= a:
                return t
            t = max(t, e + (inst.setup[p][prod] if p >= 0 and p != prod else 0))
            i += 1

    def _resources_from(self, oi: int, t: int) -> int:
        """Earliest start >= t at which every staff role and equipment pool has room."""
        op = self.inst.ops[oi]
        needs = [(self.roles[r], q) for r, q in op.staff]
        needs += [(self.equipment[e], q) for e, q in op.equipment]
        if op.staff:
            self._calendar(t + op.duration + 14 * 24 * 60)
        while True:
            t2 = t
            for prof, q in needs:
                t2 = prof.earliest(t2, op.duration, q)
            if t2 == t:
                return t
            t = t2

    def _book(self, oi: int, pl: Placement) -> None:
        """Mark the suite and the resources as used by one operation."""
        op = self.inst.ops[oi]
        if pl.suite is not None:
            prod = self.inst.batches[op.batch].product
            bisect.insort(
                self.suites[pl.suite], (pl.start, pl.start + self.inst.suite_time(oi), prod)
            )
        for r, q in op.staff:
            self.roles[r].add(pl.start, pl.start + op.duration, q)
        for e, q in op.equipment:
            self.equipment[e].add(pl.start, pl.start + op.duration, q)

    def _calendar(self, until: int) -> None:
        """Extend the off-shift blocks of every staff role up to ``until``."""
        if until <= self._calendar_end:
            return
        end = max(until, 2 * self._calendar_end, 28 * 24 * 60)
        for r, pool in enumerate(self.inst.site.staff):
            for a, b in off_shift_blocks(pool, self.inst.site, self._calendar_end, end):
                self.roles[r].add(a, b, self.inst.role_capacity[r])
        self._calendar_end = end


class _Profile:
    """A step function of resource usage over time, with capacity queries."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.times: list[int] = [0]
        self.levels: list[int] = [0]  # usage on [times[i], times[i+1])

    def add(self, a: int, b: int, q: int) -> None:
        """Use ``q`` units on ``[a, b)``."""
        if b <= a or q == 0:
            return
        ia, ib = self._cut(a), self._cut(b)
        for i in range(ia, ib):
            self.levels[i] += q

    def earliest(self, t: int, d: int, q: int) -> int:
        """Earliest start >= t with ``q`` units free for ``d`` minutes."""
        i = max(0, bisect.bisect_right(self.times, t) - 1)
        start = t
        while i < len(self.times):
            if self.levels[i] + q > self.capacity:
                i += 1
                start = max(t, self.times[i]) if i < len(self.times) else start
                continue
            nxt = self.times[i + 1] if i + 1 < len(self.times) else None
            if nxt is None or nxt >= start + d:
                return start
            i += 1
        return start

    def _cut(self, t: int) -> int:
        """Index of a breakpoint at ``t``, inserting one if needed."""
        i = bisect.bisect_left(self.times, t)
        if i < len(self.times) and self.times[i] == t:
            return i
        self.times.insert(i, t)
        self.levels.insert(i, self.levels[i - 1] if i > 0 else 0)
        return i
