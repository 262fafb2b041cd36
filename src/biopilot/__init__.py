"""biopilot: pilots biomanufacturing lines in real time."""

import os

__version__ = "0.1.0"

# OpenMP threads (torch's, MKL's) sleep when idle instead of spinning for a while: the
# imaging pipeline alternates torch operations with compiled loops run in Python threads,
# which the spinning threads starved (a 4K frame 3.85 -> 3.35 s on 2 cores, side by side;
# benchmarks/RESULTS.md, session 6). Read by OpenMP when torch loads, so set before any
# import of torch; a value already in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
