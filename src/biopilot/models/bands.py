"""Row bands of an image worked on in threads by compiled loops that release the GIL."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["default_workers", "in_bands", "in_threads"]

T = TypeVar("T")
A = TypeVar("A")
_MIN_ROWS = 64  # fewer rows per band are not worth a thread


def default_workers() -> int:
    """Threads for band-parallel loops: the CPUs this process may use, at most 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def in_bands(
    work: Callable[[int, int], T], n_rows: int, workers: int | None = None
) -> list[T]:
    """``work(lo, hi)`` over contiguous row bands covering ``range(n_rows)``, in threads.

    ``work`` must be thread-safe on disjoint bands (a numba ``nogil`` function writing only
    its own rows); the results come back in band order. One band, and no thread, for small
    images or ``workers=1``.
    """
    n = max(1, min(workers or default_workers(), n_rows // _MIN_ROWS))
    cuts = [n_rows * i // n for i in range(n + 1)]
    return in_threads(lambda band: work(*band), list(itertools.pairwise(cuts)))


def in_threads(work: Callable[[A], T], items: Sequence[A]) -> list[T]:
    """``work(item)`` for each item, one thread each (none for a single item), in order."""
    if len(items) == 1:
        return [work(items[0])]
    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(work, items))
