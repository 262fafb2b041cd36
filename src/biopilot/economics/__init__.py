"""Cost of goods from measured yields and the real schedule."""

from .cost import COMPONENTS, CostEstimate, estimate, evaluate, parameters
from .from_batch import MeasuredYields, apply_measured, read_yields
from .from_schedule import ScheduleSummary, apply_schedule, summarise
from .model import ProcessCostModel, load_process
from .report import tornado_figure, write_html
from .uncertainty import (
    MonteCarloResult,
    Percentiles,
    SobolResult,
    TornadoBar,
    monte_carlo,
    primary_metric,
    sobol_indices,
    tornado,
)
from .validation import PublishedCheck, check_published, sourced_share

__all__ = [
    "COMPONENTS",
    "CostEstimate",
    "MeasuredYields",
    "MonteCarloResult",
    "Percentiles",
    "ProcessCostModel",
    "PublishedCheck",
    "ScheduleSummary",
    "SobolResult",
    "TornadoBar",
    "apply_measured",
    "apply_schedule",
    "check_published",
    "estimate",
    "evaluate",
    "load_process",
    "monte_carlo",
    "parameters",
    "primary_metric",
    "read_yields",
    "sobol_indices",
    "sourced_share",
    "summarise",
    "tornado",
    "tornado_figure",
    "write_html",
]
