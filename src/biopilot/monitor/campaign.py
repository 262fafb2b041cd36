"""Calibration data for the Raman soft sensors: a designed twin campaign, or a historian.

A soft sensor is only as good as the space its calibration spans. In a single recipe the
concentrations move together (glucose falls while lactate, titer and VCD rise), so a model
could learn the clock instead of the bands. The campaign therefore runs the twin over a Latin
hypercube of recipe factors (feeds, temperatures, shift day, seeding, glucose target, feed
glutamine) that breaks those correlations, each batch with its own kinetic-parameter draw
(McKay, Beckman & Conover 1979 Technometrics 21:239; space-filling LHS as used for
bioprocess DoE in Mandenius & Brundin 2008 Biotechnol. Prog. 24:1191).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import qmc

from biopilot.config import parse_model
from biopilot.store import Historian
from biopilot.twin import BatchResult, Recipe, default_recipe, simulate_batch

__all__ = [
    "ANALYTES",
    "FACTORS",
    "CalibrationSet",
    "CampaignRun",
    "calibration_set_from_batches",
    "calibration_set_from_historian",
    "calibration_sets",
    "coadd_spectra",
    "design_campaign",
    "run_campaign",
    "trailing_mean",
]

#: What the soft sensors predict: true-state and at-line tag names, units in the names.
ANALYTES: tuple[str, ...] = (
    "glucose_g_per_l",
    "lactate_g_per_l",
    "glutamine_mmol_per_l",
    "ammonia_mmol_per_l",
    "titer_g_per_l",
    "vcd_cells_per_ml",
)

#: DoE factors and their (low, high) ranges around the platform recipe. ``*_mult`` factors
#: multiply the recipe's value; the others set it. Ranges are those a process-development
#: screen explores for a CHO fed-batch (Rouiller et al. 2013 Biotechnol. Prog. 29:1052).
FACTORS: Mapping[str, tuple[float, float]] = {
    "seeding_density_cells_per_ml": (0.5e6, 1.2e6),
    "temperature_c": (35.5, 37.5),
    "shift_temperature_c": (31.0, 35.0),
    "temperature_shift_day": (4.0, 7.0),
    "bolus_volume_mult": (0.6, 1.4),
    "continuous_rate_mult": (0.5, 1.5),
    "feed_glutamine_mult": (0.4, 1.6),
    "glucose_target_g_per_l": (3.0, 10.0),
    "initial_glutamine_mmol_per_l": (2.0, 8.0),
}


@dataclass(frozen=True)
class CampaignRun:
    """One designed batch: its twin seed, factor values and the recipe they make."""

    seed: int
    factors: dict[str, float]
    recipe: Recipe


@dataclass
class CalibrationSet:
    """Spectra paired with reference values, and the batch each spectrum comes from.

    Attributes
    ----------
    spectra : ndarray of float32, shape (n, n_wavenumbers)
        Raman spectra, counts.
    wavenumbers_cm1 : ndarray, shape (n_wavenumbers,)
        Their common axis, cm-1.
    targets : DataFrame
        One column per analyte of :data:`ANALYTES` in its units; NaN where no reference.
    groups : ndarray of str, shape (n,)
        Batch label of each spectrum (cross-validation folds never split a batch).
    time_h : ndarray, shape (n,)
        Hours since the batch's first spectrum (inoculation for the twin).
    batches : list of dict
        Provenance of each batch: label, seed, factors or historian code.
    """

    spectra: np.ndarray
    wavenumbers_cm1: np.ndarray
    targets: pd.DataFrame
    groups: np.ndarray
    time_h: np.ndarray
    batches: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.spectra.shape[0])


def trailing_mean(spectra: np.ndarray, window: int) -> np.ndarray:
    """Return each row's mean with the ``window - 1`` rows before it (fewer at the start).

    Rows holding NaN/inf are left out of every mean; a row whose window holds no finite row
    is NaN.
    """
    return coadd_spectra(spectra, window)[0]


def coadd_spectra(spectra: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Trailing means (see :func:`trailing_mean`) and how many finite rows each averages.

    The co-add of calibration sets and of a live :class:`~biopilot.monitor.softsensor_bank.
    SoftSensorBank` alike: each row with the ``window - 1`` before it, causal.
    """
    x = np.asarray(spectra, dtype=np.float64)
    finite = np.all(np.isfinite(x), axis=1)
    if window <= 1:
        return x, finite.astype(float)
    cum = np.cumsum(np.vstack([np.zeros((1, x.shape[1])), np.where(finite[:, None], x, 0.0)]), 0)
    count = np.concatenate([[0], np.cumsum(finite)])
    hi = np.arange(1, x.shape[0] + 1)
    lo = np.maximum(hi - window, 0)
    n = (count[hi] - count[lo]).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (cum[hi] - cum[lo]) / n[:, None]
    out[n == 0] = np.nan
    return np.asarray(out), n


