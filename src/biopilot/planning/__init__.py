"""Multi-product modular site scheduling.

Load a site, schedule it, read what the economics package needs, simulate it::

    site = load_yaml("site.yaml", Site)          # biopilot.config.load_yaml
    sched = solve(site, horizon_h=28 * 24, objective="tardiness")
    sched.batches_per_product, sched.suite_utilisation, sched.changeover_hours
    write_gantt(sched, "gantt.html")
    result = simulate(site, sched, runs=1000)   # vein-to-vein P50/P95, on-time rate
"""

from biopilot.planning.bounds import flow_lower_bound
from biopilot.planning.explain import explain_infeasibility
from biopilot.planning.gantt import gantt_figure, write_gantt
from biopilot.planning.instance import (
    Instance,
    compile_site,
    lower_bound,
    parse_duration_h,
)
from biopilot.planning.schedule import BatchPlan, Schedule, Step, SuitePlan, check_schedule
from biopilot.planning.simulate import ProductOutcome, SimulationResult, simulate
from biopilot.planning.site import (
    Changeover,
    Closure,
    Equipment,
    Order,
    Patient,
    Procedure,
    Product,
    Shift,
    Site,
    StaffPool,
    Suite,
)
from biopilot.planning.solve import solve, solve_instance
from biopilot.planning.synthetic import cart_network

__all__ = [
    "BatchPlan",
    "Changeover",
    "Closure",
    "Equipment",
    "Instance",
    "Order",
    "Patient",
    "Procedure",
    "Product",
    "ProductOutcome",
    "Schedule",
    "Shift",
    "SimulationResult",
    "Site",
    "StaffPool",
    "Step",
    "Suite",
    "SuitePlan",
    "cart_network",
    "check_schedule",
    "compile_site",
    "explain_infeasibility",
    "flow_lower_bound",
    "gantt_figure",
    "lower_bound",
    "parse_duration_h",
    "simulate",
    "solve",
    "solve_instance",
    "write_gantt",
]
