"""A synthetic autologous CAR-T network: N patients a year over S suites, for scale tests.

Two CAR-T products (a CD19 and a BCMA construct) share identical grade-B suites; apheresis
arrives Monday to Friday as a Poisson stream. Open-processing steps hold a suite; activation
and expansion run in incubators outside it. Durations are typical of closed, semi-automated
processes (about 9 days of manufacture, 7 days of QC release testing).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from biopilot.planning.site import Site

__all__ = ["cart_network"]

# Manufacturing failure (out-of-specification or not manufactured): tisagenlecleucel 7 %
# (12/165, JULIET) and 8 % (7/92, ELIANA), axicabtagene ciloleucel 1 % (1/111, ZUMA-1),
# Front. Immunol. 2021;12:718621, Table 2. We take 4 %, mid-range (UK multicentre LBCL
# retrospective, 2019-2023, also reports 4.2 %).
CART_FAILURE_RATE = 0.04
# ZUMA-1 median leukapheresis-to-delivery time was 17 days (Neelapu et al. 2017, NEJM
# 377:2531); 21 days is used as the vein-to-vein target here.
CART_TARGET_DAYS = 21.0


def cart_network(
    patients_per_year: int = 10_000,
    n_suites: int = 20,
    days: int = 365,
    seed: int = 0,
    bcma_share: float = 0.4,
) -> Site:
    """Build the synthetic site with its patients for ``days`` days.

    Parameters
    ----------
    patients_per_year : int
        Mean apheresis rate (patients per 365 days), spread over weekdays.
    n_suites : int
        Identical grade-B suites.
    days : int
        Length of the patient stream from the site's start (a Monday).
    seed : int
        Seed of the arrival stream.
    bcma_share : float
        Fraction of patients on the BCMA product.
    """
    rng = np.random.default_rng(seed)
    start = datetime.fromisoformat("2026-01-05T00:00:00+00:00")
    per_weekday = patients_per_year / (365 / 7 * 5)
    patients: dict[str, list[dict[str, object]]] = {"CART-CD19": [], "CART-BCMA": []}
    for d in range(days):
        day = start + timedelta(days=d)
        if day.weekday() >= 5:
            continue
        for _ in range(rng.poisson(per_weekday)):
            t = day + timedelta(hours=float(rng.uniform(8.0, 18.0)))
            prod = "CART-BCMA" if rng.random() < bcma_share else "CART-CD19"
            pid = f"P{sum(len(v) for v in patients.values()) + 1:05d}"
            patients[prod].append({"id": pid, "apheresis": t.isoformat()})
    need_ops = max(4, round(2.2 * patients_per_year * 14 / 8760))
    need_inc = max(8, round(1.3 * patients_per_year * 192 / 8760))
    return Site.model_validate(
        {
            "name": f"cart-network-{n_suites}x{patients_per_year}",
            "start": start,
            "suites": [
                {"name": f"S{k + 1:02d}", "grade": "B", "capabilities": ["cell_therapy"]}
                for k in range(n_suites)
            ],
            "equipment": [{"name": "incubator", "count": need_inc}],
            "staff": [{"role": "operator", "headcount": need_ops}],
            "products": [_cart(name, pts) for name, pts in patients.items()],
            "changeovers": [
                {"from_product": "CART-CD19", "to_product": "CART-BCMA", "hours": 2},
                {"from_product": "CART-BCMA", "to_product": "CART-CD19", "hours": 2},
            ],
        }
    )


def _cart(name: str, patients: list[dict[str, object]]) -> dict[str, object]:
    """One CAR-T product: recipe, release times, failure rate and its patients."""
    return {
        "name": name,
        "kind": "autologous",
        "cleaning_h": 1.0,
        "qc_release_h": 168.0,
        "ship_h": 48.0,
        "shelf_life_h": 8760.0,
        "failure_rate": CART_FAILURE_RATE,
        "vein_to_vein_target_days": CART_TARGET_DAYS,
        "procedures": [
            _step("selection", 4.0, [], suite=True),
            _step("activation", 20.0, ["selection"], suite=False),
            _step("transduction", 2.0, ["activation"], suite=True),
            _step("expansion", 168.0, ["transduction"], suite=False),
            _step("harvest_formulation", 4.0, ["expansion"], suite=True),
        ],
        "patients": patients,
    }


def _step(name: str, hours: float, after: list[str], *, suite: bool) -> dict[str, object]:
    """A procedure: in a suite with two operators, or in an incubator.

    Open steps vary in length (cv 0.15); culture steps end on their protocol day (cv 0),
    their variability shows in cell yield, not in time.
    """
    step: dict[str, object] = {
        "name": name,
        "duration_h": hours,
        "duration_cv": 0.15 if suite else 0.0,
        "in_suite": suite,
        "after": after,
    }
    if suite:
        step.update(capability="cell_therapy", staff={"operator": 2})
    else:
        step["equipment"] = {"incubator": 1}
    return step
