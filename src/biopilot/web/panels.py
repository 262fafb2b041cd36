"""What the cockpit's unit panels show, read from the historian: estimates, MSPC, controller, QC.

Conventions read here (what the monitor and the control layer store):

- a soft-sensor or state estimate of tag ``X`` is stored as samples of ``X.est`` with its
  interval in ``X.est_low`` and ``X.est_high`` (same times); the Raman soft sensor's are
  ``raman_X.est``..., drawn over the measured ``X``;
- a controller decision is an event of the batch whose payload holds a ``controller`` object
  (``mode``, and ``setpoints``, ``status``, ``predicted_harvest_kg``, ``fallback_reason``
  when it recommends);
- a QC result may carry its hologram overlay as a base64 PNG in ``overlay_png_base64``.

- the online monitor's MSPC statistics are the tags ``mspc_t2`` and ``mspc_spe``.

The deployed MSPC model is a model file of :mod:`biopilot.monitor.mspc` given to the app;
:class:`DeployedModels` loads it once and again when the file changes. Without one, the
MSPC chart shows the stored statistics, without limits or contributions.
"""

from __future__ import annotations

import base64
import binascii
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biopilot.monitor.mspc import BatchEvolutionModel, load
from biopilot.monitor.mspc_io import read_batches
from biopilot.store import Historian, RecordInfo
from biopilot.web.lineview import thin

__all__ = [
    "ESTIMATE",
    "OVERLAY_KEY",
    "DeployedModels",
    "controller_state",
    "estimates",
    "mspc_chart",
    "overlay_png",
    "qc_panel",
]

#: Tag suffixes of an estimate: value, lower and upper bound of its interval.
ESTIMATE = (".est", ".est_low", ".est_high")
#: Key of a QC result's hologram overlay (base64 PNG).
OVERLAY_KEY = "overlay_png_base64"
_PNG = b"\x89PNG\r\n\x1a\n"
_SOFT = "raman_"  # the online monitor's soft-sensor estimates: raman_X.est of X
_STORED_MSPC = {"t2": "mspc_t2", "spe": "mspc_spe"}  # the online monitor's MSPC tags
_HISTORY = 20  # controller decisions listed


class DeployedModels:
    """The models an app serves (today the MSPC model file), loaded lazily and cached."""

    def __init__(self, mspc_path: str | Path | None = None) -> None:
        self.mspc_path = Path(mspc_path) if mspc_path is not None else None
        self._lock = threading.Lock()
        self._cached: tuple[float, Any] | None = None

    def mspc(self) -> Any:
        """Return the MSPC model, or None if none is deployed; ConfigError for a bad file."""
        if self.mspc_path is None:
            return None
        mtime = self.mspc_path.stat().st_mtime if self.mspc_path.exists() else -1.0
        with self._lock:
            if self._cached is None or self._cached[0] != mtime:
                self._cached = (mtime, load(self.mspc_path))
            return self._cached[1]


def estimates(historian: Historian, batch_id: int, max_points: int) -> list[dict[str, Any]]:
    """Return each estimated tag of a batch: estimate, interval and the measured values."""
    tags = historian.batch_tags(batch_id)
    est, low, high = ESTIMATE
    out = []
    for base in sorted(t[: -len(est)] for t in tags if t.endswith(est)):
        names = [f"{base}{s}" for s in ESTIMATE if f"{base}{s}" in tags]
        wide = historian.read_wide(batch_id, names).rename(columns={f"{base}{est}": "value"})
        shown = thin(wide, max_points)
        item: dict[str, Any] = {
            "tag": base, "units": tags.get(f"{base}{est}") or tags.get(base),
            "time_utc": _times(shown.index), "value": _nums(shown["value"]),
            "low": _nums(shown[f"{base}{low}"]) if f"{base}{low}" in shown else None,
            "high": _nums(shown[f"{base}{high}"]) if f"{base}{high}" in shown else None,
            "measured": None,
        }
        seen = base if base in tags else base.removeprefix(_SOFT)  # raman_X: the soft sensor's X
        if seen in tags:
            measured = thin(historian.read_tag(batch_id, seen), max_points)
            item["measured"] = {"time_utc": _times(measured.index),
                                "value": _nums(measured["value"])}
        out.append(item)
    return out


