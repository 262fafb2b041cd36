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
    print(f"machine: {platform.node()} {platform.machine()} {platform.processor() or ''}".strip())
    print(f"python {platform.python_version()}, numpy {np.__version__}")
    for f in files:
        print(f"\n=== {f.stem} ===", flush=True)
        runpy.run_path(str(f), run_name="__main__")


if __name__ == "__main__":
    main()