def design_campaign(
    n_batches: int,
    *,
    seed: int,
    base: Recipe | None = None,
    factors: Mapping[str, tuple[float, float]] = FACTORS,
) -> list[CampaignRun]:
    """Design a calibration campaign: a seeded Latin hypercube over recipe factors.

    Parameters
    ----------
    n_batches : int
        Number of batches (>= 1).
    seed : int
        Seeds the design and each batch's twin seed; another seed gives other batches
        (use one for calibration and another for held-out test batches).
    base : Recipe, optional
        Recipe the factors vary; :func:`~biopilot.twin.default_recipe` if None.
    factors : mapping of str to (float, float)
        Factor ranges, keys among :data:`FACTORS`.

    Returns
    -------
    list of CampaignRun
        One validated recipe per batch, with its factor values and twin seed.

    Raises
    ------
    ValueError
        If ``n_batches < 1`` or a factor is unknown.
    biopilot.config.ConfigError
        If a design point makes an invalid recipe (the message names the field).
    """
    if n_batches < 1:
        raise ValueError(f"n_batches must be >= 1, got {n_batches}")
    unknown = sorted(set(factors) - set(FACTORS))
    if unknown:
        raise ValueError(f"unknown factors {unknown}; known: {sorted(FACTORS)}")
    base = default_recipe() if base is None else base
    names = list(factors)
    unit = qmc.LatinHypercube(d=len(names), rng=np.random.default_rng([seed, 1])).random(n_batches)
    lows = np.array([factors[k][0] for k in names])
    highs = np.array([factors[k][1] for k in names])
    points = qmc.scale(unit, lows, highs) if names else np.zeros((n_batches, 0))
    seeds = np.random.SeedSequence([seed, 2]).generate_state(n_batches)
    runs = []
    for i in range(n_batches):
        values = {k: float(v) for k, v in zip(names, points[i], strict=True)}
        runs.append(CampaignRun(int(seeds[i]), values, _recipe(base, values, f"doe-{seed}-{i}")))
    return runs


def run_campaign(
    runs: Sequence[CampaignRun],
    *,
    progress: Callable[[int], None] | None = None,
) -> list[BatchResult]:
    """Simulate each designed batch on the twin (parameter variability on, Raman on).

    ``progress(i)`` is called after batch ``i``. About 0.25 s per 14-day batch.
    """
    out = []
    for i, run in enumerate(runs):
        out.append(simulate_batch(run.recipe, seed=run.seed, unit=f"DOE-{i:03d}"))
        if progress is not None:
            progress(i)
    return out


