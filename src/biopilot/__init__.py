"""biopilot: pilots biomanufacturing lines in real time."""

import os

from biopilot._memory import retain_freed_memory

__version__ = "0.1.0"

# OpenMP threads (torch's, MKL's) sleep when idle instead of spinning for a while: the
# imaging pipeline alternates torch operations with compiled loops run in Python threads,
# which the spinning threads starved (a 4K frame 3.85 -> 3.35 s on 2 cores, side by side;
# benchmarks/RESULTS.md, session 6). Read by OpenMP when torch loads, so set before any
# import of torch; a value already in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Freed memory stays in the process for the next frame instead of going back to the kernel
# (and, on VMs with free-page reporting, to the host: 4K frames took twice as long). See
# biopilot._memory; BIOPILOT_RETAIN_MEMORY=0 turns it off.
MEMORY_RETAINED = retain_freed_memory()
