"""Run every benchmark in this folder and print its table (results go to RESULTS.md by hand)."""

from __future__ import annotations

import platform
import runpy
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    """Run each ``bench_*.py`` in turn, or those named on the command line."""
    here = Path(__file__).parent
    sys.path[:0] = [str(here), str(here.parent)]  # benchmarks import `from _util import ...`
    names = sys.argv[1:]
    files = sorted(here.glob("bench_*.py"))
    if names:
        files = [f for f in files if any(n in f.stem for n in names)]
    from _util import machine

    print(f"machine: {platform.node()}: {machine()}")
    print(f"python {platform.python_version()}, numpy {np.__version__}")
    failed = []
    for f in files:
        print(f"\n=== {f.stem} ===", flush=True)
        sys.argv = [str(f)]  # each benchmark parses its own (default) options
        try:
            runpy.run_path(str(f), run_name="__main__")
        except SystemExit as done:  # a benchmark's main() may exit; the others still run
            if done.code not in (0, None):
                failed.append(f"{f.stem} (exit {done.code})")
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
