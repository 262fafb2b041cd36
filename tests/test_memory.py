"""Freed memory stays in the process (biopilot._memory): the next frame reuses it, no faults."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Allocates and touches 256 MiB twice; prints whether the setting took and the page faults
# of the second pass (every one of its 65,536 pages faults again when the first was unmapped).
_PROBE = """
import resource
import numpy as np
import biopilot
a = np.ones(2**26, np.float32); del a
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
b = np.ones(2**26, np.float32); del b
print(biopilot.MEMORY_RETAINED, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")


def _probe(env_value: str | None) -> tuple[bool, int]:
    env = {"PATH": "/usr/bin:/bin", "NUMPY_MADVISE_HUGEPAGE": "0"}
    if env_value is not None:
        env["BIOPILOT_RETAIN_MEMORY"] = env_value
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                         text=True, check=True, timeout=120).stdout.split()
    return out[0] == "True", int(out[1])


def test_a_second_large_block_reuses_the_memory_of_the_first_instead_of_faulting_it_in():
    retained, faults = _probe(None)
    assert retained
    assert faults < 2_000  # 65,536 pages: none of them handed back and faulted in again


def test_the_allocator_defaults_stay_when_the_user_opts_out():
    retained, faults = _probe("0")
    assert not retained
    assert faults > 30_000  # glibc unmapped the first block: its pages fault in again