def calibration_set_from_batches(
    batches: Iterable[BatchResult],
    *,
    every: int = 1,
    coadd: int = 1,
    runs: Sequence[CampaignRun] = (),
) -> CalibrationSet:
    """Pair each twin spectrum with the true concentrations at its acquisition time.

    Parameters
    ----------
    batches : iterable of BatchResult
        Simulated with Raman.
    every : int
        Keep every ``every``-th spectrum (1 = all, one per 15 min).
    coadd : int
        Co-add: each row is the mean of the batch's last ``coadd`` spectra (trailing, so
        causal, as a live monitor can do), paired with the truth at the latest one; the
        first ``coadd - 1`` spectra of a batch are left out. 1 = single spectra.
    runs : sequence of CampaignRun, optional
        The designs of the batches, recorded in the provenance.

    Raises
    ------
    ValueError
        If a batch has no Raman, or the batches do not share one axis.
    """
    if every < 1 or coadd < 1:
        raise ValueError(f"every and coadd must be >= 1, got {every} and {coadd}")
    parts: list[tuple[np.ndarray, pd.DataFrame, np.ndarray]] = []
    axis: np.ndarray | None = None
    info: list[dict[str, Any]] = []
    for i, b in enumerate(batches):
        if b.raman is None:
            raise ValueError(f"batch {i} (seed {b.seed}) was simulated without Raman")
        axis = _same_axis(axis, b.raman.wavenumbers_cm1, f"batch {i}")
        spectra = coadd_spectra(b.raman.spectra, coadd)[0][coadd - 1 :].astype(np.float32)
        keep = slice(None, None, every)
        times = b.raman.time_utc[coadd - 1 :][keep]
        truth = b.truth.loc[times, list(ANALYTES)].clip(lower=0.0).reset_index(drop=True)
        hours = np.asarray((times - b.raman.time_utc[0]) / pd.Timedelta(hours=1), dtype=float)
        parts.append((spectra[keep], truth, hours))
        label = f"{b.unit}/seed-{b.seed}"
        entry: dict[str, Any] = {"label": label, "seed": b.seed, "n_spectra": len(truth)}
        if coadd > 1:
            entry["coadd"] = coadd
        if i < len(runs):
            entry["factors"] = runs[i].factors
        info.append(entry)
    return _assemble(parts, axis, info)


def calibration_sets(
    batches: Iterable[BatchResult],
    windows: Iterable[int],
    *,
    every: int = 1,
    runs: Sequence[CampaignRun] = (),
) -> dict[int, CalibrationSet]:
    """One calibration set per co-add window (and single spectra) from the same twin batches."""
    kept = list(batches)
    return {
        w: calibration_set_from_batches(kept, every=every, coadd=w, runs=runs)
        for w in sorted({1, *windows})
    }


def calibration_set_from_historian(
    historian: Historian,
    *,
    batch_ids: Sequence[int] | None = None,
    max_lag_min: float = 20.0,
    coadd: int = 1,
) -> CalibrationSet:
    """Pair at-line assays stored in a historian with the spectrum taken just before each.

    A reference sample is matched to the latest spectrum acquired before it (a sample is
    drawn before that time's feed) and no more than ``max_lag_min`` minutes earlier; samples
    without such a spectrum, or flagged bad, are left out. Spectra flagged bad are skipped.
    With ``coadd`` > 1 the row is the mean of that spectrum and the ``coadd - 1`` before it
    (a sample with fewer stored spectra before it is left out), as a live co-add gives.

    Raises
    ------
    ValueError
        If no batch holds both spectra and at-line assays.
    """
    if coadd < 1:
        raise ValueError(f"coadd must be >= 1, got {coadd}")
    ids = [b.id for b in historian.list_batches()] if batch_ids is None else list(batch_ids)
    parts: list[tuple[np.ndarray, pd.DataFrame, np.ndarray]] = []
    axis: np.ndarray | None = None
    info: list[dict[str, Any]] = []
    for bid in ids:
        times, wn, spectra = historian.read_spectra(bid)
        refs = _references(historian, bid)
        if not len(times) or refs.empty:
            continue
        axis = _same_axis(axis, wn, f"batch {bid}")
        t_ref = refs.index.to_numpy(dtype="datetime64[ns]")
        at = np.searchsorted(times.to_numpy(dtype="datetime64[ns]"), t_ref, side="left") - 1
        ok = at >= 0
        lag = np.full(len(refs), np.inf)
        lag[ok] = (t_ref[ok] - times.to_numpy(dtype="datetime64[ns]")[at[ok]]) / np.timedelta64(
            1, "m"
        )
        ok &= lag <= max_lag_min
        coadded, n = coadd_spectra(spectra, coadd)
        ok[ok] &= n[at[ok]] == coadd  # that spectrum and the coadd - 1 before it, all good
        means = coadded[np.maximum(at, 0)]
        if not ok.any():
            continue
        rows = at[ok]
        hours = np.asarray((times[rows] - times[0]) / pd.Timedelta(hours=1), dtype=float)
        parts.append((means[ok], refs[ok].reset_index(drop=True), hours))
        meta = historian.batch(bid)
        info.append(
            {
                "label": meta.code,
                "batch_id": bid,
                "seed": (meta.metadata or {}).get("seed"),
                "n_spectra": int(ok.sum()),
            }
        )
    if not parts:
        raise ValueError("no batch in the historian holds both Raman spectra and at-line assays")
    return _assemble(parts, axis, info)


