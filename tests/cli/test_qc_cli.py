"""The `biopilot qc` commands: synthesise, analyse (bad files too), release, train --help."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pytest
from typer.testing import CliRunner

from biopilot.cli.main import app
from biopilot.store import Historian
from biopilot.store.audit import AuditTrail

runner = CliRunner()


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    out = tmp_path_factory.mktemp("holo")
    res = runner.invoke(
        app,
        [
            "qc",
            "synth",
            "--n",
            "2",
            "--size",
            "160x128",
            "--seed",
            "3",
            "--out",
            str(out),
            "--format",
            "npy",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    return out, json.loads(res.stdout)


def test_synth_writes_holograms_sidecars_and_truth(frames):
    out, rows = frames
    assert len(rows) == 2
    for row in rows:
        assert row["file"].endswith(".npy")
    assert len(list(out.glob("*_truth.json"))) == 2
    assert len(list(out.glob("bench_3_00?.json"))) == 2


def test_synth_refuses_a_bad_size(tmp_path):
    res = runner.invoke(app, ["qc", "synth", "--size", "big", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "WIDTHxHEIGHT" in res.output


def test_analyze_reports_cells_and_continues_past_a_bad_file(frames, tmp_path):
    out, rows = frames
    good = rows[1]["file"]
    bad = tmp_path / "corrupt.npy"
    bad.write_bytes(b"\x93NUMPY garbage")
    z = json.loads((out / "bench_3_001_truth.json").read_text())["z_mm"]
    csv = tmp_path / "cells.csv"
    res = runner.invoke(
        app,
        [
            "qc",
            "analyze",
            good,
            str(bad),
            "--z",
            str(z),
            "--json",
            "-",
            "--cells-csv",
            str(csv),
            "--overlay",
            str(tmp_path / "ov"),
        ],
    )
    assert res.exit_code == 1
    report = json.loads(res.stdout)
    assert [f["file"] for f in report["frames"]] == [good]
    assert report["failed"][0]["file"] == str(bad) and report["failed"][0]["error"]
    frame = report["frames"][0]
    assert {"n_cells", "viability", "confluence", "differentiated_fraction"} <= set(frame)
    assert frame["hologram_agreement"] > 0.5  # its phase explains the hologram
    assert (tmp_path / "ov" / "bench_3_001_overlay.png").is_file()
    cells = pd.read_csv(csv)
    assert len(cells) == frame["n_cells"] and "dry_mass_pg" in cells


def test_analyze_prints_a_table_in_per_cent_with_the_file_names(frames, tmp_path):
    out, rows = frames
    z = json.loads((out / "bench_3_001_truth.json").read_text())["z_mm"]
    report = tmp_path / "qc.json"
    res = runner.invoke(app, ["qc", "analyze", rows[1]["file"], "--z", str(z),
                              "--json", str(report)])
    assert res.exit_code == 0, res.output
    frame = json.loads(report.read_text())["frames"][0]
    line = next(ln for ln in res.stdout.splitlines() if "bench_3_001" in ln)
    assert str(out) not in line  # the name, not the whole path
    cells = [c.strip() for c in line.split("\u2502")[1:-1]]
    assert cells[1] == f"{frame['n_cells']:,d}"
    assert cells[2] == f"{100 * frame['viability']:.1f}"
    assert cells[3] == f"{100 * frame['confluence']:.1f}"
    assert frame["cores"] == "corenet"  # the default path, as the report says
    assert frame["merge"] == "mergenet"


def test_analyze_needs_optics_metadata(tmp_path):
    import numpy as np

    path = tmp_path / "bare.npy"
    np.save(path, np.full((64, 64), 1000, np.uint16))
    res = runner.invoke(app, ["qc", "analyze", str(path), "--json", "-"])
    assert res.exit_code == 1
    assert "missing optical metadata" in json.loads(res.stdout)["failed"][0]["error"]


def test_analyze_files_qc_records_and_release_decides(frames, tmp_path):
    out, rows = frames
    db = tmp_path / "line.db"
    h = Historian(db)
    h.ensure_site("s")
    h.ensure_area("s", "qc")
    h.ensure_unit("s", "qc", "inc", kind="imaging incubator")
    h.ensure_product("cells")
    h.start_batch("B1", "inc", "cells", None, datetime(2026, 1, 1, tzinfo=UTC))
    z = json.loads((out / "bench_3_001_truth.json").read_text())["z_mm"]
    res = runner.invoke(
        app,
        [
            "qc",
            "analyze",
            rows[1]["file"],
            "--z",
            str(z),
            "--db",
            str(db),
            "--batch",
            "B1",
            "--json",
            "-",
            "--cells-parquet",
            str(tmp_path / "cells.parquet"),
        ],
    )
    assert res.exit_code == 0, res.output
    n_cells = json.loads(res.stdout)["frames"][0]["n_cells"]
    (record,) = Historian(db).read_records(h.batch("B1").id, "qc_result")
    assert record.body["cores"] == "corenet"  # the QC record says how its cells were cut
    assert len(pd.read_parquet(tmp_path / "cells.parquet")) == n_cells
    spec = tmp_path / "spec.yaml"
    spec.write_text("product: cells\nmin_cells_counted: 100000\nviability_min: 0.5\n")
    res = runner.invoke(
        app, ["qc", "release", "B1", "--spec", str(spec), "--db", str(db), "--json"]
    )
    assert res.exit_code == 0, res.output
    decision = json.loads(res.stdout)
    assert decision["disposition"] in {"review", "fail"}
    assert any("too few cells" in r for r in decision["reasons"])
    assert len(Historian(db).read_records(h.batch("B1").id, "release")) == 1
    res = runner.invoke(app, ["qc", "release", "B1", "--spec", str(spec), "--db", str(db),
                              "--reason", "re-judged", "--json"])
    assert res.exit_code == 0, res.output
    last = AuditTrail(Historian(db)).entries()[-1]
    assert (last.seq, last.action, last.object_id) == (json.loads(res.stdout)["audit_seq"],
                                                       "qc_disposition", "B1")
    assert last.old_value == {"disposition": decision["disposition"]} and last.reason == "re-judged"


def test_analyze_checks_the_store_and_batch_before_any_frame(frames, tmp_path):
    _, rows = frames
    db = tmp_path / "line.db"
    cells = tmp_path / "cells.csv"
    args = ["qc", "analyze", rows[1]["file"], "--db", str(db), "--batch", "NOPE",
            "--cells-csv", str(cells)]
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "no historian" in res.output and not db.exists()
    Historian(db).close()
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "biopilot batch start NOPE" in " ".join(res.output.split())
    assert not cells.exists()  # refused before the analysis, not after it


def test_release_with_a_bad_spec_names_the_field(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("product: cells\nviability_min: 2\n")
    res = runner.invoke(
        app, ["qc", "release", "B1", "--spec", str(spec), "--db", str(tmp_path / "x.db")]
    )
    assert res.exit_code == 2 and "viability_min" in res.output


def test_train_has_help():
    res = runner.invoke(app, ["qc", "train", "--help"])
    assert res.exit_code == 0 and "--seed" in res.output


def test_train_net_writes_loadable_weights_and_refuses_a_bad_patch(tmp_path):
    from biopilot.imaging.cellnet import load_cellnet

    out = tmp_path / "net.pt"
    args = ["qc", "train-net", "--frames", "3", "--val", "1", "--size", "64", "--steps", "100",
            "--batch", "2", "--out", str(out), "--json"]
    res = runner.invoke(app, [*args, "--patch", "48"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)
    assert row["weights"] == str(out) and 0.0 <= row["foreground_iou"] <= 1.0
    assert load_cellnet(out).metadata_["steps"] == 100
    bad = runner.invoke(app, [*args, "--patch", "40"])
    assert bad.exit_code != 0 and "multiple of 16" in bad.output
    # The options of the next GPU run: a narrower net, dense suspensions, fine-tuning.
    res = runner.invoke(app, [*args, "--patch", "48", "--widths", "8,16",
                              "--dense-suspension", "0.5"])
    assert res.exit_code == 0, res.output
    meta = load_cellnet(out).metadata_
    assert meta["widths"] == [8, 16] and meta["dense_suspension"] == 0.5
    res = runner.invoke(app, [*args, "--patch", "48", "--init", str(out)])
    assert res.exit_code == 0 and load_cellnet(out).metadata_["fine_tuned"], res.output
    for flag, value, message in (("--widths", "8,x", "--widths"),
                                 ("--init", str(tmp_path / "none.pt"), "--init")):
        bad = runner.invoke(app, [*args, "--patch", "48", flag, value])
        assert bad.exit_code != 0 and message in bad.output, bad.output


def test_train_cores_writes_loadable_weights_and_refuses_a_bad_patch(tmp_path):
    from biopilot.imaging.corenet import load_corenet

    out = tmp_path / "cores.pt"
    args = ["qc", "train-cores", "--frames", "2", "--val", "1", "--size", "64", "--steps", "20",
            "--batch", "2", "--widths", "8,16", "--out", str(out), "--json"]
    res = runner.invoke(app, [*args, "--patch", "32"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)
    assert row["weights"] == str(out) and row["core_mae_cellnet"] > 0
    meta = load_corenet(out).metadata_
    assert meta["steps"] == 20 and meta["command"].startswith("biopilot qc train-cores --seed 0")
    bad = runner.invoke(app, [*args, "--patch", "30"])
    assert bad.exit_code != 0 and "patch" in bad.output


def test_train_merge_writes_loadable_weights_with_its_command(tmp_path):
    from biopilot.imaging.merge import load_mergenet

    out = tmp_path / "merge.pt"
    res = runner.invoke(app, ["qc", "train-merge", "--frames", "3", "--val", "1", "--size",
                              "128", "--epochs", "1", "--dagger", "0", "--out", str(out),
                              "--json"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)
    assert row["weights"] == str(out) and 0 <= row["f1_rule"] <= 1
    meta = load_mergenet(out).metadata_
    assert meta["command"].startswith("biopilot qc train-merge --seed 0 --frames 3")


def test_analyze_iterative_method_and_a_bad_method(frames):
    out, rows = frames
    z = json.loads((out / "bench_3_001_truth.json").read_text())["z_mm"]
    base = ["qc", "analyze", rows[1]["file"], "--z", str(z), "--json", "-"]
    res = runner.invoke(app, [*base, "--method", "iterative"])
    assert res.exit_code == 0, res.output
    frame = json.loads(res.stdout)["frames"][0]
    assert "reconstruct.retrieve" in frame["timings_s"]
    assert frame["hologram_agreement"] > 0.5  # retrieval is fitted to the hologram itself
    bad = runner.invoke(app, [*base, "--method", "magic"])
    assert bad.exit_code != 0 and "--method" in bad.output
    res = runner.invoke(app, [*base, "--cores", "cellnet"])  # CellNet's cores, uncorrected
    assert res.exit_code == 0, res.output
    frame = json.loads(res.stdout)["frames"][0]
    assert frame["n_cells"] > 0 and frame["cores"] == "cellnet"  # said in the report
    bad = runner.invoke(app, [*base, "--cores", "magic"])
    assert bad.exit_code != 0 and "--cores" in bad.output
    res = runner.invoke(app, [*base, "--merge", "rule"])  # the h_core rule, no MergeNet
    assert res.exit_code == 0, res.output
    frame = json.loads(res.stdout)["frames"][0]
    assert frame["n_cells"] > 0 and frame["merge"] == "rule"
    bad = runner.invoke(app, [*base, "--merge", "magic"])
    assert bad.exit_code != 0 and "--merge" in bad.output


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_is_a_clear_error(frames):
    _, rows = frames
    res = runner.invoke(app, ["qc", "analyze", rows[1]["file"], "--device", "cuda"])
    assert res.exit_code != 0 and "no CUDA device" in res.output


def test_analyze_cuts_a_coarse_sensor_on_the_finer_grid_unless_told_not_to(tmp_path):
    from biopilot.twin.incubator import OpticalSetup, SceneSpec, simulate_frame, write_frame

    optics = OpticalSetup(wavelength_nm=532, pixel_um=1.67, z_mm=1.2, shape_px=(160, 160))
    frame = simulate_frame(optics, SceneSpec(scenario="stem_cell", confluence=0.5), rng=7)
    path = str(write_frame(frame, tmp_path, "npy", truth=False))
    pitches = []
    for extra in ([], ["--analysis-pixel", "1.5"], ["--analysis-pixel", "0"]):
        res = runner.invoke(app, ["qc", "analyze", path, "--z", str(frame.z_mm), "--json", "-",
                                  *extra])  # fmt: skip
        assert res.exit_code == 0, res.output
        pitches.append(json.loads(res.stdout)["frames"][0]["analysis_pixel_um"])
    assert pitches[0] <= 1.3 < pitches[1] <= 1.5 and pitches[2] == 1.67


def test_analyze_warns_when_a_frame_is_mostly_unsplit_clumps_or_unexplained(tmp_path):
    from biopilot.twin.incubator import OpticalSetup, SceneSpec, simulate_frame, write_frame

    optics = OpticalSetup(wavelength_nm=488, pixel_um=1.4, z_mm=1.6, shape_px=(384, 384))
    dense = simulate_frame(
        optics, SceneSpec(scenario="suspension", confluence=0.8, thick_fraction=0.1), rng=2024
    )
    path = write_frame(dense, tmp_path, "npy", truth=False)
    res = runner.invoke(app, ["qc", "analyze", str(path), "--z", str(dense.z_mm)])
    assert res.exit_code == 0, res.output
    assert "the phase reproduces only" in res.output  # CellNet fails here, and says so
    res = runner.invoke(app, ["qc", "analyze", str(path), "--z", str(dense.z_mm),
                              "--refine", "10"])  # the fit does not hide it
    assert res.exit_code == 0, res.output
    assert "the phase reproduces only" in res.output and "the phase fitted to it" in res.output
    res = runner.invoke(app, ["qc", "analyze", str(path), "--z", str(dense.z_mm),
                              "--cores", "cellnet"])  # CellNet's cores leave the clumps whole
    assert res.exit_code == 0, res.output
    assert "in clumps too large to be single cells" in res.output


def test_analyze_refine_fits_the_phase_and_the_distance(frames):
    out, rows = frames
    z = json.loads((out / "bench_3_001_truth.json").read_text())["z_mm"]
    base = ["qc", "analyze", rows[1]["file"], "--z", str(z + 0.003), "--json", "-"]
    res = runner.invoke(app, [*base, "--refine", "15"])
    assert res.exit_code == 0, res.output
    frame = json.loads(res.stdout)["frames"][0]
    assert frame["n_cells"] > 0
    assert abs(frame["z_mm"] - z) < 1e-3  # given 3 um off, fitted to within 1 um
    assert frame["timings_s"]["reconstruct.refine"] > 0
    # the report tells the fitted phase's agreement from the one the frame is judged on
    assert frame["fit_agreement"] > frame["hologram_agreement"] > 0.5
    bad = runner.invoke(app, [*base, "--refine", "-1"])
    assert bad.exit_code != 0 and "--refine" in bad.output


def test_a_second_led_is_synthesised_and_combined_by_analyze(tmp_path):
    res = runner.invoke(app, ["qc", "synth", "--n", "3", "--size", "192x160", "--seed", "3",
                              "--out", str(tmp_path), "--format", "npy",
                              "--second-wavelength", "650", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    row = rows[1]
    assert row["second_file"].endswith("_650nm.npy")
    base = ["qc", "analyze", row["file"], "--json", "-"]
    res = runner.invoke(app, [*base, "--refine", "10", "--second", row["second_file"]])
    assert res.exit_code == 0, res.output
    frame = json.loads(res.stdout)["frames"][0]
    assert frame["n_cells"] > 0 and frame["two_wavelengths"]["combined"] is True
    assert frame["two_wavelengths"]["inconsistent_fraction"] < 0.005
    unpaired = runner.invoke(app, [*base[:3], row["file"], "--refine", "10",
                                   "--second", row["second_file"]])
    assert unpaired.exit_code != 0 and "one file per hologram" in unpaired.output
    no_fit = runner.invoke(app, [*base, "--second", row["second_file"]])
    assert no_fit.exit_code != 0 and "--refine" in no_fit.output
    # another field's hologram as the "second LED": the pair disagrees and the report says so
    wrong = runner.invoke(app, ["qc", "analyze", row["file"], "--refine", "10",
                                "--second", rows[2]["second_file"]])
    assert wrong.exit_code == 0, wrong.output
    assert "the two wavelengths disagree" in wrong.output
    # a corrupt second file fails its pair, named, and the next pair goes on
    bad = tmp_path / "bad.npy"
    bad.write_text("garbage")
    both = runner.invoke(app, ["qc", "analyze", row["file"], rows[2]["file"], "--refine", "5",
                               "--second", str(bad), "--second", rows[2]["second_file"],
                               "--json", "-"])
    assert both.exit_code == 1
    report = json.loads(both.stdout)
    assert [f["file"] for f in report["frames"]] == [rows[2]["file"]]
    assert "bad.npy" in report["failed"][0]["error"]
