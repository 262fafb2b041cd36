"""Shared simulated batches for the twin tests (simulated once per session)."""

from __future__ import annotations

import pytest

from biopilot.twin.bioreactor import simulate_batch
from biopilot.twin.recipe import default_recipe

FAULT_SEED = 5


@pytest.fixture(scope="session")
def platform_batches():
    """Default-recipe batches of three seeds, without Raman."""
    return {seed: simulate_batch(default_recipe(), seed=seed, raman=False) for seed in (1, 2, 3)}


@pytest.fixture(scope="session")
def normal_batch():
    """The fault-free reference batch that each fault test compares against."""
    return simulate_batch(seed=FAULT_SEED, raman=False)
