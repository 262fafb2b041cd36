"""The compiled marker flooding against scikit-image's watershed, bands, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from biopilot.imaging.flood import flood_levels


def _relief(seed: int, shape: tuple[int, int] = (300, 260)) -> tuple[np.ndarray, ...]:
    """A smooth random relief, markers in its basins, and a mask with holes."""
    rng = np.random.default_rng(seed)
    height = ndi.gaussian_filter(rng.normal(size=shape), 6).astype(np.float32)
    minima = (height == ndi.minimum_filter(height, 9)) & (height < np.median(height))
    markers, _ = ndi.label(ndi.binary_dilation(minima))
    mask = ndi.gaussian_filter(rng.normal(size=shape), 4) < 0.06
    return height, markers.astype(np.int32), mask


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_flooding_matches_the_skimage_watershed(seed: int) -> None:
    height, markers, mask = _relief(seed)
    ours = flood_levels(height, markers, mask)
    ref = watershed(height, markers, mask=mask)
    assert np.array_equal(ours > 0, ref > 0)  # the same pixels are reached
    assert np.mean(ours[mask] == ref[mask]) >= 0.995  # quantisation and ties only
    assert set(np.unique(ours[mask])) == set(np.unique(ref[mask]))


def test_two_basins_split_at_the_ridge() -> None:
    x = np.arange(60, dtype=np.float32)
    height = np.tile(-np.abs(np.sin(x / 59 * 2 * np.pi)), (20, 1))  # ridge at x = 0, 29.5, 59
    markers = np.zeros((20, 60), np.int32)
    markers[10, 15], markers[10, 44] = 1, 2
    out = flood_levels(height, markers, np.ones((20, 60), bool))
    assert (out[:, :29] == 1).all() and (out[:, 31:] == 2).all()


def test_bands_in_threads_equal_one_pass() -> None:
    height, markers, mask = _relief(3, (400, 200))
    one = flood_levels(height, markers, mask)
    banded = flood_levels(height, markers, mask, workers=2, seam_px=60)
    assert np.mean(one == banded) >= 0.999


def test_bad_input_is_refused() -> None:
    height, markers, mask = _relief(0, (32, 32))
    with pytest.raises(ValueError, match="one shape"):
        flood_levels(height, markers[:-1], mask)
    with pytest.raises(ValueError, match="n_levels"):
        flood_levels(height, markers, mask, n_levels=1)
    empty = flood_levels(height, markers, np.zeros_like(mask))
    assert not empty.any()
