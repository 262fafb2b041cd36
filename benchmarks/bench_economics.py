"""Benchmark the cost of goods: Monte Carlo of 10,000 draws plus Sobol indices, 20-step process.

The process is ``examples/economics/mab_fedbatch_20_steps.yaml`` (20 unit operations) with
every material price, labour time, step recovery, QC price and facility input made uncertain
(about 70 inputs), so Sobol has real work: Saltelli sampling with N base samples costs
N x (D + 2) model evaluations (first-order and total indices). Also prints the published
cases beside their sources (the validation the tests check), with whether each is built from
the source's line items or reproduces its total only, and the share of our cost from sourced
inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _util import median_time, print_table
from biopilot.economics import (
    check_published,
    load_process,
    monte_carlo,
    parameters,
    sobol_indices,
    tornado,
)
from biopilot.economics.model import ProcessCostModel

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "economics"
PROCESS = EXAMPLES / "mab_fedbatch_20_steps.yaml"
DRAWS = 10_000
SOBOL_N = 1024  # a power of 2, as Saltelli / Sobol sequences want
TARGET_S = 60.0


def widely_uncertain(model: ProcessCostModel) -> ProcessCostModel:
    """``model`` with a triangular +-25 % (fractions: -10 %/+2 %) on every non-zero input."""
    data = model.model_dump()
    uncertain: dict[str, Any] = dict(data["uncertain"])
    for path, value in parameters(model).items():
        if path in uncertain or value <= 0 or path.endswith(("reuse_cycles", "doses_per_patient")):
            continue
        if path.endswith(("fraction", "failure_rate")):
            low, high = 0.9 * value, min(value * 1.02, 0.999 if "failure" in path else 1.0)
        else:
            low, high = 0.75 * value, 1.25 * value
        uncertain[path] = {"dist": "triangular", "low": low, "mode": value, "high": high}
    data["uncertain"] = uncertain
    return ProcessCostModel.model_validate(data)


def main() -> None:
    """Time MC + Sobol on the 20-step process and print the target table and the cases."""
    model = widely_uncertain(load_process(PROCESS))
    n_inputs = len(model.uncertain)
    evaluations = SOBOL_N * (n_inputs + 2)
    t_mc = median_time(lambda: monte_carlo(model, DRAWS, seed=1), repeat=5)
    t_sobol = median_time(lambda: sobol_indices(model, SOBOL_N, seed=1), repeat=3)
    t_tornado = median_time(lambda: tornado(model), repeat=3)
    total = t_mc + t_sobol + t_tornado
    top = sobol_indices(model, SOBOL_N, seed=1).top(3)
    print(f"process: {len(model.steps)} steps, {n_inputs} uncertain inputs")
    print_table(
        [
            {"what": f"Monte Carlo, {DRAWS} draws", "target": "-", "measured s": t_mc},
            {
                "what": f"Sobol S1+ST, N={SOBOL_N}, {evaluations} evaluations",
                "target": "-",
                "measured s": t_sobol,
            },
            {
                "what": f"tornado, {2 * n_inputs} evaluations",
                "target": "-",
                "measured s": t_tornado,
            },
            {
                "what": "MC + Sobol + tornado, 20-step process",
                "target": f"<= {TARGET_S:.0f} s",
                "measured s": total,
            },
        ]
    )
    print(
        "\ntop Sobol indices (per gram): "
        + ", ".join(f"{r['input']} ST={r['ST']:.2f}" for r in top)
    )
    print()
    rows = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        c = check_published(load_process(path))
        rows.append(
            {
                "case": path.stem,
                "metric": c.metric,
                "published": f"{c.published:,.0f}",
                "ours": f"{c.ours:,.0f}",
                "currency": c.currency,
                "deviation %": f"{100 * c.deviation:+.1f}",
                "target": "+-15 %",
                "inputs": c.inputs,
                "sourced %": f"{100 * c.sourced_share:.0f}",
                "source": c.cite,
            }
        )
    print_table(rows)


if __name__ == "__main__":
    main()