def mspc_chart(historian: Historian, batch_id: int, models: DeployedModels) -> dict[str, Any]:
    """Return T2 and SPE of a batch with their 95/99 % limits and the latest contributions."""
    model = models.mspc()
    if model is None:
        return _stored_mspc(historian, batch_id)
    source = models.mspc_path.name if models.mspc_path else None
    if not isinstance(model, BatchEvolutionModel):
        return {"deployed": False, "model_file": source,
                "detail": f"{source} holds a {type(model).__name__}, not an online model"}
    meta = getattr(model, "training_metadata_", {}) or {}
    head = {"deployed": True, "model_file": source, "variables": list(model.variables),
            "n_training_batches": int(model.n_batches_), "trained_on": meta.get("batches")}
    [(_, frame)] = read_batches(historian, [batch_id], model.variables)
    frame = frame.dropna(how="all")
    if len(frame) < 2:
        return head | {"points": 0, "detail": "no samples of the model's variables yet"}
    try:
        mon = model.monitor(frame)
    except ValueError as err:  # e.g. a batch of another kind of unit
        return head | {"points": 0, "detail": f"this batch cannot be scored: {err}"}
    finite = np.flatnonzero(np.isfinite(mon["t2"].to_numpy()) & np.isfinite(mon["spe"]))
    chart = {
        "points": len(mon), "time_utc": _times(mon.index),
        "maturity_h": _nums(mon["maturity_h"]), "t2": _nums(mon["t2"]), "spe": _nums(mon["spe"]),
        "limits": {f"{s}_{p}": float(getattr(model, f"{s}_limits_")[a])
                   for s in ("t2", "spe") for a, p in ((0.95, "95"), (0.99, "99"))},
        "alarm_limits": {k: float(v) for k, v in model.alarm_limits_.items()},
        "alarm": bool(mon["alarm"].any()), "latest": None,
    }
    if finite.size:
        i = int(finite[-1])
        contributions = {stat: _sorted(model.contributions(frame, stat).iloc[i])
                         for stat in ("t2", "spe")}
        chart["latest"] = {"time_utc": mon.index[i].isoformat(), "t2": float(mon["t2"].iloc[i]),
                           "spe": float(mon["spe"].iloc[i]), "contributions": contributions}
    return head | chart


def _stored_mspc(historian: Historian, batch_id: int) -> dict[str, Any]:
    """T2 and SPE as the online monitor stored them, when no model file is deployed."""
    tags = historian.batch_tags(batch_id)
    if not all(t in tags for t in _STORED_MSPC.values()):
        return {"deployed": False, "detail": "no MSPC model deployed"}
    wide = historian.read_wide(batch_id, list(_STORED_MSPC.values()))
    return {"deployed": False, "source": "historian", "points": len(wide),
            "detail": "no MSPC model deployed: T2 and SPE as the online monitor stored them "
                      "(limits and contributions need the model file)",
            "time_utc": _times(wide.index),
            **{k: _nums(wide[tag]) for k, tag in _STORED_MSPC.items()},
            "limits": None, "alarm_limits": None, "latest": None}


def controller_state(historian: Historian, batch_id: int) -> dict[str, Any]:
    """Return the controller's latest mode and recommendation stored for a batch."""
    decisions = [e for e in historian.read_events(batch_id=batch_id)
                 if isinstance(e.payload.get("controller"), dict)]
    rows = [{"time_utc": e.time_utc.isoformat(), "event_id": e.id, "kind": e.kind,
             "message": e.message} | e.payload["controller"] for e in decisions]
    modes = [r for r in rows if r.get("mode")]
    recs = [r for r in rows if isinstance(r.get("setpoints"), dict)]
    return {
        "mode": modes[-1]["mode"] if modes else None,
        "mode_since_utc": modes[-1]["time_utc"] if modes else None,
        "recommendation": recs[-1] if recs else None,
        "history": rows[-_HISTORY:][::-1],
        "detail": None if rows else "no controller decisions stored for this batch",
    }


def qc_panel(historian: Historian, batch_id: int) -> dict[str, Any]:
    """Return the QC results and dispositions of a batch (overlays by link, not inline)."""
    records = historian.read_records(batch_id)
    results = [_qc_result(r) for r in records if r.kind == "qc_result"]
    dispositions = [{"record_id": r.id, "time_utc": r.time_utc.isoformat(), "author": r.author,
                     "disposition": r.body.get("disposition"), "reasons": r.body.get("reasons"),
                     "specification": (r.body.get("specification") or {}).get("version")}
                    for r in records if r.kind == "release" and "disposition" in r.body]
    return {"results": results, "dispositions": dispositions,
            "disposition": dispositions[-1] if dispositions else None}


def overlay_png(historian: Historian, batch_id: int, record_id: int) -> bytes | None:
    """Return the overlay PNG of a QC result of the batch, or None if it has none."""
    record = next((r for r in historian.read_records(batch_id, "qc_result") if r.id == record_id),
                  None)
    text = record.body.get(OVERLAY_KEY) if record is not None else None
    if not isinstance(text, str):
        return None
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if data.startswith(_PNG) else None


def _qc_result(r: RecordInfo) -> dict[str, Any]:
    body = {k: v for k, v in r.body.items() if k != OVERLAY_KEY}
    return {"record_id": r.id, "time_utc": r.time_utc.isoformat(), "author": r.author,
            "body": body, "overlay": isinstance(r.body.get(OVERLAY_KEY), str)}


def _sorted(row: pd.Series) -> dict[str, float]:
    clean = row.astype(float).replace([np.inf, -np.inf], np.nan).dropna()
    return {str(k): float(v) for k, v in clean.sort_values(ascending=False).items()}


def _times(index: pd.Index) -> list[str]:
    return [t.isoformat() for t in index]


def _nums(values: Any) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=float)]
