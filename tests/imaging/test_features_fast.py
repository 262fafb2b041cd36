"""measure_cells against a plain per-cell reference (loops, regionprops, ndi) on random labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage import draw, measure

from biopilot.imaging.crops import gather_crops
from biopilot.imaging.features import REFRACTION_INCREMENT_UM3_PER_PG, measure_cells
from biopilot.imaging.label_stats import crack_counts, grown_sums

PIXEL_UM, WAVELENGTH_UM, BACKGROUND_RAD = 0.7, 0.532, 0.1


def _random_scene(seed: int, shape: tuple[int, int] = (72, 96)) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping ellipses (so cells touch), some cut by the border, ids with gaps."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.int32)
    for k in range(1, 25):
        r, c = rng.uniform(-3, shape[0] + 3), rng.uniform(-3, shape[1] + 3)
        rr, cc = draw.ellipse(
            r, c, rng.uniform(1, 9), rng.uniform(1, 12), shape=shape, rotation=rng.uniform(0, 3)
        )
        labels[rr, cc] = 3 * k + 2  # ids 5, 8, 11, ...: gaps, and 1..4 unused
    labels[0, 10:15] = 200  # a one-row cell on the border, far above the other ids
    labels[40, 3] = 7  # a one-pixel cell (absent ids around it)
    phase = rng.normal(BACKGROUND_RAD, 0.05, shape) + 1.5 * (labels > 0) * rng.random(shape)
    return phase.astype(np.float32), labels


def _hull_area_16gon(rows: np.ndarray, cols: np.ndarray) -> float:
    """Area of the 16-gon of support lines around the pixel squares, vertex by vertex."""
    angles = 2 * np.pi * np.arange(16) / 16
    normals = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    support = [np.max(cols * c + rows * s) + 0.5 * (abs(c) + abs(s)) for c, s in normals]
    vertices = np.array(
        [
            np.linalg.solve(normals[[k, (k + 1) % 16]], [support[k], support[(k + 1) % 16]])
            for k in range(16)
        ]
    )
    x, y = vertices[:, 0], vertices[:, 1]
    return 0.5 * abs(float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)))


def _reference(phase: np.ndarray, labels: np.ndarray, margin: int = 2) -> dict[str, np.ndarray]:
    """The feature table computed cell by cell, the slow and obvious way."""
    phi = (phase - np.float32(BACKGROUND_RAD)).astype(np.float64)  # as measure_cells: in float32
    grown = labels.copy()
    for _ in range(margin):
        grown = np.where(grown == 0, ndi.grey_dilation(grown, size=(3, 3)), grown)
    gy, gx = np.gradient(phase - np.float32(BACKGROUND_RAD), PIXEL_UM)
    grad2 = (gx * gx + gy * gy).astype(np.float64)
    padded = np.pad(labels, 1, constant_values=-1)
    props = {p.label: p for p in measure.regionprops(labels)}
    out: dict[str, list[float]] = {}
    for lab in sorted(props):
        mask = labels == lab
        rows, cols = np.nonzero(mask)
        inner = padded[1:-1, 1:-1] == lab
        cracks = sum(
            int(np.sum(inner & (np.roll(padded, shift, axis)[1:-1, 1:-1] != lab)))
            for shift, axis in ((1, 0), (-1, 0), (1, 1), (-1, 1))
        )
        p = props[lab]
        ov = WAVELENGTH_UM / (2 * math.pi) * phi[grown == lab].sum() * PIXEL_UM**2
        row = {
            "label": lab,
            "row_px": p.centroid[0],
            "col_px": p.centroid[1],
            "area_um2": mask.sum() * PIXEL_UM**2,
            "optical_volume_um3": ov,
            "dry_mass_pg": ov / REFRACTION_INCREMENT_UM3_PER_PG,
            "phase_mean_rad": phi[mask].mean(),
            "phase_max_rad": phi[mask].max(),
            "phase_std_rad": phi[mask].std(),
            "major_axis_um": p.axis_major_length * PIXEL_UM,
            "minor_axis_um": p.axis_minor_length * PIXEL_UM,
            "eccentricity": p.eccentricity,
            "perimeter_um": cracks * math.pi / 4 * PIXEL_UM,
            "solidity": min(mask.sum() / _hull_area_16gon(rows, cols), 1.0),
            "gradient_energy_rad2_per_um2": grad2[mask].mean(),
            "touches_border": bool(
                mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()
            ),
        }
        for key, value in row.items():
            out.setdefault(key, []).append(value)
    return {k: np.array(v) for k, v in out.items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_measure_cells_matches_per_cell_reference(seed):
    phase, labels = _random_scene(seed)
    t = measure_cells(
        phase, labels, pixel_um=PIXEL_UM, wavelength_um=WAVELENGTH_UM, background_rad=BACKGROUND_RAD
    )
    a, b = labels[:, :-1], labels[:, 1:]
    assert np.any((a > 0) & (b > 0) & (a != b)), "the scene should have touching cells"
    ref = _reference(phase, labels)
    assert t.label.tolist() == ref["label"].tolist()
    assert t.touches_border.dtype == bool and t.touches_border.any()
    np.testing.assert_array_equal(t.touches_border, ref["touches_border"])
    np.testing.assert_array_equal(t.phase_max_rad, ref["phase_max_rad"])
    np.testing.assert_array_equal(t.area_um2, ref["area_um2"])
    np.testing.assert_array_equal(t.perimeter_um, ref["perimeter_um"])
    to_rounding = [
        "row_px",
        "col_px",
        "optical_volume_um3",
        "dry_mass_pg",
        "phase_mean_rad",
        "phase_std_rad",
        "major_axis_um",
        "minor_axis_um",
        "eccentricity",
        "solidity",
        "gradient_energy_rad2_per_um2",
    ]
    for col in to_rounding:
        np.testing.assert_allclose(t[col], ref[col], rtol=1e-9, atol=1e-9, err_msg=col)


def test_large_label_ids_give_the_same_table():
    phase, labels = _random_scene(3)
    kw = dict(pixel_um=PIXEL_UM, wavelength_um=WAVELENGTH_UM, background_rad=BACKGROUND_RAD)
    small = measure_cells(phase, labels, **kw)
    big = measure_cells(phase, np.where(labels > 0, labels + 70_000, 0), **kw)
    np.testing.assert_array_equal(big.label, small.label + 70_000)
    cols = [c for c in small.columns if c != "label"]
    np.testing.assert_allclose(big[cols].to_numpy(float), small[cols].to_numpy(float), rtol=1e-12)


def test_empty_and_full_frames():
    kw = dict(pixel_um=1.0, wavelength_um=0.5, background_rad=0.0)
    empty = measure_cells(np.ones((8, 9)), np.zeros((8, 9), int), **kw)
    assert len(empty) == 0
    full = measure_cells(np.ones((8, 9)), np.full((8, 9), 4), **kw)
    assert full.label.tolist() == [4] and full.area_um2[0] == 72.0
    assert full.row_px[0] == 3.5 and full.col_px[0] == 4.0 and bool(full.touches_border[0])
    assert full.perimeter_um[0] == pytest.approx(34 * math.pi / 4)


@pytest.mark.parametrize("seed", [0, 4])
@pytest.mark.parametrize("margin", [1, 2, 3])
def test_grown_sums_equal_iterated_grey_dilation(seed, margin):
    phase, labels = _random_scene(seed)
    grown, window = labels.copy(), labels
    for _ in range(margin):  # the NumPy formulation measure_cells used before (session 5)
        window = ndi.grey_dilation(window, size=(3, 3))
        np.copyto(grown, window, where=grown == 0)
    gained = grown != labels
    want = np.bincount(grown[gained], phase[gained].astype(np.float64), 201)
    np.testing.assert_allclose(grown_sums(phase, labels, margin, 201), want, rtol=1e-12)


@pytest.mark.parametrize("shape", [(72, 96), (1, 7), (300, 5)])
def test_crack_counts_equal_the_pixel_edge_count(shape):
    labels = np.random.default_rng(5).integers(0, 4, shape)
    padded = np.pad(labels, 1, constant_values=-1)
    want = np.zeros(4)
    for lab in range(4):
        inner = padded[1:-1, 1:-1] == lab
        for shift in (1, -1):  # edges to the row above / below, frame edges included
            want[lab] += np.sum(inner & (np.roll(padded, shift, 0)[1:-1, 1:-1] != lab))
    np.testing.assert_array_equal(crack_counts(labels, 4), want)


def test_crops_equal_a_plain_gather_and_are_zero_outside_the_image():
    phase, labels = _random_scene(3)
    rng = np.random.default_rng(3)
    rows = np.rint(rng.uniform(-5, 77, (40, 1)) + np.arange(-4, 5)[None] * 1.3).astype(np.int64)
    cols = np.rint(rng.uniform(-5, 101, (40, 1)) + np.arange(-4, 5)[None] * 1.3).astype(np.int64)
    own = rng.integers(0, 80, 40)
    out = gather_crops(phase, labels, rows, cols, own, background=0.1, scale=3.0)
    h, w = phase.shape
    for i in range(40):
        for a in range(9):
            for b in range(9):
                y, x = rows[i, a], cols[i, b]
                inside = 0 <= y < h and 0 <= x < w
                want = (phase[y, x] - np.float32(0.1)) / np.float32(3.0) if inside else 0.0
                assert out[i, 0, a, b] == np.float32(want)
                assert out[i, 1, a, b] == float(inside and labels[y, x] == own[i])
