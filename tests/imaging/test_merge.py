"""MergeNet: contact tables, learned merging in rounds, shipped weights, training."""

from __future__ import annotations

import dataclasses
import socket

import numpy as np
import pytest
import torch

from biopilot.imaging import backpropagate, predict_maps, segment_maps
from biopilot.imaging import merge_tables as mt
from biopilot.imaging.cellnet import load_default_cellnet, save_cellnet
from biopilot.imaging.corenet import load_default_corenet
from biopilot.imaging.merge import (
    FEATURES,
    MergeNet,
    default_mergenet_path,
    load_default_mergenet,
    load_mergenet,
    merge_cells,
    pair_features,
    save_mergenet,
)
from biopilot.imaging.merge_train import merge_frames, train_mergenet
from biopilot.imaging.metrics import score_segmentation
from biopilot.twin.incubator import OpticalSetup, SceneSpec, simulate_frame


@pytest.fixture(scope="module")
def patch():
    """A 40 x 50 label image of irregular touching regions with gaps, and three maps."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:40, :50]
    seeds = rng.uniform([0, 0], [40, 50], (12, 2))
    d = (yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2
    labels = (np.argmin(d, axis=-1) + 1).astype(np.int32)
    labels[rng.uniform(size=labels.shape) < 0.08] = 0  # medium between and inside
    maps = [rng.uniform(size=labels.shape).astype(np.float32) for _ in range(3)]
    return labels, maps


def _direct(labels, core, fg, phase):
    """The tables computed the slow, obvious way."""
    n = int(labels.max())
    region = np.zeros((n + 1, 9))
    for k in range(1, n + 1):
        y, x = np.nonzero(labels == k)
        region[k] = [y.size, y.sum(), x.sum(), (y * y).sum(), (x * x).sum(), (x * y).sum(),
                     core[y, x].max(), phase[y, x].max(), phase[y, x].astype(np.float64).sum()]
    contacts: dict[tuple[int, int], list[tuple[float, float, float]]] = {}
    for (y0, x0), (y1, x1) in (((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                               ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))):
        la, lb = labels[y0, x0].ravel(), labels[y1, x1].ravel()
        ca, cb = core[y0, x0].ravel(), core[y1, x1].ravel()
        fa, fb = fg[y0, x0].ravel(), fg[y1, x1].ravel()
        pa, pb = phase[y0, x0].ravel(), phase[y1, x1].ravel()
        for i in np.flatnonzero((la > 0) & (lb > 0) & (la != lb)):
            key = (min(la[i], lb[i]), max(la[i], lb[i]))
            contacts.setdefault(key, []).append(
                (min(ca[i], cb[i]), min(fa[i], fb[i]), 0.5 * (pa[i] + pb[i])))
    return region, contacts


def _check(t, region, contacts):
    np.testing.assert_allclose(t.region, region, rtol=1e-6)
    assert sorted(zip(t.a.tolist(), t.b.tolist(), strict=True)) == sorted(contacts)
    for a, b, row in zip(t.a, t.b, t.contact, strict=True):
        v = np.array(contacts[(a, b)])
        np.testing.assert_allclose(row, [len(v), v[:, 0].max(), *v.sum(0)], rtol=1e-5)


def test_tables_match_a_direct_count(patch):
    labels, (core, fg, phase) = patch
    t = mt.tables(labels, core, fg, phase, int(labels.max()))
    _check(t, *_direct(labels, core, fg, phase))


def test_merged_tables_are_the_tables_of_the_merged_image(patch):
    labels, (core, fg, phase) = patch
    n = int(labels.max())
    into = np.arange(n + 1)
    into[[3, 7, 8]] = [1, 2, 2]  # 3 into 1, 7 and 8 into 2
    keep = into == np.arange(n + 1)
    rank = np.cumsum(keep) - 1
    merged_image = rank[into][labels]
    t = mt.merge_tables(mt.tables(labels, core, fg, phase, n), rank[into], int(rank[-1]))
    _check(t, *_direct(merged_image, core, fg, phase))


def _constant_net(logit: float) -> MergeNet:
    net = MergeNet((4,))
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.body[-1].bias.fill_(logit)
    return net.eval()


def test_merge_cells_merges_what_the_net_says_once_per_region_and_round():
    labels = np.zeros((10, 31), np.int32)
    labels[2:8, 1:10], labels[2:8, 10:20], labels[2:8, 20:30] = 1, 2, 3  # a chain of three
    ones = np.ones(labels.shape, np.float32)
    args = (labels, ones, ones, ones)
    never = merge_cells(*args, pixel_um=1.0, net=_constant_net(-10.0))
    np.testing.assert_array_equal(never, labels)
    once = merge_cells(*args, pixel_um=1.0, net=_constant_net(10.0), rounds=1)
    assert int(once.max()) == 2  # the middle region merged with one neighbour only
    assert len(np.unique(once[labels > 0])) == 2 and set(np.unique(once)) == {0, 1, 2}
    whole = merge_cells(*args, pixel_um=1.0, net=_constant_net(10.0))
    np.testing.assert_array_equal(whole, (labels > 0).astype(np.int32))
    with pytest.raises(ValueError, match="threshold"):
        merge_cells(*args, pixel_um=1.0, net=_constant_net(0.0), threshold=1.0)
    nan = ones.copy()
    nan[4, 5] = np.nan  # inside region 1
    with pytest.raises(ValueError, match="NaN"):
        merge_cells(labels, ones, ones, nan, pixel_um=1.0, net=_constant_net(10.0))
    with pytest.raises(ValueError, match="core map has shape"):
        merge_cells(labels, ones, ones[:5], ones, pixel_um=1.0, net=_constant_net(10.0))
    t = mt.tables(labels, ones, ones, ones, 3)
    x = pair_features(t, 1.0)
    assert x.shape == (2, len(FEATURES)) and np.isfinite(x).all()


@pytest.fixture(scope="module")
def stem_maps():
    # Stem cells at 80 %, finely sampled (the frames CoreNet over-splits): apart from
    # MergeNet's training streams, the kind of frame it is for.
    optics = OpticalSetup(wavelength_nm=532, pixel_um=1.25, z_mm=1.2, shape_px=(384, 384))
    frame = simulate_frame(optics, SceneSpec(scenario="stem_cell", confluence=0.8), rng=4712)
    field = backpropagate(frame.hologram, frame.z_mm, wavelength_um=optics.wavelength_um,
                          pixel_um=optics.pixel_um)
    maps = predict_maps(load_default_cellnet().fused(), field, precision="float32",
                        cores=load_default_corenet())
    return frame, maps


def test_the_shipped_mergenet_finds_more_whole_cells_than_the_rule(stem_maps):
    frame, maps = stem_maps
    rule = segment_maps(maps.foreground, maps.core, pixel_um=1.25)
    fine = segment_maps(maps.foreground, maps.core, pixel_um=1.25, h_core=0.0)
    merged = merge_cells(fine, maps.foreground, maps.core, maps.phase_rad, pixel_um=1.25)
    s_rule, s_merged = (score_segmentation(frame.labels, x) for x in (rule, merged))
    assert merged.max() < fine.max()  # it merged
    assert s_merged.f1 > s_rule.f1 + 0.01
    assert s_merged.count_error < s_rule.count_error  # fewer split cells counted twice


def test_shipped_mergenet_loads_with_sockets_blocked_and_is_small(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket, "socket", no_network)
    net = load_default_mergenet()
    assert isinstance(net, MergeNet)
    assert default_mergenet_path().stat().st_size < 1e6
    meta = net.metadata_
    assert meta["command"].startswith("biopilot qc train-merge --seed 0")
    assert meta["validation"]["f1_merge"] > meta["validation"]["f1_rule"]


def test_save_load_round_trip_and_foreign_files_are_refused(tmp_path):
    torch.manual_seed(2)
    net = MergeNet((8,))
    path = save_mergenet(net, tmp_path / "m.pt", {"note": "test"})
    back = load_mergenet(path)
    x = torch.randn(5, len(FEATURES))
    with torch.no_grad():
        torch.testing.assert_close(back(x), net(x))
    assert back.metadata_ == {"note": "test"} and back.widths == (8,)
    save_cellnet(load_default_cellnet(), tmp_path / "cellnet.pt")
    with pytest.raises(ValueError, match="not a biopilot MergeNet file"):
        load_mergenet(tmp_path / "cellnet.pt")


def test_training_is_reproducible_and_scored_against_the_rule():
    frames = merge_frames(load_default_cellnet().fused(), load_default_corenet(), 5, 3,
                          size=128)
    assert all(f.labels.shape == (128, 128) and f.truth.shape == (128, 128) for f in frames)
    runs = [train_mergenet(frames, seed=1, epochs=1, dagger=1, val=frames[:1])
            for _ in range(2)]
    (a, info), (b, _) = runs
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert set(info.validation) == {"f1_rule", "f1_merge", "count_error_rule",
                                    "count_error_merge"}
    with pytest.raises(ValueError, match="no training frames"):
        train_mergenet([])
    lonely = dataclasses.replace(frames[0], labels=(frames[0].labels > 0).astype(np.int32))
    with pytest.raises(ValueError, match="no two regions touch"):
        train_mergenet([lonely])
