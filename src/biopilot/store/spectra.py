"""The historian's spectra: float32 arrays on a shared wavenumber axis, per batch and time."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from biopilot.store import schema as s
from biopilot.store._base import StoreBase
from biopilot.store.timebase import index_from_us, to_us_array

__all__ = ["SpectrumStore"]

_GOOD, _BAD = s.QUALITY_CODES["good"], s.QUALITY_CODES["bad"]


class SpectrumStore(StoreBase):
    """Spectra of the historian (Raman...), stored as little-endian float32 bytes."""

    def write_spectra(
        self,
        batch_id: int,
        unit: str,
        times_utc: Iterable[datetime] | pd.DatetimeIndex,
        wavenumbers_cm1: np.ndarray,
        spectra: np.ndarray,
    ) -> int:
        """Append spectra of a batch in one transaction; return how many were written.

        Parameters
        ----------
        batch_id : int
            The batch.
        unit : str
            The unit the batch runs on (checked).
        times_utc : sequence of datetime
            Timezone-aware acquisition times, one per spectrum, stored to the microsecond.
        wavenumbers_cm1 : ndarray
            The shared axis, cm-1, 1-D and finite; one axis per batch.
        spectra : ndarray, shape (len(times_utc), len(wavenumbers_cm1))
            Intensities, stored as float32. A spectrum holding NaN or inf is kept as it
            came but flagged bad with the reason.

        Raises
        ------
        ValueError
            If the shapes disagree (the message gives the lengths), the times are naive or
            repeated, the axis differs from the batch's earlier spectra, or a time is already
            stored. Nothing is written then.
        """
        axis = np.asarray(wavenumbers_cm1, dtype=np.float64)
        if axis.ndim != 1 or axis.size == 0 or not np.all(np.isfinite(axis)):
            raise ValueError(
                f"wavenumbers_cm1 must be 1-D, non-empty and finite, got shape {axis.shape}"
            )
        data = np.asarray(spectra, dtype=np.float32)
        t_us = to_us_array(times_utc, "times_utc")
        if data.ndim != 2 or data.shape[1] != axis.size:
            raise ValueError(
                f"spectra have {data.shape[-1] if data.ndim else 0} points each "
                f"(shape {data.shape}), but wavenumbers_cm1 has {axis.size}"
            )
        if data.shape[0] != t_us.size:
            raise ValueError(f"{data.shape[0]} spectra but {t_us.size} times_utc")
        if np.unique(t_us).size != t_us.size:
            raise ValueError("times_utc holds a time twice; one spectrum per time")
        n_bad = np.count_nonzero(~np.isfinite(data), axis=1) if data.size else np.zeros(0, int)
        little = data.astype("<f4", copy=False)
        with self.engine.begin() as conn:
            _, unit_id = self._batch_unit(conn, batch_id, unit)
            if not t_us.size:
                return 0
            axis_id = self._axis_id(conn, batch_id, axis)
            rows = [
                {
                    "batch_id": batch_id,
                    "unit_id": unit_id,
                    "axis_id": axis_id,
                    "t_us": int(t_us[i]),
                    "quality": _BAD if n_bad[i] else _GOOD,
                    "reason": f"{int(n_bad[i])} non-finite points" if n_bad[i] else None,
                    "data_f4": little[i].tobytes(),
                }
                for i in range(t_us.size)
            ]
            try:
                conn.execute(sa.insert(s.spectrum), rows)
            except sa.exc.IntegrityError as err:
                raise ValueError(
                    f"batch {batch_id}: a spectrum at one of these times is already stored; "
                    f"nothing written ({err.orig})"
                ) from None
            self._bump(conn, batch_id, "n_spectra", len(rows))
        return len(rows)

    def read_spectra(self, batch_id: int) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
        """Return a batch's spectra in time order: (UTC times, wavenumbers_cm1, float32 array).

        The array has shape (n_spectra, n_wavenumbers); with no spectra it is (0, 0) and the
        axis empty. Raises UnknownBatchError.
        """
        with self.engine.connect() as conn:
            self._batch_row(conn, batch_id)
            rows = conn.execute(
                sa.select(s.spectrum.c.t_us, s.spectrum.c.data_f4, s.spectrum.c.axis_id)
                .where(s.spectrum.c.batch_id == batch_id)
                .order_by(s.spectrum.c.t_us)
            ).all()
            if not rows:
                return (
                    index_from_us(np.zeros(0, np.int64)),
                    np.zeros(0),
                    np.zeros((0, 0), np.float32),
                )
            blob = conn.execute(
                sa.select(s.spectrum_axis.c.values_f8).where(
                    s.spectrum_axis.c.id == rows[0].axis_id
                )
            ).scalar_one()
        axis = np.frombuffer(blob, dtype="<f8").astype(np.float64)
        data = np.frombuffer(b"".join(r.data_f4 for r in rows), dtype="<f4").reshape(
            len(rows), axis.size
        )
        times = index_from_us(np.fromiter((r.t_us for r in rows), dtype=np.int64, count=len(rows)))
        return times, axis, data.astype(np.float32)

    def _axis_id(self, conn: Connection, batch_id: int, axis: np.ndarray) -> int:
        """Return the id of ``axis`` (stored once, by digest); refuse a second axis in a batch."""
        blob = axis.astype("<f8").tobytes()
        digest = hashlib.sha256(blob).hexdigest()
        ax = s.spectrum_axis
        axis_id = conn.execute(sa.select(ax.c.id).where(ax.c.digest == digest)).scalar()
        if axis_id is None:
            axis_id = conn.execute(
                sa.insert(ax).values(digest=digest, n_points=axis.size, values_f8=blob)
            ).inserted_primary_key[0]  # type: ignore[index]
        used = conn.execute(
            sa.select(s.spectrum.c.axis_id).where(s.spectrum.c.batch_id == batch_id).limit(1)
        ).scalar()
        if used is not None and used != axis_id:
            n_used = conn.execute(sa.select(ax.c.n_points).where(ax.c.id == used)).scalar()
            raise ValueError(
                f"batch {batch_id} already has spectra on another axis ({n_used} points); "
                f"one wavenumber axis per batch ({axis.size} points given)"
            )
        return int(axis_id)
