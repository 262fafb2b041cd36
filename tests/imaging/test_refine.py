"""Phase refinement against the hologram: exact gradients, better phase and focus, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from biopilot.imaging.metrics import match_labels, score_segmentation
from biopilot.imaging.recon_input import normalize_illumination
from biopilot.imaging.refine import _Model, refine_phase
from biopilot.models.optics import propagate
from biopilot.twin.incubator import OpticalSetup, SceneSpec, simulate_frame

OPT = {"wavelength_um": 0.53, "pixel_um": 1.12, "n_medium": 1.335}


def _bump(shape=(64, 80), height=2.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return height * np.clip(1 - ((yy - 30) ** 2 + (xx - 40) ** 2) / 100.0, 0, None)


def _hologram(phase, z_mm, **kw):
    u = propagate(np.exp(1j * phase), z_mm, fast_shape=False, **{**OPT, **kw})
    return (np.abs(u) ** 2).astype(np.float32)


def test_the_misfit_gradient_is_exact_in_phase_and_distance():
    true = _bump()
    holo = _hologram(true, 0.8)
    sup = true > 0
    optics = (OPT["wavelength_um"], OPT["pixel_um"], OPT["n_medium"])
    m = _Model(holo, np.zeros_like(sup), sup, (0.7 * true).astype(np.float32), 0.8, optics,
               0.01, (0.0, 0.0), "cpu")
    m.dz = 0.5
    _, g, g_z = m._evaluate(grad=True)
    g = g.numpy().copy()
    for y, x in [(30, 40), (28, 35), (25, 45)]:
        base = m.dphi.clone()
        losses = []
        for step in (1e-2, -1e-2):
            m.dphi = base.clone()
            m.dphi[y, x] += step
            losses.append(m._evaluate(grad=False)[0])
        m.dphi = base
        assert g[y, x] == pytest.approx((losses[0] - losses[1]) / 2e-2, rel=2e-3)
    losses = []
    for dz in (0.51, 0.49):
        m.dz = dz
        losses.append(m._evaluate(grad=False)[0])
    assert g_z == pytest.approx((losses[0] - losses[1]) / 0.02, rel=1e-2)
    assert g[~sup].max() == 0  # the medium is not fitted


@pytest.fixture(scope="module")
def frame():
    optics = OpticalSetup(wavelength_nm=532, pixel_um=1.12, z_mm=1.2, shape_px=(256, 256))
    scene = SceneSpec(scenario="adherent", confluence=0.5)
    return simulate_frame(optics, scene, rng=7)


def _mass_bias(res, f):
    t, p, _ = match_labels(f.labels, res.labels)
    found = res.cells.set_index("label").loc[p, "dry_mass_pg"].sum()
    return float(found / f.cells.set_index("label").loc[t, "dry_mass_pg"].sum() - 1.0)


def _rmse(phase, f):
    cells = f.labels > 0
    return float(np.sqrt(np.mean((phase - f.phase_rad)[cells] ** 2)))


def test_a_rough_start_and_a_wrong_distance_converge_to_the_twin_s_truth(frame):
    f = frame
    rng = np.random.default_rng(0)
    start = (0.85 * f.phase_rad + rng.normal(0, 0.15, f.phase_rad.shape)).astype(np.float32)
    sup = f.labels > 0
    start[~sup] = 0
    o = {"wavelength_um": f.optics.wavelength_um, "pixel_um": f.optics.pixel_um,
         "n_medium": f.optics.n_medium}
    fit = refine_phase(f.hologram, start, sup, f.z_mm + 3e-3, n_iter=40, **o)
    assert _rmse(start, f) > 0.2
    assert _rmse(fit.phase_rad, f) < 0.3 * _rmse(start, f)
    assert abs(fit.z_mm - f.z_mm) < 0.5e-3  # 3 um off before, within 0.5 um after
    assert fit.misfit < 0.5 * fit.misfit_start
    assert fit.evaluations <= 80
    fixed = refine_phase(f.hologram, start, sup, f.z_mm + 3e-3, n_iter=40, fit_z=False, **o)
    assert fixed.z_mm == f.z_mm + 3e-3
    assert _rmse(fixed.phase_rad, f) > _rmse(fit.phase_rad, f)  # the wrong distance costs


def test_a_second_wavelength_fitted_jointly_pins_what_one_leaves_loose(frame):
    from biopilot.twin.incubator import at_wavelength

    f = frame
    other = at_wavelength(f, 650, rng=1)
    rng = np.random.default_rng(2)
    start = (0.85 * f.phase_rad + rng.normal(0, 0.15, f.phase_rad.shape)).astype(np.float32)
    sup = f.labels > 0
    start[~sup] = 0
    o = {"wavelength_um": f.optics.wavelength_um, "pixel_um": f.optics.pixel_um,
         "n_medium": f.optics.n_medium, "n_iter": 15}
    one = refine_phase(f.hologram, start, sup, f.z_mm + 2e-3, **o)
    both = refine_phase(f.hologram, start, sup, f.z_mm + 2e-3, more=[(other.hologram, 0.65)],
                        **o)
    assert _rmse(both.phase_rad, f) < 0.8 * _rmse(one.phase_rad, f)
    assert abs(both.z_mm - f.z_mm) < 0.5e-3
    assert both.misfit < 0.5 * both.misfit_start
    with pytest.raises(ValueError, match="same sensor and field"):
        refine_phase(f.hologram, start, sup, f.z_mm, more=[(other.hologram[:100], 0.65)], **o)
    with pytest.raises(ValueError, match="wavelength"):
        refine_phase(f.hologram, start, sup, f.z_mm, more=[(other.hologram, 6.5)], **o)


def test_a_calibrated_tilt_is_part_of_the_model(frame):
    true = _bump((96, 96), 1.5)
    # whole fringes over the frame (2 along x, -1 along y), as the twin rounds a tilt to
    fringe_mrad = 1e3 * np.arcsin(0.53 / (1.335 * 96 * 1.12))
    tilt = (2 * fringe_mrad, -fringe_mrad)
    o = {"wavelength_um": OPT["wavelength_um"], "pixel_um": OPT["pixel_um"]}
    # the twin's way of tilting: a linear phase ramp across the sample plane
    optics = OpticalSetup(wavelength_nm=530, pixel_um=1.12, z_mm=1.5, shape_px=(96, 96))
    from biopilot.twin.hologram import sensor_intensity

    holo = sensor_intensity(np.exp(1j * true).astype(np.complex64), optics, tilt_mrad=tilt)
    sup = true > 0
    start = (0.8 * true).astype(np.float32)
    kw = {"n_iter": 40, "fit_z": False, "relative": holo, "n_medium": optics.n_medium,
          "prior": 0.0, **o}
    with_tilt = refine_phase(holo, start, sup, 1.5, tilt_mrad=tilt, **kw)
    without = refine_phase(holo, start, sup, 1.5, **kw)
    assert with_tilt.misfit < 0.3 * without.misfit
    assert np.abs(with_tilt.phase_rad - true)[sup].max() < 0.1


def test_bad_inputs_are_refused_with_the_reason():
    true = _bump()
    holo = _hologram(true, 0.8)
    sup = true > 0
    kw = {**OPT}
    with pytest.raises(ValueError, match="shape"):
        refine_phase(holo, true[:-1], sup, 0.8, **kw)
    bad = true.copy()
    bad[30, 40] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        refine_phase(holo, bad, sup, 0.8, **kw)
    with pytest.raises(ValueError, match="z_mm"):
        refine_phase(holo, true, sup, -1.0, **kw)
    with pytest.raises(ValueError, match="n_iter"):
        refine_phase(holo, true, sup, 0.8, n_iter=0, **kw)
    with pytest.raises(ValueError, match="prior"):
        refine_phase(holo, true, sup, 0.8, prior=-1.0, **kw)
    with pytest.raises(ValueError, match="tilt"):
        refine_phase(holo, true, sup, 0.8, tilt_mrad=(float("nan"), 0.0), **kw)


def test_the_pipeline_refines_the_network_phase_and_the_distance(frame):
    from biopilot.imaging import analyze_frame

    f = frame
    kw = {"wavelength_um": f.optics.wavelength_um, "pixel_um": f.optics.pixel_um,
          "n_medium": f.optics.n_medium, "z": f.z_mm + 2e-3}
    raw = analyze_frame(f.hologram, **kw)
    refined = analyze_frame(f.hologram, refine=20, **kw)
    assert _rmse(refined.phase_rad, f) < 0.7 * _rmse(raw.phase_rad, f)
    assert abs(refined.z_mm - f.z_mm) < 1e-3 < abs(raw.z_mm - f.z_mm) + 1e-9
    assert refined.timings_s["reconstruct.refine"] > 0
    # judged on the network's phase it started from (the same as the default path's), the
    # fitted phase explaining the hologram better still
    assert refined.hologram_agreement == pytest.approx(raw.hologram_agreement, abs=1e-6)
    assert refined.reconstruction["fit_agreement"] > refined.hologram_agreement > 0.5
    # The cells are the networks' cut, as without the fit, measured on the fitted phase: their
    # dry mass comes nearer the truth (+3.0 % -> +0.7 % here).
    np.testing.assert_array_equal(refined.labels, raw.labels)
    assert score_segmentation(f.labels, raw.labels).f1 > 0.93
    assert abs(_mass_bias(refined, f)) < 0.02 < abs(_mass_bias(raw, f))
    with pytest.raises(ValueError, match="refine"):
        analyze_frame(f.hologram, refine=-1, **kw)


def test_a_frame_of_one_cell_is_fitted_at_the_distance_given():
    # One cell in 512 x 512 px covers 0.15 % of the frame: too little to pull the distance
    # (fits of 1-11 cells drifted 2-7.5 um on tuning frames), so only the phase is fitted.
    from biopilot.imaging import analyze_frame

    optics = OpticalSetup(wavelength_nm=532, pixel_um=1.12, z_mm=1.2, shape_px=(512, 512))
    f = simulate_frame(optics, SceneSpec(scenario="adherent", confluence=0.001), rng=0)
    z = f.z_mm + 2e-3
    res = analyze_frame(f.hologram, wavelength_um=0.532, pixel_um=1.12, z=z, refine=10)
    assert res.n_cells == 1 and "fit_agreement" in res.reconstruction
    assert res.z_mm == z


def test_illumination_is_divided_out_when_not_given(frame):
    f = frame
    sup = f.labels > 0
    o = {"wavelength_um": f.optics.wavelength_um, "pixel_um": f.optics.pixel_um,
         "n_medium": f.optics.n_medium}
    rel = normalize_illumination(f.hologram)[0]
    a = refine_phase(f.hologram, f.phase_rad, sup, f.z_mm, n_iter=3, **o)
    b = refine_phase(f.hologram, f.phase_rad, sup, f.z_mm, n_iter=3, relative=rel, **o)
    np.testing.assert_allclose(a.phase_rad, b.phase_rad, atol=1e-5)
    assert a.misfit_start < 0.05  # the truth fits the raw counts once illumination is out


def test_the_torch_steps_give_the_compiled_steps_result(frame):
    # "torch" runs the same model as torch operations: what a GPU ("cuda") runs
    f = frame
    sup = f.labels > 0
    start = (0.9 * f.phase_rad).astype(np.float32)
    o = {"wavelength_um": f.optics.wavelength_um, "pixel_um": f.optics.pixel_um,
         "n_medium": f.optics.n_medium, "n_iter": 8}
    a = refine_phase(f.hologram, start, sup, f.z_mm + 1e-3, **o)
    b = refine_phase(f.hologram, start, sup, f.z_mm + 1e-3, device="torch", **o)
    assert b.misfit == pytest.approx(a.misfit, rel=1e-3)
    assert b.z_mm == pytest.approx(a.z_mm, abs=1e-5)
    np.testing.assert_allclose(b.phase_rad, a.phase_rad, atol=2e-3)
    with pytest.raises(ValueError, match="device"):
        refine_phase(f.hologram, start, sup, f.z_mm, device="tpu", **o)
    from biopilot.twin.incubator import at_wavelength

    more = [(at_wavelength(f, 405, rng=3).hologram, 0.405)]  # the joint fit, both ways
    a = refine_phase(f.hologram, start, sup, f.z_mm + 1e-3, more=more, **o)
    b = refine_phase(f.hologram, start, sup, f.z_mm + 1e-3, more=more, device="torch", **o)
    assert b.misfit == pytest.approx(a.misfit, rel=1e-3)
    np.testing.assert_allclose(b.phase_rad, a.phase_rad, atol=2e-3)


def test_saturated_pixels_are_left_out_and_an_empty_support_changes_nothing(frame):
    f = frame
    sup = f.labels > 0
    o = {"wavelength_um": f.optics.wavelength_um, "pixel_um": f.optics.pixel_um,
         "n_medium": f.optics.n_medium, "n_iter": 20}
    start = (0.85 * f.phase_rad).astype(np.float32)
    clipped = np.minimum(f.hologram, np.percentile(f.hologram, 97))  # 3 % of pixels saturate
    fit = refine_phase(clipped, start, sup, f.z_mm, fit_z=False, **o)
    # 0.22 -> 0.030 rad; fitting the clipped values as if true gave 0.056
    assert _rmse(fit.phase_rad, f) < 0.2 * _rmse(start, f)
    empty = refine_phase(f.hologram, start, np.zeros_like(sup), f.z_mm, **o)
    assert not empty.phase_rad.any() and empty.z_mm == pytest.approx(f.z_mm)
