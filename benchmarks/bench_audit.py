"""Benchmark the audit trail: append rate (one transaction per entry) and offline verify rate.

An SQLite file in a temporary folder (WAL, synchronous NORMAL, the store's defaults); each
append is its own transaction, as a user action is. Verify re-hashes every entry (RFC 8785
canonical JSON + SHA-256) and checks one signed checkpoint.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _util import median_time, print_table
from biopilot.store import Historian
from biopilot.store.audit import AuditTrail
from biopilot.store.checkpoints import CheckpointStore

SIZES = (1_000, 10_000)


def main() -> None:
    """Print append and verify rates for chains of each size in SIZES."""
    rows = []
    for n in SIZES:
        with tempfile.TemporaryDirectory() as tmp:
            trail = AuditTrail(Historian(Path(tmp) / "line.db"))
            t0 = time.perf_counter()
            for i in range(n):
                trail.record(
                    "op1",
                    "setpoint_change",
                    "unit",
                    "BR-01",
                    reason=f"step {i}",
                    old={"temperature_degc": 36.5, "i": i},
                    new={"temperature_degc": 37.0, "i": i + 1},
                )
            append_s = time.perf_counter() - t0
            store = CheckpointStore(Path(tmp) / "cp")
            store.checkpoint(trail)
            checkpoints = store.read()
            verify_s = median_time(lambda t=trail, c=checkpoints: t.verify(c), repeat=3)
            assert trail.verify(checkpoints).ok
            trail.engine.dispose()
        rows.append(
            {
                "entries": n,
                "append (entries/s)": n / append_s,
                "verify (entries/s)": n / verify_s,
                "verify (s)": verify_s,
            }
        )
    print_table(rows)


if __name__ == "__main__":
    main()
