"""The hologram as referee: a phase map that explains its hologram, and ones that do not."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from biopilot.imaging.agreement import hologram_agreement
from biopilot.imaging.recon_input import normalize_illumination
from biopilot.twin.incubator import OpticalSetup, SceneSpec, simulate_frame


@pytest.fixture(scope="module")
def frame():
    optics = OpticalSetup(wavelength_nm=532, pixel_um=1.4, z_mm=1.5, shape_px=(384, 384))
    scene = SceneSpec(scenario="adherent", confluence=0.4, tilt_mrad=(4.0, -3.0))
    return simulate_frame(optics, scene, rng=5)


def _agree(f, phase, *, z=None, tilt=None):
    o = f.optics
    return hologram_agreement(
        phase, normalize_illumination(f.hologram)[0], f.z_mm if z is None else z,
        wavelength_um=o.wavelength_um, pixel_um=o.pixel_um, n_medium=o.n_medium,
        tilt_mrad=f.scene.tilt_mrad if tilt is None else tilt)


def test_the_true_phase_explains_its_hologram_and_wrong_ones_do_not(frame):
    truth = _agree(frame, frame.phase_rad)
    assert truth > 0.85
    assert _agree(frame, np.zeros_like(frame.phase_rad)) == pytest.approx(0.0)
    # What a failed reconstruction looks like: cells blurred, or at half their phase.
    assert _agree(frame, ndi.gaussian_filter(frame.phase_rad, 3.0)) < truth - 0.3
    assert _agree(frame, 0.5 * frame.phase_rad) < truth - 0.2
    # The geometry counts: a distance 100 um off, or the illumination's tilt forgotten.
    assert _agree(frame, frame.phase_rad, z=frame.z_mm + 0.1) < truth - 0.3
    assert _agree(frame, frame.phase_rad, tilt=(0.0, 0.0)) < 0.5


def test_bad_maps_are_refused(frame):
    with pytest.raises(ValueError, match="one 2-D shape"):
        _agree(frame, frame.phase_rad[:-1])
    bad = frame.phase_rad.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        _agree(frame, bad)


def test_a_large_frame_is_scored_on_tiles_like_the_whole_field(monkeypatch):
    import biopilot.imaging.agreement as agreement

    optics = OpticalSetup(wavelength_nm=450, pixel_um=1.12, z_mm=1.0, shape_px=(960, 1100))
    big = simulate_frame(optics, SceneSpec(scenario="stem_cell", confluence=0.5), rng=8)
    blurred = ndi.gaussian_filter(big.phase_rad, 2.0)
    tiled = [_agree(big, p) for p in (big.phase_rad, blurred)]
    monkeypatch.setattr(agreement, "_TILE_PX", 10_000)  # the whole field at once
    whole = [_agree(big, p) for p in (big.phase_rad, blurred)]
    assert tiled[0] > 0.9 and tiled[1] < tiled[0] - 0.3
    assert tiled == pytest.approx(whole, abs=0.1)  # one central tile of 384 px here
