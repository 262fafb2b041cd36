"""Record a simulated batch of the twin into the historian as a plant would have logged it."""

from __future__ import annotations

from dataclasses import dataclass

from biopilot.store.historian import Historian
from biopilot.twin.batch import BatchResult

__all__ = ["DEFAULT_AREA", "DEFAULT_PRODUCT", "DEFAULT_SITE", "RecordedBatch", "record_batch",
           "units_of"]

DEFAULT_SITE = "demo-site"
DEFAULT_AREA = "usp"  # upstream processing
DEFAULT_PRODUCT = "mAb-1"

#: Unit suffixes of biopilot tag names and the engineering units they stand for.
_SUFFIX_UNITS: tuple[tuple[str, str], ...] = (
    ("_cells_per_ml", "cells/mL"),
    ("_g_per_l", "g/L"),
    ("_mmol_per_l_h", "mmol/L/h"),
    ("_mmol_per_l", "mmol/L"),
    ("_mosm_per_kg", "mOsm/kg"),
    ("_pf_per_cm", "pF/cm"),
    ("_pct", "%"),
    ("_ml", "mL"),
    ("_l", "L"),
    ("_c", "degC"),
)


@dataclass(frozen=True)
class RecordedBatch:
    """Where a simulated batch went: its id and code, and how many rows were written."""

    batch_id: int
    code: str
    unit: str
    n_samples: int
    n_spectra: int
    n_events: int


def units_of(tag: str) -> str | None:
    """Engineering units read from a tag name's suffix (``glucose_g_per_l`` -> ``g/L``)."""
    if tag in ("ph", "ph_offline"):
        return "pH"
    for suffix, units in _SUFFIX_UNITS:
        if tag.endswith(suffix):
            return units
    return None


def record_batch(
    historian: Historian,
    result: BatchResult,
    *,
    code: str | None = None,
    site: str = DEFAULT_SITE,
    area: str = DEFAULT_AREA,
    product: str = DEFAULT_PRODUCT,
) -> RecordedBatch:
    """Write one simulated batch (recipe, batch, phases, samples, spectra, events).

    Parameters
    ----------
    historian : Historian
        The open historian.
    result : BatchResult
        A batch from :func:`biopilot.twin.simulate_batch`.
    code : str, optional
        The batch code; default ``{unit}-S{seed}``.
    site, area, product : str
        Where the unit sits and what it makes (created on first use).

    Returns
    -------
    RecordedBatch

    Raises
    ------
    ValueError
        If the batch code is already taken (nothing is written then).
    """
    code = code or f"{result.unit}-S{result.seed}"
    historian.ensure_unit(site, area, result.unit, kind="bioreactor")
    historian.ensure_product(product)
    body = result.recipe.model_dump(mode="json")
    recipe_id = historian.add_recipe(product, "fed-batch", _recipe_version(body), body)
    meta = {
        "seed": result.seed,
        "source": "biopilot.twin",
        "faults": [f.model_dump() if hasattr(f, "model_dump") else str(f) for f in result.faults],
    }
    batch_id = historian.start_batch(code, result.unit, product, recipe_id,
                                     result.start_utc.to_pydatetime(), meta)
    try:
        samples = result.samples()
        units = {t: u for t in samples["tag"].unique() if (u := units_of(str(t)))}
        n_samples = historian.write_samples(batch_id, result.unit, samples, units=units)
        n_spectra = 0
        if result.raman is not None:
            n_spectra = historian.write_spectra(
                batch_id, result.unit, result.raman.time_utc,
                result.raman.wavenumbers_cm1, result.raman.spectra,
            )
        events = [
            {
                "time_utc": e.time_utc.to_pydatetime(),
                "kind": "fault" if e.kind == "fault_onset" else "operation",
                "severity": "high" if e.kind == "fault_onset" else "info",
                "message": e.message,
                "payload": {"twin_event": e.kind, "value": e.value, "unit": e.unit},
            }
            for e in result.events
        ]
        n_events = historian.write_events(batch_id, result.unit, events)
        for ph in result.phases:
            historian.add_phase(batch_id, ph.name, ph.start_utc.to_pydatetime(),
                                ph.end_utc.to_pydatetime())
        end = result.online.index[-1].to_pydatetime()
        historian.end_batch(batch_id, end, "complete")
    except Exception:
        # Append-only store: the partial batch stays, marked aborted, never silently complete.
        historian.end_batch(batch_id, result.start_utc.to_pydatetime(), "aborted")
        raise
    return RecordedBatch(batch_id, code, result.unit, n_samples, n_spectra, n_events)


def _recipe_version(body: dict[str, object]) -> str:
    """A content version: the same recipe body always gets the same short hash."""
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return digest[:12]
