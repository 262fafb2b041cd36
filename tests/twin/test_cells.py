"""Tests of the cell phantoms: sizes, indices, dry mass, thick cells, division, pressing."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from biopilot.twin.cells import (
    REFRACTION_INCREMENT_UM3_PER_PG,
    STATES,
    CellParams,
    dry_mass_pg,
    sample_cells,
    sample_debris,
)
from biopilot.twin.incubator_render import footprint_coverage, render_cells

LAM = 0.532  # um


def _one(state: str, seed: int = 0, **fields: float) -> CellParams:
    """A single cell of ``state``, with some fields set."""
    cell = sample_cells(np.array([STATES.index(state)]), np.random.default_rng(seed))
    return replace(cell, **{k: np.array([v]) for k, v in fields.items()})


def _rendered_mass(cell: CellParams, pixel_um: float, size: int) -> float:
    phase, labels = render_cells(cell, (size, size), pixel_um=pixel_um, wavelength_um=LAM)
    return float(dry_mass_pg(phase[labels > 0].sum() * pixel_um**2, LAM))


def test_sphere_dry_mass_equals_density_times_volume() -> None:
    cell = _one("live_round", a_um=6.0, b_um=6.0, height_um=12.0, nuc_height_um=0.0,
                x_um=20.0, y_um=20.0)
    expected = cell.dn_body[0] / REFRACTION_INCREMENT_UM3_PER_PG * 4 / 3 * np.pi * 6.0**3
    assert _rendered_mass(cell, 0.25, 160) == pytest.approx(expected, rel=0.01)


def test_states_have_literature_sizes_and_indices() -> None:
    rng = np.random.default_rng(1)
    states = np.repeat(np.arange(len(STATES)), 300)
    cells = sample_cells(states, rng, n_medium=1.335)
    n_cell = 1.335 + cells.dn_body
    d = 2.0 * np.sqrt(cells.a_um * cells.b_um)
    live_round = cells.state == STATES.index("live_round")
    assert d[live_round].min() >= 8.0 and d[live_round].max() <= 20.0
    alive = cells.state != STATES.index("dead")
    assert n_cell[alive].min() >= 1.36 and n_cell[alive].max() <= 1.40
    dead = ~alive
    # dead: shrunken and less dense than the live round cells, and blebbed
    assert np.median(d[dead]) < np.median(d[live_round])
    assert n_cell[dead].max() < n_cell[live_round].min()
    assert (cells.bleb_r_um[dead] > 0).sum(axis=1).min() >= 2
    diff = cells.state == STATES.index("differentiated")
    undiff = cells.state == STATES.index("undifferentiated")
    assert np.median(2 * cells.a_um[diff]) > 3 * np.median(d[undiff])  # large vs compact
    assert np.median(cells.a_um[diff] / cells.b_um[diff]) > 2.0  # elongated
    assert np.median(cells.height_um[diff]) < np.median(cells.height_um[undiff])  # flat


def test_thick_cells_exceed_two_pi_at_650_nm() -> None:
    cells = sample_cells(np.zeros(50, np.int8), np.random.default_rng(2),
                         thick=np.ones(50, bool))
    peak = 2 * np.pi / 0.65 * cells.dn_body * cells.height_um
    assert peak.min() > 2 * np.pi


def test_spreading_conserves_dry_mass() -> None:
    cell = _one("live_spread", seed=3, x_um=60.0, y_um=60.0)
    before = _rendered_mass(cell, 0.5, 240)
    after = _rendered_mass(cell.scaled(1.3), 0.5, 240)
    assert after == pytest.approx(before, rel=0.02)


def test_dividing_cell_has_two_lobes() -> None:
    cell = _one("dividing", seed=4, theta=0.0, x_um=30.0, y_um=30.0)
    phase, labels = render_cells(cell, (120, 120), pixel_um=0.5, wavelength_um=LAM)
    row = phase[60]  # along the division axis through the centre
    assert labels.max() == 1
    assert row[60] < 0.97 * row.max()  # a waist between the lobes
    left, right = row[:60].argmax(), 60 + row[60:].argmax()
    assert right - left > 10  # two maxima > 5 um apart


def test_pressed_cells_split_pixels_and_meet_in_a_valley() -> None:
    two = CellParams.concat([_one("live_round", seed=5), _one("live_round", seed=6)])
    two = replace(two, a_um=np.full(2, 6.0), b_um=np.full(2, 6.0), height_um=np.full(2, 12.0),
                  x_um=np.array([24.0, 34.0]), y_um=np.array([30.0, 30.0]))
    phase, labels = render_cells(two, (120, 120), pixel_um=0.5, wavelength_um=LAM)
    assert set(np.unique(labels)) == {0, 1, 2}
    row = phase[60]
    border = int(np.flatnonzero(labels[60] == 2)[0])
    assert row[border] < 0.3 * row.max()  # thin valley where they press
    alone = sum(
        render_cells(two.take(np.array([i])), (120, 120), pixel_um=0.5, wavelength_um=LAM)[0]
        for i in (0, 1)
    )
    assert phase.max() < alone.max() + 1e-6  # no stacking of phase where they overlap
    assert phase.sum() < alone.sum()


def test_footprint_coverage_matches_rendered_labels() -> None:
    cells = sample_cells(np.zeros(40, np.int8), np.random.default_rng(7))
    rng = np.random.default_rng(8)
    cells = replace(cells, x_um=rng.uniform(15, 185, 40), y_um=rng.uniform(15, 185, 40))
    _, labels = render_cells(cells, (200, 200), pixel_um=1.0, wavelength_um=LAM)
    cov = footprint_coverage(cells, (200, 200), pixel_um=1.0)
    assert cov == pytest.approx(float((labels > 0).mean()), abs=1e-9)


def test_debris_is_small_and_irregular() -> None:
    debris = sample_debris(200, np.random.default_rng(9))
    d_eq = 2.0 * np.sqrt(debris.a_um * debris.b_um)
    assert d_eq.max() <= 6.0 and (debris.state == -1).all()
    assert np.abs(debris.harm).max(axis=(1, 2)).mean() > 0.05


def test_patches_contain_whole_cells_of_every_state(monkeypatch: pytest.MonkeyPatch) -> None:
    states = np.repeat(np.arange(len(STATES)), 15)
    cells = sample_cells(states, np.random.default_rng(10))
    cells = replace(cells, x_um=np.full(states.size, 150.0), y_um=np.full(states.size, 150.0))
    areas = [
        np.count_nonzero(render_cells(cells.take(np.array([i])), (300, 300), pixel_um=1.0,
                                      wavelength_um=LAM)[1])
        for i in range(len(cells))
    ]
    box = CellParams.box_um.fget
    assert box is not None
    monkeypatch.setattr(CellParams, "box_um", property(lambda c: tuple(2 * b for b in box(c))))
    for i, area in enumerate(areas):  # a patch twice as large finds no more pixels
        labels = render_cells(cells.take(np.array([i])), (300, 300), pixel_um=1.0,
                              wavelength_um=LAM)[1]
        assert np.count_nonzero(labels) == area


def test_visible_fraction_counts_pixels_lost_to_neighbours() -> None:
    from biopilot.twin.incubator_render import visible_fraction

    pair = CellParams.concat([_one("live_round", seed=11), _one("live_round", seed=12)])
    pair = replace(pair, a_um=np.full(2, 6.0), b_um=np.full(2, 6.0),
                   x_um=np.array([99.0, 101.0]), y_um=np.array([100.0, 100.0]))
    far = replace(pair, x_um=np.array([60.0, 160.0]))
    assert visible_fraction(far, (200, 200), pixel_um=1.0) == pytest.approx([1.0, 1.0])
    # each keeps its crescent and half of the lens where they overlap (r = 6, d = 2)
    lens = 2 * 36 * np.arccos(2 / 12) - 1 * np.sqrt(4 * 36 - 4)
    expected = 1 - lens / (2 * np.pi * 36)
    assert visible_fraction(pair, (200, 200), pixel_um=1.0) == pytest.approx([expected] * 2,
                                                                              abs=0.05)


def test_stacked_cells_add_their_phases_and_keep_one_label_per_pixel() -> None:
    two = CellParams.concat([_one("live_round", seed=5), _one("live_round", seed=6)])
    two = replace(two, x_um=np.array([24.0, 30.0]), y_um=np.array([30.0, 30.0]))
    stacked, labels = render_cells(two, (120, 120), pixel_um=0.5, wavelength_um=LAM,
                                   overlap="stack")
    alone = [render_cells(two.take(np.array([i])), (120, 120), pixel_um=0.5,
                          wavelength_um=LAM)[0] for i in (0, 1)]
    assert np.allclose(stacked, alone[0] + alone[1], atol=1e-5)
    assert set(np.unique(labels)) == {0, 1, 2}
