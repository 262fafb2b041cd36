"""Two wavelengths: thick cells' turns recovered, noise averaged, a disagreeing pair refused."""

from __future__ import annotations

import numpy as np
import pytest

from biopilot.imaging import combine_wavelengths
from biopilot.imaging.pipeline import analyze_frame
from biopilot.twin.incubator import OpticalSetup, SceneSpec, at_wavelength, simulate_frame

L_A, L_B = 0.405, 0.650


def _cell_path(shape=(96, 96), peak_um=1.5):
    """Optical path difference of a dome-shaped thick cell, um (3.7 turns at 405 nm)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    r2 = ((yy - 48) ** 2 + (xx - 48) ** 2) / 30.0**2
    return peak_um * np.sqrt(np.clip(1 - r2, 0, None))


def _phase(path, wavelength, rng, noise, turn_errors=None):
    phase = 2 * np.pi * path / wavelength + rng.normal(0, noise, path.shape)
    if turn_errors is not None:
        phase += 2 * np.pi * turn_errors
    return phase


def test_the_synthetic_wavelength_restores_the_whole_turns_a_fit_kept():
    rng = np.random.default_rng(0)
    path = _cell_path()
    cell = path > 0
    # The first fit one turn low on a ring of the rim and on a patch of the top, as the
    # network's start leaves it on the twin's thick cells.
    r = np.hypot(*np.mgrid[:96, :96] - 48)
    wrong = -((r > 20) & (r < 24)).astype(float) + ((r < 5) & cell)
    a = _phase(path, L_A, rng, 0.03, wrong)
    b = _phase(path, L_B, rng, 0.03)
    out = combine_wavelengths(a, b, cell, wavelength_a_um=L_A, wavelength_b_um=L_B)
    truth = 2 * np.pi * path / L_A
    before = np.sqrt(np.mean((a - truth)[cell] ** 2))
    after = np.sqrt(np.mean((out.phase_rad - truth)[cell] ** 2))
    assert out.combined and out.turns_changed == np.count_nonzero(wrong)
    assert before > 1.0 and after < 0.03  # the turns back, and the two fits' noise averaged
    assert np.array_equal(out.phase_rad[~cell], a[~cell].astype(np.float32))


def test_the_order_of_the_wavelengths_does_not_matter_and_the_result_is_at_the_first():
    rng = np.random.default_rng(1)
    path = _cell_path()
    a = _phase(path, L_A, rng, 0.02)
    b = _phase(path, L_B, rng, 0.02, turn_errors=(path > 1.2).astype(float))
    out = combine_wavelengths(b, a, path > 0, wavelength_a_um=L_B, wavelength_b_um=L_A)
    truth = 2 * np.pi * path / L_B
    assert np.sqrt(np.mean((out.phase_rad - truth)[path > 0] ** 2)) < 0.03


def test_a_pair_that_disagrees_on_thin_pixels_leaves_the_first_phase_and_says_so():
    rng = np.random.default_rng(2)
    path = _cell_path(peak_um=0.3)  # thin: no turn to find
    a = _phase(path, L_A, rng, 0.03)
    b = _phase(path, L_B, rng, 0.6)  # a failed second fit
    out = combine_wavelengths(a, b, path > 0, wavelength_a_um=L_A, wavelength_b_um=L_B)
    assert not out.combined and out.turns_changed == 0
    assert out.inconsistent_fraction > 0.05
    assert np.array_equal(out.phase_rad, a.astype(np.float32))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"wavelength_b_um": 0.415}, "20 nm apart"),
        ({"support": np.ones((4, 4), bool)}, "shapes"),
    ],
)
def test_bad_pairs_are_refused_with_the_reason(kw, match):
    args = {"phase_a": np.zeros((8, 8)), "phase_b": np.zeros((8, 8)),
            "support": np.ones((8, 8), bool), "wavelength_a_um": L_A, "wavelength_b_um": L_B}
    with pytest.raises(ValueError, match=match):
        combine_wavelengths(**{**args, **kw})


@pytest.fixture(scope="module")
def thick_frames():
    optics = OpticalSetup(wavelength_nm=405, pixel_um=1.12, z_mm=1.5, shape_px=(384, 384))
    frame = simulate_frame(optics, SceneSpec(scenario="adherent", confluence=0.5,
                                             thick_fraction=0.5), rng=3)
    return frame, at_wavelength(frame, 650, rng=4)


def test_the_pipeline_with_a_second_led_fixes_thick_cells_the_first_alone_cannot(thick_frames):
    frame, other = thick_frames
    cells = frame.labels > 0
    thick = cells & (frame.phase_rad > 2 * np.pi)
    common = {"wavelength_um": 0.405, "pixel_um": 1.12, "z": 1.5, "refine": 20}
    one = analyze_frame(frame.hologram, **common)
    two = analyze_frame(frame.hologram, **common, second_hologram=other.hologram,
                        second_wavelength_um=0.65)

    def rmse(res, where):
        return float(np.sqrt(np.mean((res.phase_rad - frame.phase_rad)[where] ** 2)))

    assert rmse(one, thick) > 1.0  # whole turns one hologram cannot see
    assert rmse(two, thick) < 0.1 and rmse(two, cells) < 0.06
    info = two.summary()["two_wavelengths"]
    assert info["combined"] and info["turns_changed"] > 50


def test_a_second_hologram_needs_its_wavelength_the_fit_and_the_same_field(thick_frames):
    frame, other = thick_frames
    common = {"wavelength_um": 0.405, "pixel_um": 1.12, "z": 1.5}
    with pytest.raises(ValueError, match="needs its wavelength"):
        analyze_frame(frame.hologram, **common, refine=5, second_hologram=other.hologram)
    with pytest.raises(ValueError, match="refine > 0"):
        analyze_frame(frame.hologram, **common, second_hologram=other.hologram,
                      second_wavelength_um=0.65)
    with pytest.raises(ValueError, match="same sensor and field"):
        analyze_frame(frame.hologram, **common, refine=2, second_hologram=other.hologram[:200],
                      second_wavelength_um=0.65)


def test_the_twin_s_second_led_sees_the_same_path_through_new_noise(thick_frames):
    frame, other = thick_frames
    assert other.optics.wavelength_nm == 650 and other.z_mm == frame.z_mm
    np.testing.assert_allclose(other.phase_rad * 650, frame.phase_rad * 405, rtol=1e-5)
    assert np.array_equal(other.labels, frame.labels)
    assert not np.array_equal(other.hologram, frame.hologram)
    with pytest.raises(ValueError, match="wavelength_nm"):
        at_wavelength(frame, 800, rng=0)