def _recipe(base: Recipe, values: Mapping[str, float], name: str) -> Recipe:
    """Apply factor values to ``base`` and re-validate the recipe."""
    data = base.model_dump()
    data["name"] = name
    direct = ("seeding_density_cells_per_ml", "temperature_c", "shift_temperature_c")
    for key in (*direct, "temperature_shift_day", "initial_glutamine_mmol_per_l"):
        if key in values:
            data[key] = values[key]
    for feed in data["bolus_feeds"]:
        feed["volume_l"] *= values.get("bolus_volume_mult", 1.0)
    for feed in data["continuous_feeds"]:
        feed["rate_l_per_day"] *= values.get("continuous_rate_mult", 1.0)
    for medium in data["media"].values():
        medium["glutamine_mmol_per_l"] *= values.get("feed_glutamine_mult", 1.0)
    if data.get("glucose_feed") is not None and "glucose_target_g_per_l" in values:
        target = values["glucose_target_g_per_l"]
        data["glucose_feed"]["target_g_per_l"] = target
        data["glucose_feed"]["trigger_below_g_per_l"] = max(0.0, target - 0.5)
    return parse_model(Recipe, data, source=f"campaign recipe {name}")


def _references(historian: Historian, batch_id: int) -> pd.DataFrame:
    """At-line values of the analytes (NaN where bad or absent), indexed by UTC time."""
    tags = historian.batch_tags(batch_id)
    cols = {}
    for tag in ANALYTES:
        if tag in tags:
            frame = historian.read_tag(batch_id, tag)
            good = frame["quality"] == "good"
            cols[tag] = frame["value"].where(good)
    if not cols:
        return pd.DataFrame(columns=list(ANALYTES))
    refs = pd.DataFrame(cols).reindex(columns=list(ANALYTES))
    return refs[refs.notna().any(axis=1)].sort_index()


def _same_axis(axis: np.ndarray | None, new: np.ndarray, where: str) -> np.ndarray:
    """Return the common axis, or raise if ``new`` differs from it."""
    new = np.asarray(new, dtype=np.float64)
    if axis is not None and (new.shape != axis.shape or not np.allclose(new, axis)):
        raise ValueError(
            f"{where} has a wavenumber axis of {new.size} points, the others {axis.size}; "
            "one soft sensor needs one axis"
        )
    return new


def _assemble(
    parts: list[tuple[np.ndarray, pd.DataFrame, np.ndarray]],
    axis: np.ndarray | None,
    info: list[dict[str, Any]],
) -> CalibrationSet:
    if axis is None or not parts:
        raise ValueError("no spectra to calibrate on")
    groups = np.concatenate(
        [np.full(len(p[1]), d["label"], dtype=object) for p, d in zip(parts, info, strict=True)]
    )
    return CalibrationSet(
        spectra=np.concatenate([p[0] for p in parts]).astype(np.float32, copy=False),
        wavenumbers_cm1=axis,
        targets=pd.concat([p[1] for p in parts], ignore_index=True).astype(float),
        groups=groups,
        time_h=np.concatenate([p[2] for p in parts]),
        batches=info,
    )
