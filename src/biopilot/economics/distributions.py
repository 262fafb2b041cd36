"""Probability distributions of uncertain cost inputs, stated in YAML and sampled as arrays."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, model_validator
from scipy.special import ndtri

from biopilot.config import StrictModel

__all__ = ["Distribution", "Lognormal", "Triangular", "Uniform"]

# Probabilities are clipped away from 0 and 1 so that unbounded distributions stay finite.
_EPS = 1e-12


class Triangular(StrictModel):
    """Triangular distribution on ``[low, high]`` with its peak at ``mode``."""

    dist: Literal["triangular"]
    low: float
    mode: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Triangular:
        if not self.low <= self.mode <= self.high or self.low == self.high:
            got = f"{self.low}, {self.mode}, {self.high}"
            raise ValueError(f"needs low <= mode <= high and low < high (got {got})")
        return self

    def ppf(self, u: NDArray[np.float64]) -> NDArray[np.float64]:
        """Quantile function: the value below which a fraction ``u`` of draws falls."""
        a, c, b = self.low, self.mode, self.high
        fc = (c - a) / (b - a)
        left = a + np.sqrt(u * (b - a) * (c - a))
        right = b - np.sqrt((1.0 - u) * (b - a) * (b - c))
        return np.where(u < fc, left, right)

    @property
    def bounds(self) -> tuple[float, float]:
        """Smallest and largest value a draw can take."""
        return self.low, self.high


class Uniform(StrictModel):
    """Uniform distribution on ``[low, high]``."""

    dist: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if not self.low < self.high:
            raise ValueError(f"needs low < high (got {self.low}, {self.high})")
        return self

    def ppf(self, u: NDArray[np.float64]) -> NDArray[np.float64]:
        """Quantile function: the value below which a fraction ``u`` of draws falls."""
        return self.low + u * (self.high - self.low)

    @property
    def bounds(self) -> tuple[float, float]:
        """Smallest and largest value a draw can take."""
        return self.low, self.high


class Lognormal(StrictModel):
    """Lognormal distribution given by its median and geometric standard deviation (> 1)."""

    dist: Literal["lognormal"]
    median: float = Field(gt=0)
    gsd: float = Field(gt=1, description="geometric standard deviation, e.g. 1.2 for ~20 %")

    def ppf(self, u: NDArray[np.float64]) -> NDArray[np.float64]:
        """Quantile function: the value below which a fraction ``u`` of draws falls."""
        z = ndtri(np.clip(u, _EPS, 1.0 - _EPS))
        return np.asarray(self.median * np.exp(np.log(self.gsd) * z), dtype=np.float64)

    @property
    def bounds(self) -> tuple[float, float]:
        """The 0.1 % and 99.9 % quantiles (a lognormal has no finite upper bound)."""
        lo, hi = self.ppf(np.array([1e-3, 1.0 - 1e-3]))
        return float(lo), float(hi)


Distribution = Annotated[Triangular | Uniform | Lognormal, Field(discriminator="dist")]
