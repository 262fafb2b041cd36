"""The twin's growing culture: frames every few hours on a logistic confluence curve."""

from __future__ import annotations

import pytest

from biopilot.twin.incubator import OpticalSetup, SceneSpec
from biopilot.twin.incubator_culture import culture_confluence, culture_timelapse

OPTICS = OpticalSetup(wavelength_nm=488.0, pixel_um=1.12, z_mm=1.0, shape_px=(256, 256))


def test_confluence_doubles_while_sparse_and_levels_off_at_the_capacity():
    assert culture_confluence(0.0, 0.01, 20.0) == pytest.approx(0.01)
    assert culture_confluence(20.0, 0.001, 20.0) == pytest.approx(0.002, rel=0.01)
    assert culture_confluence(2000.0, 0.05, 20.0, 0.6) == pytest.approx(0.6)


def test_timelapse_frames_follow_the_curve_and_hold_more_cells_as_it_grows():
    scene = SceneSpec(scenario="adherent", confluence=0.1)
    frames = list(culture_timelapse(OPTICS, scene, hours=48.0, every_h=16.0, doubling_h=20.0))
    assert [t for t, _ in frames] == [0.0, 16.0, 32.0, 48.0]
    for t, f in frames:
        assert f.confluence == pytest.approx(culture_confluence(t, 0.1, 20.0), abs=0.02)
        assert f.name == f"culture_t{t:05.1f}h"
    counts = [len(f.cells) for _, f in frames]
    assert counts[-1] > 2 * counts[0]


@pytest.mark.parametrize(
    ("kw", "start", "match"),
    [
        ({"every_h": 0.0}, 0.1, "every_h and doubling_h must be > 0"),
        ({"capacity": 0.9}, 0.1, "capacity must be in"),
        ({"capacity": 0.5}, 0.6, "must start between 0 and the capacity"),
        ({}, 0.0, "must start between 0"),
    ],
)
def test_bad_timelapse_settings_are_named(kw, start, match):
    with pytest.raises(ValueError, match=match):
        next(culture_timelapse(OPTICS, SceneSpec(confluence=start), **kw))
