"""The historian's time series: bulk-write samples with quality, read a tag, a batch, wide."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from biopilot.store import schema as s
from biopilot.store._base import StoreBase, bulk_insert
from biopilot.store.records import UnknownTagError
from biopilot.store.timebase import index_from_us, to_us, to_us_array

__all__ = ["QUALITY_NAMES", "SampleStore"]

#: Stored quality code -> name, the categories of every returned ``quality`` column.
QUALITY_NAMES: tuple[str, ...] = tuple(s.QUALITY_CODES)
_BAD = s.QUALITY_CODES["bad"]
_REQUIRED = ("time_utc", "tag", "value")
_OPTIONAL = ("quality", "reason")


class SampleStore(StoreBase):
    """Samples of the historian: (batch, tag, UTC time) -> value with a quality."""

    def ensure_tag(self, unit: str, name: str, units: str | None = None) -> int:
        """Return the id of tag ``name`` of ``unit``, creating it.

        Raises ValueError if ``units`` contradicts the stored engineering units.
        """
        with self.engine.begin() as conn:
            return self._tag_ids(
                conn, self._unit_id(conn, unit), [name], {name: units} if units else {}
            )[name]

    def write_samples(
        self, batch_id: int, unit: str, df: pd.DataFrame, units: Mapping[str, str] | None = None
    ) -> int:
        """Append samples of a batch in one transaction; return how many were written.

        Parameters
        ----------
        batch_id : int
            The batch the samples belong to.
        unit : str
            The unit the batch runs on (checked); tags are the unit's, created on first use.
        df : DataFrame
            Long format: ``time_utc`` (timezone-aware), ``tag`` (str), ``value`` (number);
            optional ``quality`` (good/uncertain/bad; missing means good) and ``reason``.
            A NaN, inf or missing value is stored as bad with NULL value and the reason; a
            value flagged bad keeps NULL too, its raw number kept in the reason. Times are
            stored to the microsecond.
        units : mapping of str to str, optional
            Engineering units of the tags (e.g. ``{"temperature": "degC"}``).

        Raises
        ------
        UnknownBatchError, UnknownUnitError
            If the batch or unit is unknown.
        ValueError
            On a missing or unexpected column, naive times, a non-numeric value, an unknown
            quality, a (tag, time) given twice or already stored, or units that contradict
            the stored ones. Nothing is written then.
        """
        cols = self._sample_columns(df)
        with self.engine.begin() as conn:
            self._batch_unit(conn, batch_id, unit)
            if not len(df):
                return 0
            tag_names: pd.Categorical = cols["tag"]
            ids = self._tag_ids(
                conn, self._unit_id(conn, unit), list(tag_names.categories), units or {}
            )
            lookup = np.asarray([ids[t] for t in tag_names.categories], dtype=np.int64)
            tag_ids = lookup[tag_names.codes]
            order = np.lexsort((cols["t_us"], tag_ids))  # primary-key order: sequential appends
            rows = {
                "batch_id": np.full(len(order), batch_id, dtype=np.int64),
                "tag_id": tag_ids[order],
                "t_us": cols["t_us"][order],
                "value": cols["value"][order],
                "quality": cols["quality"][order],
                "reason": cols["reason"][order],
            }
            try:
                n = bulk_insert(conn, s.sample, rows)
            except sa.exc.IntegrityError as err:
                raise ValueError(
                    f"batch {batch_id}: a (tag, time) of these samples is already stored; "
                    f"nothing written ({err.orig})"
                ) from None
            self._bump(conn, batch_id, "n_samples", n)
        return n

    def read_tag(
        self, batch_id: int, tag: str, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        """Return one tag of a batch: a UTC ``time_utc`` index, ``value`` and ``quality``.

        ``start``/``end`` (timezone-aware, inclusive) limit the time range. Bad samples have
        NaN values. Raises UnknownBatchError, or UnknownTagError listing the batch's tags.
        """
        c = s.sample.c
        with self.engine.connect() as conn:
            tag_id = self._tag_lookup(conn, batch_id, [tag])[tag]
            where = _time_range([c.batch_id == batch_id, c.tag_id == tag_id], start, end)
            # Two queries: (time, value) of every row, then the few rows that are not good.
            # Fetching a quality object per row costs more than the second range scan.
            raw = _fetch(conn, sa.select(c.t_us, c.value).where(*where).order_by(c.t_us))
            odd = _fetch(conn, sa.select(c.t_us, c.quality).where(*where, c.quality != 0))
        # float64 holds epoch microseconds exactly up to 2**53 us (year 2255); None -> NaN
        arr = np.array(raw, dtype=np.float64).reshape(-1, 2)
        t_us = arr[:, 0].astype(np.int64)
        quality = np.zeros(len(t_us), dtype=np.int8)
        if odd:
            t_odd, q_odd = np.array(odd, dtype=np.int64).T
            at = np.minimum(np.searchsorted(t_us, t_odd), max(len(t_us) - 1, 0))
            hit = t_us[at] == t_odd  # a row appended between the two reads is skipped
            quality[at[hit]] = q_odd[hit]
        return pd.DataFrame(
            {"value": arr[:, 1], "quality": _quality(quality)}, index=index_from_us(t_us)
        )

    def read_samples(
        self,
        batch_id: int,
        tags: Sequence[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        """Return samples of a batch in long format, sorted by time then tag.

        Columns: ``time_utc`` (UTC), ``tag``, ``value`` (NaN when bad), ``quality``
        (categorical good/uncertain/bad), ``reason``. ``tags`` limits the tags (unknown ones
        raise UnknownTagError); ``start``/``end`` the times.
        """
        with self.engine.connect() as conn:
            names = self._tag_lookup(conn, batch_id, tags)
            q = sa.select(
                s.tag.c.name,
                s.sample.c.t_us,
                s.sample.c.value,
                s.sample.c.quality,
                s.sample.c.reason,
            ).join(s.tag, s.tag.c.id == s.sample.c.tag_id)
            where = _time_range([s.sample.c.batch_id == batch_id], start, end)
            if tags is not None:
                where.append(s.sample.c.tag_id.in_(list(names.values())))
            rows = _fetch(conn, q.where(*where))
        tag, t_us, value, quality, reason = zip(*rows, strict=True) if rows else [()] * 5
        out = pd.DataFrame(
            {
                "time_utc": index_from_us(np.asarray(t_us, dtype=np.int64)),
                "tag": pd.Series(tag, dtype=object),
                "value": np.asarray(value, dtype=np.float64),
                "quality": _quality(quality),
                "reason": pd.Series(reason, dtype=object),
            }
        )
        return out.sort_values(["time_utc", "tag"], kind="stable", ignore_index=True)

    def read_wide(self, batch_id: int, tags: Sequence[str] | None = None) -> pd.DataFrame:
        """Return a batch's samples wide: UTC ``time_utc`` index, one column per tag.

        A bad or absent sample is NaN (qualities are in :meth:`read_samples`).
        """
        long = self.read_samples(batch_id, tags)
        wide = long.pivot(index="time_utc", columns="tag", values="value")
        wide.columns.name = None
        return wide

    def batch_tags(self, batch_id: int) -> dict[str, str | None]:
        """Return the tags sampled in a batch and their engineering units."""
        with self.engine.connect() as conn:
            return self._batch_tags(conn, batch_id)

    # -- helpers ---------------------------------------------------------------------------

    def _batch_tags(self, conn: Connection, batch_id: int) -> dict[str, str | None]:
        self._batch_row(conn, batch_id)
        used = sa.select(s.sample.c.tag_id).where(s.sample.c.batch_id == batch_id).distinct()
        q = (
            sa.select(s.tag.c.name, s.tag.c.units)
            .where(s.tag.c.id.in_(used))
            .order_by(s.tag.c.name)
        )
        return {name: units for name, units in conn.execute(q)}

    def _tag_lookup(
        self, conn: Connection, batch_id: int, tags: Sequence[str] | None
    ) -> dict[str, int]:
        """Map tag names of the batch's unit to ids; UnknownTagError lists the batch's tags."""
        row = self._batch_row(conn, batch_id)
        q = sa.select(s.tag.c.name, s.tag.c.id).where(s.tag.c.unit_id == row.unit_id)
        if tags is not None:
            q = q.where(s.tag.c.name.in_(list(tags)))
        found = {name: int(i) for name, i in conn.execute(q)}
        missing = [t for t in (tags or ()) if t not in found]
        if missing:
            known = ", ".join(self._batch_tags(conn, batch_id)) or "(none)"
            raise UnknownTagError(
                f"batch {row.code!r} has no tag {', '.join(map(repr, missing))}; its tags: {known}"
            )
        return found

    def _tag_ids(
        self, conn: Connection, unit_id: int, names: list[str], units: Mapping[str, str]
    ) -> dict[str, int]:
        """Return ids of tags ``names`` of a unit, creating missing ones; check their units."""
        q = sa.select(s.tag.c.name, s.tag.c.id, s.tag.c.units).where(s.tag.c.unit_id == unit_id)
        existing = {r.name: r for r in conn.execute(q.where(s.tag.c.name.in_(names)))}
        for name in names:
            given, row = units.get(name), existing.get(name)
            if row is None:
                conn.execute(sa.insert(s.tag).values(unit_id=unit_id, name=name, units=given))
            elif given and row.units and given != row.units:
                raise ValueError(f"tag {name!r} is stored in {row.units!r}, not {given!r}")
            elif given and not row.units:
                conn.execute(sa.update(s.tag).where(s.tag.c.id == row.id).values(units=given))
        return {r.name: int(r.id) for r in conn.execute(q.where(s.tag.c.name.in_(names)))}

    @staticmethod
    def _sample_columns(df: pd.DataFrame) -> dict[str, Any]:
        """Validate a long sample frame; return the stored columns, bad values flagged."""
        if not isinstance(df, pd.DataFrame):
            raise ValueError(f"samples must be a pandas DataFrame, got {type(df).__name__}")
        missing = [c for c in _REQUIRED if c not in df.columns]
        extra = [c for c in df.columns if c not in _REQUIRED + _OPTIONAL]
        if missing or extra:
            raise ValueError(
                f"samples need columns {list(_REQUIRED)} (+ optional {list(_OPTIONAL)}); "
                f"missing {missing}, unexpected {extra}"
            )
        n = len(df)
        t_us = to_us_array(df["time_utc"], "time_utc") if n else np.zeros(0, np.int64)
        tag = pd.Categorical(df["tag"]).remove_unused_categories()
        if (tag.codes < 0).any() or not all(isinstance(t, str) and t for t in tag.categories):
            raise ValueError("tag must be a non-empty string in every row")
        try:
            raw = pd.to_numeric(df["value"], errors="raise").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
        except (TypeError, ValueError) as err:
            raise ValueError(f"value must be numeric: {err}") from None
        given_q = df["quality"].fillna("good") if "quality" in df else np.full(n, "good")
        qual = pd.Categorical(given_q)
        unknown = sorted({str(q) for q in qual.categories} - set(s.QUALITY_CODES))
        if unknown:
            raise ValueError(f"quality must be one of {list(s.QUALITY_CODES)}, got {unknown}")
        code = np.asarray([s.QUALITY_CODES[q] for q in qual.categories], np.int64)[qual.codes]
        reason: np.ndarray = np.full(n, None, dtype=object)
        if "reason" in df:
            given = df["reason"].to_numpy(dtype=object)
            keep = ~pd.isna(given)
            reason[keep] = given[keep]
        value = _flag_bad(raw, code, reason)
        dup = pd.DataFrame({"t": t_us, "tag": tag.codes}).duplicated().to_numpy()
        if dup.any():
            first = int(np.flatnonzero(dup)[0])
            raise ValueError(
                f"tag {df['tag'].iloc[first]!r} has two samples at {df['time_utc'].iloc[first]}; "
                "nothing written"
            )
        return {"t_us": t_us, "tag": tag, "value": value, "quality": code, "reason": reason}


def _flag_bad(raw: np.ndarray, code: np.ndarray, reason: np.ndarray) -> np.ndarray:
    """Mark NaN/inf/missing values bad (in place) with a reason; return values, None when bad.

    A value flagged bad at the source is not stored as a number either: its raw value goes
    into the reason, so nothing is lost and no suspect number sits in the value column.
    """
    finite = np.isfinite(raw)
    for i in np.flatnonzero(~finite):
        why = "missing value" if np.isnan(raw[i]) else f"non-finite value ({raw[i]})"
        reason[i] = why if reason[i] is None else f"{reason[i]}; {why}"
    for i in np.flatnonzero(finite & (code == _BAD)):
        why = f"flagged bad at source; raw value {float(raw[i])!r}"
        reason[i] = why if reason[i] is None else f"{reason[i]}; {why}"
    code[~finite] = _BAD
    value = raw.astype(object)
    value[code == _BAD] = None
    return value


def _time_range(where: list[Any], start: datetime | None, end: datetime | None) -> list[Any]:
    """Add inclusive ``start``/``end`` bounds on the sample time to a list of conditions."""
    if start is not None:
        where = [*where, s.sample.c.t_us >= to_us(start, "start")]
    if end is not None:
        where = [*where, s.sample.c.t_us <= to_us(end, "end")]
    return where


def _fetch(conn: Connection, q: Any) -> list[tuple[Any, ...]]:
    """Run ``q`` and return the driver's plain tuples (only for columns with no result
    processing: numbers, text); 3x faster than building Row objects for large reads."""
    return list(conn.execute(q).cursor.fetchall())


def _quality(codes: Sequence[int] | np.ndarray) -> pd.Categorical:
    return pd.Categorical.from_codes(
        np.asarray(codes, dtype=np.int8), categories=list(QUALITY_NAMES)
    )
