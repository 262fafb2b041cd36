"""Export a batch to Parquet (samples, plus spectra in a sibling file) and read it back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from biopilot.store import schema as s
from biopilot.store.samples import QUALITY_NAMES
from biopilot.store.timebase import index_from_us

if TYPE_CHECKING:
    from biopilot.store.historian import Historian

__all__ = ["ExportedBatch", "export_parquet", "read_export", "spectra_path"]

_BATCH_KEY = b"biopilot.batch"
_UNITS_KEY = b"biopilot.tag_units"
_VERSION_KEY = b"biopilot.schema_version"
_AXIS_KEY = b"biopilot.wavenumbers_cm1"
_TIME = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class ExportedBatch:
    """A batch read back from its Parquet export."""

    batch: dict[str, Any]  # BatchInfo.as_dict()
    tag_units: dict[str, str | None]
    samples: pd.DataFrame  # as Historian.read_samples returns it
    spectra_times: pd.DatetimeIndex
    wavenumbers_cm1: np.ndarray
    spectra: np.ndarray  # float32, (n_spectra, n_wavenumbers); (0, 0) when none


def spectra_path(path: str | Path) -> Path:
    """Return the sibling spectra file of a samples file: ``<stem>.spectra.parquet``."""
    p = Path(path)
    return p.with_name(f"{p.stem}.spectra.parquet")


def export_parquet(historian: Historian, batch_id: int, path: str | Path) -> list[Path]:
    """Write a batch's samples (long) to ``path`` and its spectra to ``<stem>.spectra.parquet``.

    The samples file has columns ``time_utc`` (timestamp[us, UTC]), ``tag``, ``value``
    (null when bad), ``quality`` and ``reason``; its schema metadata holds the batch
    (``biopilot.batch``: identity, unit, product, recipe, times, status, metadata, phases) and
    the tags' engineering units. The spectra file (only if the batch has spectra) has
    ``time_utc`` and ``spectrum`` (fixed-size list of float32), the axis in its metadata.

    Returns
    -------
    list of Path
        The files written. Raises UnknownBatchError for an unknown batch.
    """
    info = historian.batch(batch_id)
    samples = historian.read_samples(batch_id)
    meta = {
        _BATCH_KEY: json.dumps(info.as_dict()).encode(),
        _UNITS_KEY: json.dumps(historian.batch_tags(batch_id)).encode(),
        _VERSION_KEY: str(s.SCHEMA_VERSION).encode(),
    }
    value = samples["value"].to_numpy()
    table = pa.table(
        {
            "time_utc": _timestamps(pd.DatetimeIndex(samples["time_utc"])),
            "tag": pa.array(samples["tag"].tolist(), pa.string()),
            "value": pa.array(value, pa.float64(), mask=np.isnan(value)),
            "quality": pa.array(samples["quality"].astype(str).tolist(), pa.string()),
            "reason": pa.array(samples["reason"].tolist(), pa.string()),
        }
    ).replace_schema_metadata(meta)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    written = [out]
    times, axis, data = historian.read_spectra(batch_id)
    if len(times):
        flat = pa.array(data.reshape(-1), pa.float32())
        spec = pa.table(
            {
                "time_utc": _timestamps(times),
                "spectrum": pa.FixedSizeListArray.from_arrays(flat, axis.size),
            }
        ).replace_schema_metadata({**meta, _AXIS_KEY: json.dumps(axis.tolist()).encode()})
        pq.write_table(spec, spectra_path(out))
        written.append(spectra_path(out))
    return written


def _timestamps(times: pd.DatetimeIndex) -> pa.Array:
    """Arrow timestamp[us, UTC] of tz-aware times, via exact int64 microseconds."""
    return pa.array(times.tz_convert("UTC").as_unit("us").asi8, pa.int64()).cast(_TIME)


def read_export(path: str | Path) -> ExportedBatch:
    """Read a batch written by :func:`export_parquet` back into the historian's shapes."""
    table = pq.read_table(path)
    meta = table.schema.metadata or {}
    if _BATCH_KEY not in meta:
        raise ValueError(f"{path}: not a biopilot batch export (no {_BATCH_KEY.decode()} metadata)")
    cols = table.to_pydict()
    t_us = table.column("time_utc").cast(pa.int64()).to_numpy()
    samples = pd.DataFrame(
        {
            "time_utc": index_from_us(t_us),
            "tag": pd.Series(cols["tag"], dtype=object),
            "value": table.column("value").to_numpy(zero_copy_only=False).astype(np.float64),
            "quality": pd.Categorical(cols["quality"], categories=list(QUALITY_NAMES)),
            "reason": pd.Series(cols["reason"], dtype=object),
        }
    )
    times, axis, data = (
        index_from_us(np.zeros(0, np.int64)),
        np.zeros(0),
        np.zeros((0, 0), np.float32),
    )
    sp = spectra_path(path)
    if sp.is_file():
        spec = pq.read_table(sp)
        axis = np.asarray(json.loads(spec.schema.metadata[_AXIS_KEY]), dtype=np.float64)
        times = index_from_us(spec.column("time_utc").cast(pa.int64()).to_numpy())
        flat = spec.column("spectrum").combine_chunks().flatten().to_numpy()
        data = np.asarray(flat, dtype=np.float32).reshape(len(times), axis.size)
    return ExportedBatch(
        batch=json.loads(meta[_BATCH_KEY]),
        tag_units=json.loads(meta[_UNITS_KEY]),
        samples=samples,
        spectra_times=times,
        wavenumbers_cm1=axis,
        spectra=data,
    )
