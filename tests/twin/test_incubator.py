"""Tests of the imaging incubator: ground truth, confluence, states, seeds, files, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from pydantic import ValidationError

from biopilot.twin.cells import dry_mass_pg
from biopilot.twin.incubator import (
    OpticalSetup,
    SceneSpec,
    SimulatedFrame,
    benchmark_set,
    read_hologram,
    simulate_frame,
    write_frame,
)

SIZE = (384, 448)


def _optics(**kw: float) -> OpticalSetup:
    args = {"wavelength_nm": 532.0, "pixel_um": 1.12, "z_mm": 1.2, "shape_px": SIZE, **kw}
    return OpticalSetup(**args)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def frames() -> dict[str, SimulatedFrame]:
    specs = {
        "suspension": SceneSpec(scenario="suspension", confluence=0.4, viability=0.8),
        "adherent": SceneSpec(scenario="adherent", confluence=0.6),
        "stem_cell": SceneSpec(scenario="stem_cell", confluence=0.5),
        "stacked": SceneSpec(scenario="suspension", confluence=0.6, overlap="stack"),
    }
    return {k: simulate_frame(_optics(), s, rng=11) for k, s in specs.items()}


@pytest.mark.parametrize("scenario", ["suspension", "adherent", "stem_cell", "stacked"])
def test_labels_table_and_dry_mass_agree(frames: dict[str, SimulatedFrame], scenario: str) -> None:
    f = frames[scenario]
    t = f.cells
    assert list(t["label"]) == list(range(1, int(f.labels.max()) + 1))
    counts = np.bincount(f.labels.ravel())[1:]
    assert np.allclose(t["area_um2"], counts * 1.12**2)
    phase_sum = np.bincount(f.labels.ravel(), weights=f.phase_rad.ravel())[1:] * 1.12**2
    assert np.allclose(t["dry_mass_pg"], dry_mass_pg(phase_sum, 0.532), rtol=0.005)
    # the same formula written out: m = lambda / (2 pi alpha) * integral(phi dA)
    assert np.allclose(t["dry_mass_pg"], 0.532 / (2 * np.pi * 0.18) * phase_sum, rtol=0.005)
    rows = np.rint(t["centroid_y_um"] / 1.12).astype(int)
    cols = np.rint(t["centroid_x_um"] / 1.12).astype(int)
    assert np.mean(f.labels[rows, cols] == t["label"]) > 0.9  # centroids fall in their cells
    assert (t["alive"] == (t["state"] != "dead")).all()
    assert (f.phase_rad[f.labels == 0][~f.debris_mask[f.labels == 0]] == 0).all()
    assert t["dry_mass_pg"].between(1, 5000).all() and f.phase_rad.dtype == np.float32


def test_differentiation_is_missing_outside_stem_cell_scenes(
    frames: dict[str, SimulatedFrame],
) -> None:
    assert frames["suspension"].cells["differentiated"].isna().all()
    stem = frames["stem_cell"].cells
    assert stem["differentiated"].notna().all()
    assert (stem.loc[stem["state"] == "differentiated", "differentiated"]).all()
    undiff = stem[stem["state"] == "undifferentiated"]
    assert not undiff["differentiated"].any()
    assert undiff["touching"].mean() > 0.6  # compact colonies
    diff = stem[stem["state"] == "differentiated"]
    assert diff["area_um2"].median() > 4 * undiff["area_um2"].median()


def test_state_fractions_follow_the_scene(frames: dict[str, SimulatedFrame]) -> None:
    t = frames["suspension"].cells
    assert len(t) > 300
    assert (~t["alive"]).mean() == pytest.approx(0.2, abs=0.05)
    assert set(t["state"].unique()) <= {"live_round", "dead", "dividing"}


@pytest.mark.parametrize(
    ("scenario", "confluence"),
    [("suspension", 0.0), ("suspension", 0.4), ("suspension", 0.8), ("adherent", 0.8),
     ("stem_cell", 0.8)],
)
def test_confluence_reaches_target(scenario: str, confluence: float) -> None:
    scene = SceneSpec(scenario=scenario, confluence=confluence, debris_per_mm2=0)
    frame = simulate_frame(_optics(), scene, rng=5)
    assert frame.confluence == pytest.approx(confluence, abs=0.02)
    if confluence >= 0.8:
        assert frame.cells["touching"].mean() > 0.5


def test_confluence_on_a_larger_frame_where_coverage_is_estimated_on_a_coarse_grid() -> None:
    scene = SceneSpec(scenario="suspension", confluence=0.8, debris_per_mm2=0)
    frame = simulate_frame(_optics(shape_px=(900, 1200)), scene, rng=5)  # type: ignore[arg-type]
    assert frame.confluence == pytest.approx(0.8, abs=0.015)


def test_thick_cells_exceed_two_pi_and_stay_unwrapped() -> None:
    scene = SceneSpec(scenario="suspension", confluence=0.2, thick_fraction=1.0, viability=1.0,
                      dividing_fraction=0.0)
    frame = simulate_frame(_optics(wavelength_nm=650), scene, rng=6)
    thick = frame.cells["max_phase_rad"] > 2 * np.pi
    assert thick.mean() > 0.5
    assert frame.phase_rad.max() > 2 * np.pi  # unwrapped truth


def test_same_seed_same_frame_other_seed_other_frame() -> None:
    scene = SceneSpec(confluence=0.3)
    a, b = (simulate_frame(_optics(), scene, rng=7) for _ in range(2))
    c = simulate_frame(_optics(), scene, rng=8)
    assert np.array_equal(a.hologram, b.hologram) and np.array_equal(a.labels, b.labels)
    pd.testing.assert_frame_equal(a.cells, b.cells)
    assert not np.array_equal(a.hologram, c.hologram)


def test_true_z_and_noise_settings_reach_the_frame() -> None:
    scene = SceneSpec(confluence=0.1, z_offset_um=-30.0, shot_noise=False, read_noise_e=0.0,
                      illumination_nonuniformity=0.0, debris_per_mm2=0)
    frame = simulate_frame(_optics(bit_depth=16), scene, rng=9)
    assert frame.z_mm == pytest.approx(1.17) and frame.optics.z_mm == 1.2
    # a pure phase object conserves energy: the mean count is the exposure
    assert frame.hologram.mean() == pytest.approx(0.3 * 65535, rel=0.005)
    with pytest.raises(ValueError, match="z_mm"):
        simulate_frame(_optics(z_mm=None), scene, rng=0)  # type: ignore[arg-type]


def test_scene_spec_refuses_bad_values_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="confluence"):
        SceneSpec(confluence=0.95)
    with pytest.raises(ValidationError, match="scenario"):
        SceneSpec(scenario="organoid")  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["tiff", "png", "npy"])
def test_write_read_round_trip(
    frames: dict[str, SimulatedFrame], fmt: str, tmp_path: Path
) -> None:
    frame = frames["adherent"]
    path = write_frame(frame, tmp_path, fmt, name="f1")  # type: ignore[arg-type]
    holo, optics = read_hologram(path)
    assert path.name == f"f1.{fmt}" and holo.dtype == np.float32
    assert np.array_equal(holo, frame.hologram.astype(np.float32))
    assert optics == frame.optics
    assert np.array_equal(np.load(tmp_path / "f1_labels.npy"), frame.labels)
    cells = pd.read_csv(tmp_path / "f1_cells.csv")
    assert np.allclose(cells["dry_mass_pg"], frame.cells["dry_mass_pg"])
    truth = json.loads((tmp_path / "f1_truth.json").read_text())
    assert truth["z_mm"] == frame.z_mm and truth["scene"]["scenario"] == "adherent"
    _, o2 = read_hologram(path, wavelength_nm=450.0, z_mm=None)
    assert o2.wavelength_nm == 450.0 and o2.z_mm == frame.optics.z_mm


def _write_npy(tmp_path: Path, array: np.ndarray, sidecar: dict | None = None) -> Path:
    path = tmp_path / "h.npy"
    np.save(path, array)
    if sidecar is not None:
        path.with_suffix(".json").write_text(json.dumps(sidecar))
    return path


META = {"wavelength_nm": 532.0, "pixel_um": 1.12, "z_mm": None, "bit_depth": 12}
GOOD = np.full((32, 32), 1200, np.uint16)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("corrupt_tiff", "cannot read TIFF"),
        ("corrupt_png", "cannot read PNG"),
        ("corrupt_npy", "cannot read NPY"),
        ("three_d", "2-D"),
        ("empty", "empty frame"),
        ("saturated", "saturated"),
        ("no_metadata", "missing optical metadata: wavelength_nm, pixel_um"),
        ("bad_metadata", "wavelength_nm"),
        ("bad_sidecar", "malformed sidecar"),
        ("nan", "NaN"),
        ("missing", "no such file"),
        ("suffix", "unknown hologram format"),
    ],
)
def test_read_hologram_refuses_bad_input_with_a_clear_message(
    case: str, message: str, tmp_path: Path
) -> None:
    path: Path
    if case.startswith("corrupt"):
        path = tmp_path / f"h.{case.split('_')[1]}"
        path.write_bytes(b"\x89PNG garbage" * 10)
    elif case == "three_d":
        path = _write_npy(tmp_path, np.ones((4, 32, 32), np.uint16), META)
    elif case == "empty":
        path = _write_npy(tmp_path, np.zeros((32, 32), np.uint16), META)
    elif case == "saturated":
        path = _write_npy(tmp_path, np.full((32, 32), 4095, np.uint16), META)
    elif case == "no_metadata":
        path = _write_npy(tmp_path, GOOD)
    elif case == "bad_metadata":
        path = _write_npy(tmp_path, GOOD, {**META, "wavelength_nm": 1064})
    elif case == "bad_sidecar":
        path = _write_npy(tmp_path, GOOD)
        path.with_suffix(".json").write_text("{not json")
    elif case == "nan":
        path = _write_npy(tmp_path, np.full((32, 32), np.nan, np.float32), META)
    elif case == "missing":
        path = tmp_path / "absent.tiff"
    else:
        path = tmp_path / "h.jpg"
        path.write_bytes(b"x")
    with pytest.raises(ValueError, match=message):
        read_hologram(path)


def test_tiff_without_sidecar_reads_with_flags(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "raw.tif", GOOD)
    holo, optics = read_hologram(tmp_path / "raw.tif", wavelength_nm=405, pixel_um=1.67)
    assert holo.shape == (32, 32) and optics.z_mm is None and optics.bit_depth == 16


def test_benchmark_set_is_lazy_seeded_and_covers_the_ranges() -> None:
    gen = benchmark_set(seed=3, n=6, size=(160, 192))
    first = next(gen)
    assert first.name == "bench_3_000" and first.hologram.shape == (160, 192)
    rest = list(gen)
    frames = [first, *rest]
    assert [f.scene.confluence for f in frames] == [0.0, 0.4, 0.8, 0.2, 0.6, 0.0]
    assert {f.optics.wavelength_nm for f in frames} == {405.0, 488.0, 532.0, 650.0}
    assert {f.scene.scenario for f in frames} == {"suspension", "adherent", "stem_cell"}
    assert all(abs(f.z_mm - f.optics.z_mm) <= 0.05 + 1e-9 for f in frames)  # type: ignore[operator]
    again = next(benchmark_set(seed=3, n=1, size=(160, 192)))
    assert np.array_equal(again.hologram, first.hologram)
    assert frames[2].confluence == pytest.approx(0.8, abs=0.03)


def test_a_calibrated_illumination_tilt_travels_in_the_sidecar(tmp_path: Path) -> None:
    path = _write_npy(tmp_path, GOOD, META | {"tilt_mrad": [2.5, -1.0]})
    _, optics = read_hologram(path)
    assert optics.tilt_mrad == (2.5, -1.0)
    _, plain = read_hologram(_write_npy(tmp_path, GOOD, META))
    assert plain.tilt_mrad == (0.0, 0.0)  # not calibrated: no shift applied
    with pytest.raises(ValueError, match="tilt_mrad"):
        read_hologram(_write_npy(tmp_path, GOOD, META | {"tilt_mrad": [45.0, 0.0]}))
