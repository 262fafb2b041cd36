"""Phase retrieval and unwrapping: twin-image removal, quantitative phase against ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from biopilot.imaging.phase import backpropagate, estimate_support, retrieve_phase, unwrap_cells
from biopilot.models.optics import propagate
from biopilot.twin.hologram import OpticalSetup
from biopilot.twin.incubator import SceneSpec, simulate_frame

OPT = {"wavelength_um": 0.53, "pixel_um": 1.12, "n_medium": 1.335}


def _phantom(n: int = 192, seed: int = 0, peak: tuple[float, float] = (0.5, 3.0), z_mm=1.2):
    """Dome-shaped phase cells, their hologram at z_mm and the label mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n]
    phi, lab = np.zeros((n, n)), np.zeros((n, n), int)
    for i, (cy, cx) in enumerate(rng.uniform(30, n - 30, (6, 2)), start=1):
        r2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / rng.uniform(5, 9) ** 2
        inside = (r2 < 1) & (lab == 0)
        phi = np.where(inside, rng.uniform(*peak) * (1 - r2), phi)
        lab[inside] = i
    holo = np.abs(propagate(np.exp(1j * phi), z_mm, **OPT)) ** 2
    return holo.astype(np.float32), phi, lab


def _rmse(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b)[mask] ** 2)))


def _wrapped_rmse(field: np.ndarray, phi: np.ndarray, mask: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.angle(field * np.exp(-1j * phi))[mask] ** 2)))


def test_iterations_remove_the_twin_image() -> None:
    holo, phi, lab = _phantom()
    m = lab > 0
    plain = retrieve_phase(holo, 1.2, n_iter=0, **OPT)
    t = retrieve_phase(holo, 1.2, n_iter=40, **OPT)
    assert t.dtype == np.complex64 and t.shape == holo.shape
    assert _wrapped_rmse(plain, phi, m) > 0.3  # back-propagation alone: twin image
    assert _rmse(unwrap_cells(t), phi, m) < 0.1
    assert np.abs(np.angle(t[~m])).mean() < 0.05  # background at 0


def test_cell_thicker_than_2pi_is_unwrapped() -> None:
    holo, phi, lab = _phantom(seed=1, peak=(7.0, 9.0))
    m = lab > 0
    t = retrieve_phase(holo, 1.2, n_iter=40, **OPT)
    phase = unwrap_cells(t)
    assert phi.max() > 2 * np.pi
    assert _rmse(phase, phi, m) < 0.1


def test_phase_rmse_on_a_simulated_frame_within_0_1_rad() -> None:
    optics = OpticalSetup(wavelength_nm=650, pixel_um=1.4, z_mm=0.9, shape_px=(384, 384))
    f = simulate_frame(
        optics, SceneSpec(scenario="adherent", confluence=0.2, thick_fraction=0.0), rng=2
    )
    t = retrieve_phase(f.hologram, f.z_mm, wavelength_um=0.65, pixel_um=1.4, n_iter=40)
    m = f.labels > 0
    assert _rmse(unwrap_cells(t), f.phase_rad, m) < 0.1


def test_thick_round_cells_field_is_right_at_the_true_z() -> None:
    """Spheres of > 2 pi: the retrieved field matches (the rims' > pi steps limit unwrapping)."""
    optics = OpticalSetup(wavelength_nm=532, pixel_um=1.12, z_mm=1.2, shape_px=(384, 384))
    f = simulate_frame(
        optics,
        SceneSpec(scenario="suspension", confluence=0.1, thick_fraction=0.0, z_offset_um=23.0),
        rng=1,
    )
    t = retrieve_phase(f.hologram, f.z_mm, wavelength_um=0.532, pixel_um=1.12, n_iter=40)
    m = f.labels > 0
    assert f.phase_rad.max() > 2 * np.pi
    assert _wrapped_rmse(t, f.phase_rad, m) < 0.1


def test_unwrap_cells_sets_background_to_zero_and_keeps_thin_cells() -> None:
    yy, xx = np.mgrid[:64, :64]
    phi = 0.8 * np.clip(1 - ((yy - 20) ** 2 + (xx - 20) ** 2) / 64.0, 0, None)
    field = np.exp(1j * (phi + 0.4))  # a global phase offset
    out = unwrap_cells(field)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, phi, atol=1e-4)


def test_support_covers_the_cells() -> None:
    holo, _, lab = _phantom()
    sup = estimate_support(retrieve_phase(holo, 1.2, n_iter=20, **OPT))
    m = lab > 0
    assert (sup & m).sum() / m.sum() > 0.98 and sup.mean() < 4 * m.mean()


def test_torch_device_matches_numpy() -> None:
    holo, _, _ = _phantom(n=96)
    ref = retrieve_phase(holo, 1.2, n_iter=5, **OPT)
    out = retrieve_phase(holo, 1.2, n_iter=5, device="torch", **OPT)
    np.testing.assert_allclose(out, ref, atol=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"z_mm": -1.0}, "z_mm"),
        ({"n_iter": -1}, "n_iter"),
        ({"momentum": 1.5}, "momentum"),
        ({"support": np.ones((8, 8), bool)}, "support shape"),
        ({"device": "cuda:7"}, "CUDA"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict, message: str) -> None:
    holo, _, _ = _phantom(n=64)
    args = {"z_mm": 1.2, **OPT, **kwargs}
    if "cuda" in str(kwargs.get("device", "")):
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA device is present")
    with pytest.raises(ValueError, match=message):
        retrieve_phase(holo, **args)


def test_a_given_relative_intensity_is_used_as_computed_and_checked():
    from biopilot.imaging.autofocus import autofocus
    from biopilot.imaging.recon_input import normalize_illumination

    yy, xx = np.mgrid[:160, :160]
    phi = 1.5 * np.clip(1 - ((yy - 70) ** 2 + (xx - 90) ** 2) / 64.0, 0, None)
    opt = {"wavelength_um": 0.53, "pixel_um": 1.12, "n_medium": 1.335}
    holo = np.abs(propagate(np.exp(1j * phi), 1.1, **opt)) ** 2 * (1 + 0.001 * xx)
    rel = normalize_illumination(holo)[0]
    assert autofocus(holo, relative=rel, **opt) == autofocus(holo, **opt)
    np.testing.assert_array_equal(
        backpropagate(holo, 1.1, relative=rel, **opt), backpropagate(holo, 1.1, **opt)
    )
    with pytest.raises(ValueError, match="differs from the hologram"):
        backpropagate(holo, 1.1, relative=rel[:-1], **opt)
    with pytest.raises(ValueError, match="differs from the hologram"):
        autofocus(holo, relative=rel[:, :-1], **opt)
