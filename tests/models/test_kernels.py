"""The compiled transfer function and the row bands it is filled in."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from biopilot.models.bands import in_bands, in_threads
from biopilot.models.kernels import fill_kernel
from biopilot.models.optics import _axial_frequency


@pytest.mark.parametrize("shape", [(64, 64), (65, 33), (300, 257)])
@pytest.mark.parametrize("z_mm", [0.5, 2.97, -1.3])
def test_kernel_equals_the_double_precision_formula(shape, z_mm):
    ny, nx = shape
    ax = _axial_frequency(shape, 0.405, 1.12, 1.335)
    fy = np.fft.fftfreq(ny, 1.12)[:, None]
    fx = np.fft.fftfreq(nx, 1.12)[None, :]
    arg = (1.335 / 0.405) ** 2 - fx**2 - fy**2
    ref = np.where(arg > 0, np.exp(2j * np.pi * z_mm * 1e3 * np.sqrt(np.maximum(arg, 0))), 0)
    full = fill_kernel(ax.k2, ax.fy2, ax.fx2, z_mm * 1e3, nx)
    assert full.dtype == np.complex64 and full.shape == shape
    np.testing.assert_allclose(full, ref, atol=2e-6)  # float32 sin/cos of a reduced phase
    half = fill_kernel(ax.k2, ax.fy2, ax.fx2, z_mm * 1e3, nx, half=True)
    np.testing.assert_array_equal(half, full[:, : nx // 2 + 1])


def test_kernel_refuses_a_half_plane_of_another_grid():
    ax = _axial_frequency((32, 32), 0.5, 1.0, 1.0)
    with pytest.raises(ValueError, match="columns"):
        fill_kernel(ax.k2, ax.fy2, ax.fx2, 100.0, 40)


@pytest.mark.parametrize("rows, workers", [(10, 4), (1000, 1), (1000, 3), (130, 8)])
def test_bands_cover_every_row_once_in_order(rows, workers):
    seen = in_bands(lambda lo, hi: (lo, hi), rows, workers)
    assert seen[0][0] == 0 and seen[-1][1] == rows
    assert all(a[1] == b[0] for a, b in itertools.pairwise(seen))
    assert len(seen) == max(1, min(workers, rows // 64))


def test_threads_return_results_in_the_items_order():
    assert in_threads(lambda v: v * v, [3, 1, 2]) == [9, 1, 4]
    assert in_threads(str, [7]) == ["7"]
