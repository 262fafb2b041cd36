"""MSPC plumbing: maturity grid, run rules, model files and batches read from the historian.

Models are saved as one JSON file (no pickle: a model file is data, never code) that carries a
format name and version, the biopilot version, the hyper-parameters, the learned attributes
and the training metadata; a file of another format version is refused with a clear error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from biopilot.config import ConfigError
from biopilot.store import Historian

__all__ = [
    "CONTROLLER_TAGS",
    "FORMAT",
    "FORMAT_VERSION",
    "ONLINE_TAGS",
    "PLANT_TAGS",
    "align",
    "batch_bins",
    "first_run",
    "load_model",
    "read_batches",
    "run_peak",
    "save_model",
]

FORMAT = "biopilot.mspc"
FORMAT_VERSION = 1
#: The twin's online tags, the default MSPC variables.
ONLINE_TAGS: tuple[str, ...] = (
    "ph",
    "do_pct",
    "temperature_c",
    "our_mmol_per_l_h",
    "cer_mmol_per_l_h",
    "capacitance_pf_per_cm",
    "base_added_ml",
    "volume_l",
    "o2_fraction_pct",
)
#: The controller outputs a bioreactor controller logs (mass-flow controllers, base pump).
CONTROLLER_TAGS: tuple[str, ...] = (
    "air_flow_slpm",
    "o2_flow_slpm",
    "co2_flow_slpm",
    "base_pump_ml_per_h",
)
#: Process tags and controller outputs: everything the twin logs online.
PLANT_TAGS: tuple[str, ...] = ONLINE_TAGS + CONTROLLER_TAGS


def align(
    online: pd.DataFrame,
    variables: Sequence[str],
    period_min: float,
    n_bins: int | None = None,
    *,
    start_utc: pd.Timestamp | None = None,
    fill: bool = False,
) -> np.ndarray:
    """Return the batch on its maturity grid: mean of each ``period_min`` bin, (n_bins, m).

    Maturity is the time since ``start_utc`` (default: the first row), the alignment of
    batches of one recipe that share their timing. Bins without data are NaN, or linearly
    interpolated along time when ``fill`` is set (for training and finished batches).

    Raises
    ------
    ValueError
        If a variable is missing, the index is not a tz-aware time index, or the frame is
        empty.
    """
    missing = [v for v in variables if v not in online.columns]
    if missing:
        raise ValueError(f"batch data lacks the MSPC variables {missing}")
    if not isinstance(online.index, pd.DatetimeIndex) or online.index.tz is None:
        raise ValueError("batch data needs a timezone-aware UTC time index")
    if online.empty:
        raise ValueError("batch data is empty")
    t0 = online.index[0] if start_utc is None else pd.Timestamp(start_utc)
    minutes = np.asarray((online.index - t0) / pd.Timedelta(minutes=1), dtype=float)
    keep = minutes >= 0
    k = (minutes[keep] // period_min).astype(int)
    values = online.loc[keep, list(variables)].apply(pd.to_numeric, errors="coerce")
    values = values.where(np.isfinite(values.to_numpy(dtype=float)))
    grid = values.groupby(k).mean()
    size = int(k.max()) + 1 if n_bins is None else n_bins
    out = grid.reindex(range(size))
    if fill:
        out = out.interpolate(limit_direction="both")
    return np.asarray(out.to_numpy(dtype=float))


def save_model(model: BaseEstimator, path: str | Path, metadata: dict[str, Any]) -> Path:
    """Write ``model`` with its training ``metadata`` to a versioned JSON file; return it."""
    from biopilot import __version__

    body = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "biopilot_version": __version__,
        "saved_utc": datetime.now(UTC).isoformat(),
        "training": metadata,
        "model": _encode(model),
    }
    p = Path(path)
    p.write_text(json.dumps(body))
    return p


def load_model(path: str | Path, classes: dict[str, type[BaseEstimator]]) -> Any:
    """Read a model saved by :func:`save_model`; ``classes`` maps class names to types.

    Raises
    ------
    ConfigError
        If the file is missing, not JSON, of another format or format version, or names a
        class that is not in ``classes``.
    """
    p = Path(path)
    try:
        body = json.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such model file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{p}: not a biopilot MSPC model file ({err})") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise ConfigError(f"{p}: not a biopilot MSPC model file (format {FORMAT!r} expected)")
    if body.get("format_version") != FORMAT_VERSION:
        raise ConfigError(
            f"{p}: model file format version {body.get('format_version')!r} "
            f"(biopilot {body.get('biopilot_version')}); this biopilot reads version "
            f"{FORMAT_VERSION}: retrain the model"
        )
    model = _decode(body["model"], classes, p)
    model.training_metadata_ = body.get("training", {})
    return model


def read_batches(hist: Historian, batches: Sequence[int | str], tags: Sequence[str]) -> list[Any]:
    """Return ``(BatchInfo, online frame)`` for each batch id or code, frames wide by tag.

    Raises UnknownBatchError naming a batch that is not in the store.
    """
    out = []
    for b in batches:
        info = hist.batch(int(b) if isinstance(b, str) and b.isdigit() else b)
        present = set(hist.batch_tags(info.id))
        wide = hist.read_wide(info.id, [t for t in tags if t in present])
        out.append((info, wide.reindex(columns=list(tags))))
    return out


def first_run(flags: np.ndarray, run: int) -> int | None:
    """Return the index completing the first run of ``run`` consecutive True flags, or None."""
    f = np.asarray(flags, dtype=bool)
    if run <= 1:
        hits = np.flatnonzero(f)
        return int(hits[0]) if hits.size else None
    counts = np.convolve(f.astype(int), np.ones(run, dtype=int), mode="valid")
    hits = np.flatnonzero(counts >= run)
    return int(hits[0]) + run - 1 if hits.size else None


def run_peak(values: np.ndarray, run: int) -> float:
    """Return the largest value that ``values`` exceed for ``run`` consecutive points."""
    v = np.nan_to_num(np.asarray(values, dtype=float), nan=-np.inf)
    if len(v) < run:
        return 0.0
    windows = np.lib.stride_tricks.sliding_window_view(v, run)
    return float(max(windows.min(axis=1).max(), 0.0))


def batch_bins(batch: pd.DataFrame, period_min: float) -> int:
    """Return the number of ``period_min`` bins from a batch's first to its last row."""
    span = (batch.index[-1] - batch.index[0]) / pd.Timedelta(minutes=1)
    return int(span // period_min) + 1


# -- helpers -------------------------------------------------------------------------------


def _encode(obj: Any) -> Any:
    if isinstance(obj, BaseEstimator):
        state = {k: _encode(v) for k, v in vars(obj).items() if k.endswith("_")}
        state.pop("training_metadata_", None)
        return {
            "__estimator__": type(obj).__name__,
            "params": obj.get_params(deep=False),
            "state": state,
        }
    if isinstance(obj, np.ndarray):  # NaN is written as NaN (Python's json reads it back)
        return {"__array__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, dict):
        return {"__dict__": [[_encode(k), _encode(v)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return [_encode(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _decode(obj: Any, classes: dict[str, type[BaseEstimator]], path: Path) -> Any:
    if isinstance(obj, list):
        return [_decode(v, classes, path) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__estimator__" in obj:
        name = obj["__estimator__"]
        if name not in classes:
            raise ConfigError(f"{path}: unknown model class {name!r}")
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in obj["params"].items()}
        est = classes[name](**params)
        for k, v in obj["state"].items():
            setattr(est, k, _decode(v, classes, path))
        return est
    if "__array__" in obj:
        return np.asarray(obj["__array__"], dtype=obj["dtype"])
    if "__dict__" in obj:
        return {_decode(k, classes, path): _decode(v, classes, path) for k, v in obj["__dict__"]}
    return {k: _decode(v, classes, path) for k, v in obj.items()}
