"""Fixtures of the economics tests."""

from __future__ import annotations

import pytest
from economics_helpers import build

from biopilot.economics import ProcessCostModel


@pytest.fixture
def model() -> ProcessCostModel:
    """The small two-step process, no uncertainty, no failures."""
    return build()
