"""Benchmark the historian: bulk sample ingest rate and reading one tag of a 14-day batch.

The store holds ~100 batches of 15 tags: the measured batches at 1-min resolution (14 days,
20,160 rows per tag) and filler batches at 15-min resolution, so the sample table has some
2-3 million rows (``--full``: all 100 batches at 1 min, ~30 million rows, ~1.5 GB, minutes).
A B-tree range read grows with log(rows), so the filler's resolution barely matters.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from _util import median_time, print_table
from biopilot.store import Historian

N_TAGS = 15
N_BATCHES = 100
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def batch_frame(minutes_step: int, seed: int, days: int = 14) -> pd.DataFrame:
    """Long samples of N_TAGS tags over ``days`` days every ``minutes_step`` minutes."""
    rng = np.random.default_rng(seed)
    times = pd.date_range(
        T0, T0 + timedelta(days=days), freq=f"{minutes_step}min", inclusive="left"
    )
    return pd.DataFrame(
        {
            "time_utc": np.tile(times, N_TAGS),
            "tag": np.repeat([f"tag_{k:02d}" for k in range(N_TAGS)], len(times)),
            "value": rng.normal(size=len(times) * N_TAGS),
        }
    )


def median_cpu(fn: Callable[[], object], repeat: int) -> float:
    """Median CPU time of ``fn()`` in seconds: what it costs when it has the CPU to itself.

    On a shared machine wall time also counts waiting for a core; both are reported.
    """
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def main(full: bool = False) -> None:
    """Build the store in a temporary folder, time ingest and one-tag reads, print the table."""
    with tempfile.TemporaryDirectory() as tmp:
        h = Historian(Path(tmp) / "bench.db")
        h.ensure_unit("Site", "USP", "BR-01")
        h.ensure_product("mAb")
        counter = iter(range(10**6))

        def new_batch() -> int:
            i = next(counter)
            return h.start_batch(f"B{i:04d}", "BR-01", "mAb", None, T0, {"i": i})

        full_df = batch_frame(1, seed=0)
        n_measured = 7  # 1 warm-up + 3 wall-timed + 3 cpu-timed ingests, all full 1-min batches
        ingest = lambda: h.write_samples(new_batch(), "BR-01", full_df)  # noqa: E731
        ingest_s = median_time(ingest, repeat=3)
        ingest_cpu = median_cpu(ingest, repeat=3)
        filler = full_df if full else batch_frame(15, seed=1)
        for _ in range(N_BATCHES - n_measured):
            h.write_samples(new_batch(), "BR-01", filler)
        target = 2  # a full-resolution batch in the middle of the table
        assert len(h.read_tag(target, "tag_07")) == 20_160
        read = lambda: h.read_tag(target, "tag_07")  # noqa: E731
        read_s = median_time(read, repeat=21, warmup=3)
        read_cpu = median_cpu(read, repeat=21)
        n_rows = sum(b.n_samples for b in h.list_batches())
        h.close()
    rate = len(full_df) / ingest_s
    print(f"store: {N_BATCHES} batches x {N_TAGS} tags, {n_rows:,} samples in the table")
    print(f"load average while measured: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print_table(
        [
            {
                "benchmark": f"bulk ingest ({len(full_df):,} samples, 1 transaction)",
                "target": ">= 100,000 samples/s",
                "measured": f"{rate:,.0f} samples/s",
                "cpu time (own)": f"{len(full_df) / ingest_cpu:,.0f} samples/s",
                "meets": "yes" if rate >= 100_000 else "NO",
            },
            {
                "benchmark": "read one tag of a 14-day 1-min batch (20,160 rows)",
                "target": "<= 50 ms",
                "measured": f"{read_s * 1e3:.1f} ms",
                "cpu time (own)": f"{read_cpu * 1e3:.1f} ms",
                "meets": "yes" if read_s <= 0.050 else "NO",
            },
        ]
    )


if __name__ == "__main__":
    main(full="--full" in sys.argv)
