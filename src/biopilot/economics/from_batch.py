"""Yields measured in the historian: the harvest titer and volume of a real batch.

Reads tags ``titer_g_per_l`` (at-line) and ``volume_l`` of one batch through
``biopilot.store.Historian`` and puts them into a process cost model in place of the assumed
values (and of their distributions: a measured value is no longer drawn).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from biopilot.config import ConfigError

from .model import ProcessCostModel

__all__ = ["TITER_TAG", "VOLUME_TAG", "MeasuredYields", "apply_measured", "read_yields"]

TITER_TAG = "titer_g_per_l"
VOLUME_TAG = "volume_l"


@dataclass(frozen=True)
class MeasuredYields:
    """Harvest titer and volume of one batch: the last good sample of each tag (UTC times)."""

    batch: str
    titer_g_per_l: float
    harvest_volume_l: float
    titer_time_utc: datetime
    volume_time_utc: datetime


def read_yields(db: str | Path, batch: str | int) -> MeasuredYields:
    """Read the harvest titer and volume of ``batch`` from the historian at ``db``.

    Parameters
    ----------
    db
        A SQLAlchemy URL, or the path of an existing SQLite file (``line.db``).
    batch
        Batch code, or numeric id (tried as a code first, then as an id).

    Returns
    -------
    MeasuredYields
        The last good-quality sample (latest time) of ``titer_g_per_l`` and of ``volume_l``.

    Raises
    ------
    ConfigError
        If the database or the batch does not exist, or a tag is missing or has no good
        sample; the message names what is missing.
    """
    from biopilot.store import Historian, StoreError

    url = str(db)
    if "://" not in url and not Path(url).is_file():
        # Historian() would create an empty store: refuse a mistyped path instead.
        raise ConfigError(f"--db {url}: no such database file")
    with Historian(url) as historian:
        info = None
        for key in _keys(batch):
            try:
                info = historian.batch(key)
                break
            except StoreError:
                continue
        if info is None:
            raise ConfigError(f"--from-batch {batch}: no batch with this code or id in {db}")
        found = []
        for tag in (TITER_TAG, VOLUME_TAG):
            try:
                frame = historian.read_tag(info.id, tag)
            except StoreError as err:
                raise ConfigError(f"batch {info.code} in {db}: {err}") from None
            found.append(_last_good(frame, info.code, tag, db))
    (titer, t_titer), (volume, t_volume) = found
    return MeasuredYields(info.code, titer, volume, t_titer, t_volume)


def apply_measured(model: ProcessCostModel, measured: MeasuredYields) -> ProcessCostModel:
    """A copy of ``model`` with the measured titer and volume, their distributions removed.

    Raises
    ------
    ConfigError
        If a measured value is not positive.
    """
    for name, value in (("titer", measured.titer_g_per_l), ("volume", measured.harvest_volume_l)):
        if not value > 0:
            raise ConfigError(f"batch {measured.batch}: measured {name} must be > 0 (got {value})")
    data = model.model_dump()
    data["yields"].update(
        titer_g_per_l=measured.titer_g_per_l, harvest_volume_l=measured.harvest_volume_l
    )
    for key in ("yields.titer_g_per_l", "yields.harvest_volume_l"):
        data["uncertain"].pop(key, None)
    return ProcessCostModel.model_validate(data)


def _keys(batch: str | int) -> list[str | int]:
    """Ways to look ``batch`` up: as given, and as an integer id when it is all digits."""
    keys: list[str | int] = [batch]
    if isinstance(batch, str) and batch.isdigit():
        keys.append(int(batch))
    return keys


def _last_good(frame: Any, batch: str, tag: str, db: str | Path) -> tuple[float, datetime]:
    if len(frame) == 0:
        raise ConfigError(f"batch {batch} in {db}: no samples of tag {tag!r}")
    good = frame[[_is_good(q) for q in frame["quality"]]]
    if len(good) == 0:
        raise ConfigError(f"batch {batch} in {db}: tag {tag!r} has no good-quality sample")
    good = good.sort_index()
    value = float(good["value"].iloc[-1])
    if not np.isfinite(value):
        raise ConfigError(f"batch {batch} in {db}: last good {tag!r} is not a number")
    return value, good.index[-1].to_pydatetime()


def _is_good(quality: object) -> bool:
    """The store's quality category 'good' (not 'uncertain', not 'bad')."""
    return str(quality) == "good"
