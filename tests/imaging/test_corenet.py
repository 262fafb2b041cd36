"""CoreNet: CellNet's cores corrected; identity untrained, save/load, training, shipped weights."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch

from biopilot.imaging import backpropagate, predict_maps, segment_maps
from biopilot.imaging.cellnet import load_default_cellnet, save_cellnet
from biopilot.imaging.cellnet_data import core_target
from biopilot.imaging.corenet import (
    CoreNet,
    default_corenet_path,
    load_corenet,
    load_default_corenet,
    save_corenet,
)
from biopilot.imaging.corenet_train import corenet_data, train_corenet
from biopilot.imaging.metrics import score_segmentation
from biopilot.twin.incubator import OpticalSetup, SceneSpec, simulate_frame


@pytest.fixture(scope="module")
def cellnet():
    return load_default_cellnet().fused()


@pytest.fixture(scope="module")
def stem_frame():
    # Stem cells at 75 % confluence: not a training frame (those come from corenet_data's
    # own seeds), and the kind of frame CoreNet is for.
    optics = OpticalSetup(wavelength_nm=532, pixel_um=1.25, z_mm=1.2, shape_px=(384, 384))
    scene = SceneSpec(scenario="stem_cell", confluence=0.75)
    frame = simulate_frame(optics, scene, rng=4711)
    field = backpropagate(frame.hologram, frame.z_mm, wavelength_um=optics.wavelength_um,
                          pixel_um=optics.pixel_um)
    return frame, field


def test_an_untrained_corenet_leaves_cellnets_maps_as_they_are(cellnet, stem_frame):
    _, field = stem_frame
    plain = predict_maps(cellnet, field, precision="float32")
    same = predict_maps(cellnet, field, precision="float32", cores=CoreNet())
    for a, b in zip((plain.phase_rad, plain.foreground, plain.core),
                    (same.phase_rad, same.foreground, same.core), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_shipped_corenet_splits_touching_stem_cells_better(cellnet, stem_frame):
    frame, field = stem_frame
    truth = core_target(frame.labels)
    cells = frame.labels > 0
    scores = {}
    for name, cores in (("cellnet", None), ("corenet", load_default_corenet())):
        maps = predict_maps(cellnet, field, precision="float32", cores=cores)
        mae = float(np.abs(maps.core - truth)[cells].mean())
        labels = segment_maps(maps.foreground, maps.core, pixel_um=1.25)
        scores[name] = (mae, score_segmentation(frame.labels, labels))
    (mae0, s0), (mae1, s1) = scores["cellnet"], scores["corenet"]
    assert mae1 < 0.95 * mae0  # a core map closer to the truth on the cells
    assert s1.f1 > s0.f1 + 0.02  # and more cells found whole (0.76 -> 0.84 when written)
    assert s1.tp > s0.tp and s1.fn < s0.fn  # fewer true cells merged into a neighbour


def test_shipped_corenet_loads_with_sockets_blocked_and_is_small(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket, "socket", no_network)
    net = load_default_corenet()
    assert isinstance(net, CoreNet)
    assert default_corenet_path().stat().st_size < 2e6
    meta = net.metadata_
    assert {"command", "seed", "steps", "validation"} <= set(meta)
    assert meta["validation"]["core_mae_corrected"] < meta["validation"]["core_mae_cellnet"]


def test_save_load_round_trip_and_foreign_files_are_refused(tmp_path):
    torch.manual_seed(1)
    net = CoreNet((8, 16))
    torch.nn.init.normal_(net.head.weight)  # not the identity
    path = save_corenet(net, tmp_path / "c.pt", {"note": "test"})
    back = load_corenet(path)
    x, y = torch.randn(1, 12, 8, 8), torch.randn(1, 12, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(back(x, y), net(x, y))
    assert back.metadata_ == {"note": "test"}
    save_cellnet(load_default_cellnet(), tmp_path / "cellnet.pt")
    with pytest.raises(ValueError, match="not a biopilot CoreNet file"):
        load_corenet(tmp_path / "cellnet.pt")
    (tmp_path / "junk.pt").write_bytes(b"not torch")
    with pytest.raises(ValueError, match="not a readable CoreNet file"):
        load_corenet(tmp_path / "junk.pt")


def test_training_is_reproducible_and_learns(cellnet):
    data = corenet_data(cellnet, 5, 3, size=64)
    assert data.x.shape == (3, 12, 32, 32) and data.t.shape == (3, 8, 32, 32)
    runs = [train_corenet(data, seed=3, steps=30, batch=4, patch=32, widths=(8, 16), val=data)
            for _ in range(2)]
    (a, info), (b, _) = runs
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    v = info.validation
    assert v["core_mae_corrected"] < v["core_mae_cellnet"]  # fitted its own frames
    with pytest.raises(ValueError, match="patch"):
        train_corenet(data, steps=1, patch=30, widths=(8, 16))
