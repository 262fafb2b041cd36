"""segment_maps' compiled passes against the plain NumPy/SciPy formulation, label for label."""

from __future__ import annotations

import itertools
import math
from collections import deque

import numpy as np
import pytest
from scipy import ndimage as ndi

from biopilot.imaging.flood import _levels_state, flood_levels, pieces_state, quantiser
from biopilot.imaging.label_stats import label_saddles
from biopilot.imaging.seeds import flood_pieces, piece_marks, renumber, split_seeds
from biopilot.imaging.segment import _SEAM_UM, _merge_shallow, segment_maps


def _plain_flood(level: np.ndarray, labels: np.ndarray, mask: np.ndarray, n_levels: int) -> None:
    """Meyer's flooding with one deque per level, in place (the order decides ties)."""
    h, w = level.shape
    queues: list[deque[tuple[int, int]]] = [deque() for _ in range(n_levels)]
    for y, x in zip(*np.nonzero(labels > 0), strict=True):
        queues[level[y, x]].append((y, x))
    cur = 0
    while cur < n_levels:
        if not queues[cur]:
            cur += 1
            continue
        y, x = queues[cur].popleft()
        for v, u in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
            if 0 <= v < h and 0 <= u < w and mask[v, u] and labels[v, u] == 0:
                labels[v, u] = labels[y, x]
                queues[max(int(level[v, u]), cur)].append((v, u))


def _plain_flood_levels(
    height: np.ndarray, markers: np.ndarray, mask: np.ndarray, n_levels: int, workers: int,
    seam_px: float,
) -> np.ndarray:
    """flood_levels as NumPy quantisation, overlapping row bands and the deque flood."""
    h = height.astype(np.float32)
    labels = np.where(mask, markers, 0).astype(np.int32)
    lo = float(np.min(h, where=mask, initial=np.inf))
    hi = float(np.max(h, where=mask, initial=-np.inf))
    if not lo <= hi:
        lo, hi = 0.0, 1.0
    scale = (n_levels - 1) / (hi - lo) if hi > lo else 0.0
    level = np.clip(np.rint((h - lo) * scale), 0, n_levels - 1).astype(np.uint16)
    margin = math.ceil(seam_px)
    n = max(1, min(workers, h.shape[0] // max(4 * margin, 1)))
    cuts = np.linspace(0, h.shape[0], n + 1).astype(int)
    out = np.zeros_like(labels)
    for c0, c1 in itertools.pairwise(cuts):
        a, b = max(c0 - margin, 0), min(c1 + margin, h.shape[0])
        part = labels[a:b].copy()
        _plain_flood(level[a:b], part, mask[a:b], n_levels)
        out[c0:c1] = part[c0 - a : c1 - a]
    return out


def _plain_segment_maps(
    fg: np.ndarray, core: np.ndarray, pixel_um: float, workers: int, h_core: float = 0.05,
    min_area_um2: float = 35.0,
) -> np.ndarray:
    """segment_maps before its passes were fused: thresholds, erosion, np.where, bincount."""
    mask = fg >= 0.5
    seeds = mask & (core >= 0.4)
    markers, _ = ndi.label(seeds)
    inner = ndi.binary_erosion(seeds)
    todo = mask & ~inner
    marks = np.where(todo, markers, 0).astype(np.int32)
    pieces, n_pieces = ndi.label(todo)
    at = np.flatnonzero(seeds & ~inner)
    pairs = np.unique(np.stack([pieces.ravel()[at], marks.ravel()[at]]), axis=1)
    n_marks = np.bincount(pairs[0], minlength=n_pieces + 1)
    owner = np.zeros(n_pieces + 1, np.int32)
    single = n_marks[pairs[0]] == 1
    owner[pairs[0][single]] = pairs[1][single]
    owner[0] = 0
    labels = owner[pieces]
    crowded = (n_marks > 1)[pieces]
    if crowded.any():
        flooded = flood_levels(-core, marks, crowded, workers=workers, seam_px=_SEAM_UM / pixel_um)
        labels = np.where(crowded, flooded, labels)
    labels = np.where(inner, markers, labels).astype(np.int32)
    orphans, n_orphans = ndi.label(mask & (labels == 0))
    if n_orphans:
        labels = np.where(orphans > 0, orphans + labels.max(), labels).astype(np.int32)
    if h_core > 0:
        peak = np.zeros(int(labels.max()) + 1, np.float32)
        np.maximum.at(peak, labels.ravel(), core.ravel())
        labels = _merge_shallow(labels, core, peak, h_core)[0]
    area = np.bincount(labels.ravel(), minlength=int(labels.max()) + 1)
    keep = area >= min_area_um2 / pixel_um**2
    keep[0] = False
    lut = np.zeros(area.size, np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lut[labels]


def _scene(seed: int, shape: tuple[int, int] = (480, 300), n: int = 70) -> tuple[np.ndarray, ...]:
    """Maps of touching round cells (cores fall off from the centre), stray foreground, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    fg = np.zeros(shape, np.float32)
    core = np.zeros(shape, np.float32)
    for _ in range(n):
        cy, cx = rng.uniform(-5, shape[0] + 5), rng.uniform(-5, shape[1] + 5)
        d = np.hypot(yy - cy, xx - cx) / rng.uniform(4, 16)
        core = np.maximum(core, np.clip(1 - d, 0, 1) * rng.uniform(0.3, 1))
        fg = np.maximum(fg, (d < rng.uniform(1.1, 1.6)) * rng.uniform(0.6, 1))
    fg += rng.normal(0, 0.15, shape).astype(np.float32)  # ragged edges and stray specks
    core = np.clip(core + rng.normal(0, 0.03, shape), 0, 1).astype(np.float32)
    if seed % 2:
        core = np.round(core * 16) / 16  # few distinct heights: ties everywhere
    return np.clip(fg, 0, 1).astype(np.float32), core.astype(np.float32)


@pytest.mark.parametrize(("n_levels", "workers"), [(8, 1), (4096, 1), (8, 2), (300, 3)])
def test_flood_levels_equals_a_plain_hierarchical_queue(n_levels: int, workers: int) -> None:
    rng = np.random.default_rng(n_levels + workers)
    height = ndi.gaussian_filter(rng.normal(size=(90, 70)), 3).astype(np.float32)
    markers, _ = ndi.label(height < np.percentile(height, 4))
    mask = ndi.gaussian_filter(rng.normal(size=(90, 70)), 2) < 0.1
    ours = flood_levels(height, markers, mask, n_levels=n_levels, workers=workers, seam_px=6)
    plain = _plain_flood_levels(height, markers, mask, n_levels, workers, 6)
    assert np.array_equal(ours, plain)


def _decode(
    state: np.ndarray, seeds: np.ndarray, levels: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Labels (-1: to flood) and levels (-1: blocked) of a padded band state, unpadded."""
    lev = np.where(state < 0, -state.astype(np.int64) - 1, -1)
    lev[seeds] = levels
    labels = np.where(state < 0, -1, state)
    inner = (slice(1, -1), slice(1, -1))
    grid = (shape[0] + 2, shape[1] + 2)
    return labels.reshape(grid)[inner], lev.reshape(grid)[inner]


@pytest.mark.parametrize("n_levels", [2, 255, 4096, 65535])
def test_band_states_quantise_as_numpy(n_levels: int) -> None:
    # The flood's levels are NumPy's float32 arithmetic to the bit: rint((h - lo) * scale).
    rng = np.random.default_rng(n_levels)
    core = rng.random((150, 64)).astype(np.float32) ** 3
    core[::9] = np.round(core[::9] * 64) / 64  # exact halves after scaling
    markers, _ = ndi.label(core > 0.7)
    pieces = (np.arange(64) // 16 + 1)[None, :].repeat(150, 0).astype(np.int32)
    crowded = np.array([False, True, True, False, True])
    h, mask = -core, crowded[pieces]
    lo, hi = float(h[mask].min()), float(h[mask].max())
    plain = np.clip(np.rint((h - lo) * ((n_levels - 1) / (hi - lo))), 0, n_levels - 1)
    lo32, scale32 = quantiser(lo, hi, n_levels)
    for build in (
        lambda: _levels_state(h, markers.astype(np.int32), mask, lo32, scale32, n_levels - 1,
                              30, 150),
        lambda: pieces_state(core, markers, pieces, crowded, lo32, scale32, n_levels - 1, 30, 150),
    ):
        labels, level = _decode(*build(), (120, 64))
        assert np.array_equal(level[mask[30:]], plain[30:][mask[30:]])
        assert np.array_equal(labels, np.where(mask, np.where(markers > 0, markers, -1), 0)[30:])
        assert (level[~mask[30:]] == -1).all()


@pytest.mark.parametrize("workers", [1, 3])
def test_split_seeds_equals_thresholds_and_erosion(workers: int) -> None:
    fg, core = _scene(0, (200, 90))
    core[::7] = np.float32(0.4)  # exactly on the cut (float32 0.4 is above 0.4)
    fg[:, ::5] = np.float32(0.5)
    seeds, todo, bad_fg, bad_core = split_seeds(fg, core, 0.5, 0.4, workers)
    plain = (fg >= 0.5) & (core >= 0.4)
    assert np.array_equal(seeds, plain)
    assert np.array_equal(todo, (fg >= 0.5) & ~ndi.binary_erosion(plain))
    assert bad_fg == bad_core == 0
    fg[3, 4], core[150, 2], core[0, 0] = np.nan, np.inf, -np.inf
    assert split_seeds(fg, core, 0.5, 0.4, workers)[2:] == (1, 2)


def test_piece_marks_equals_unique_pairs() -> None:
    fg, core = _scene(2)
    seeds, todo, _, _ = split_seeds(fg, core, 0.5, 0.4, 2)
    markers, _ = ndi.label(seeds)
    pieces, n_pieces = ndi.label(todo)
    first, crowded, (lo, hi) = piece_marks(pieces, n_pieces, markers, core, 3)
    rim = todo & (markers > 0)
    pairs = np.unique(np.stack([pieces[rim], markers[rim]]), axis=1)
    n_marks = np.bincount(pairs[0], minlength=n_pieces + 1)
    assert np.array_equal(crowded, n_marks > 1)
    assert np.array_equal(first == 0, n_marks == 0)
    single = n_marks[pairs[0]] == 1
    assert np.array_equal(first[pairs[0][single]], pairs[1][single])
    in_crowded = crowded[pieces]
    assert (lo, hi) == (float(core[in_crowded].min()), float(core[in_crowded].max()))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("workers", [1, 2])
def test_segment_maps_equals_the_plain_formulation(seed: int, workers: int) -> None:
    fg, core = _scene(seed)
    ours = segment_maps(fg, core, pixel_um=1.0, workers=workers)
    assert np.array_equal(ours, _plain_segment_maps(fg, core, 1.0, workers))
    assert ours.dtype == np.int32 and ours.max() > 20


def test_segment_maps_with_merging_and_no_area_cut_equals_the_plain_formulation() -> None:
    fg, core = _scene(5)
    for kw in ({"h_core": 0.3}, {"min_area_um2": 0.0}, {"h_core": 0.2, "min_area_um2": 200.0}):
        ours = segment_maps(fg, core, pixel_um=1.0, workers=2, **kw)
        assert np.array_equal(ours, _plain_segment_maps(fg, core, 1.0, 2, **kw)), kw


def test_a_region_cut_off_in_its_band_becomes_cells_numbered_as_before() -> None:
    # An arch: two seeds on its top bar, its legs cross the band cut (row 100, 10 context
    # rows at pixel_um 6): below row 90 the legs reach no seed, so they are cells of their
    # own, numbered in raster order among the marker-less blobs around them.
    fg = np.zeros((200, 120), np.float32)
    core = np.full((200, 120), 0.2, np.float32)
    fg[20:26, 10:101] = fg[20:150, 10:15] = fg[20:150, 96:101] = 1.0
    core[21:25, 25:35] = core[21:25, 70:80] = 0.9
    fg[5:8, 50:53] = fg[120:124, 50:55] = fg[180:183, 3:6] = 1.0  # no seeds
    pixel_um = _SEAM_UM / 10
    seeds, todo, _, _ = split_seeds(fg, core, 0.5, 0.4, 2)
    markers, n_markers = ndi.label(seeds)
    pieces, n_pieces = ndi.label(todo)
    first, crowded, core_range = piece_marks(pieces, n_pieces, markers, core, 2)
    owner = np.where(crowded, 0, first).astype(np.int32)
    missed = flood_pieces(core, markers, pieces, crowded, owner, core_range, 2, 10)[1]
    assert missed > 0
    kw = {"min_area_um2": 0.0, "h_core": 0.0}  # (h 0.05 would merge the flat legs)
    ours = segment_maps(fg, core, pixel_um=pixel_um, workers=2, **kw)
    assert np.array_equal(ours, _plain_segment_maps(fg, core, pixel_um, 2, **kw))
    assert ours.max() == n_markers + 5  # 2 legs and 3 blobs


def test_edge_cases_equal_the_plain_formulation() -> None:
    yy, xx = np.mgrid[:64, :80]
    disc = np.hypot(yy - 30, xx - 40) / 12
    cases = {
        "empty": (np.zeros((64, 80)), np.zeros((64, 80))),
        "no seeds": ((disc < 1) | (xx > 70), np.zeros((64, 80))),
        "one cell": (disc < 1.3, np.clip(1 - disc, 0, 1)),
        "all seed": (np.ones((64, 80)), np.ones((64, 80))),
        "seeds on the edges": (np.ones((64, 80)), (yy % 63 == 0) | (xx % 79 == 0) | (disc < 1)),
    }
    for name, maps in cases.items():
        fg, core = cases[name] = tuple(np.asarray(m, np.float32) for m in maps)
        ours = segment_maps(fg, core, pixel_um=1.0, workers=2)
        assert np.array_equal(ours, _plain_segment_maps(fg, core, 1.0, 2)), name
    assert not segment_maps(*cases["empty"], pixel_um=1.0).any()
    assert segment_maps(*cases["one cell"], pixel_um=1.0).max() == 1


def test_renumber_drops_small_and_absent_labels() -> None:
    labels = np.zeros((130, 40), np.int32)
    labels[:60, :10], labels[70:, 20:22], labels[0, 39], labels[100:, 30:] = 3, 7, 8, 2
    area = np.bincount(labels.ravel())
    for min_area in (0.0, 5.0, 300.0):
        keep = area >= min_area
        keep[0] = False
        lut = np.zeros(area.size, np.int32)
        lut[keep] = np.arange(1, int(keep.sum()) + 1)
        ours = renumber(labels.copy(), 20, min_area, 3)  # 20: a bound above the largest
        assert np.array_equal(ours, lut[labels]), min_area


def test_non_finite_maps_are_refused() -> None:
    fg, core = _scene(0, (64, 64))
    bad = fg.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="foreground contains NaN"):
        segment_maps(bad, core, pixel_um=1.0)
    bad = core.copy()
    bad[60, 1] = np.inf
    with pytest.raises(ValueError, match="core map must be finite"):
        segment_maps(fg, bad, pixel_um=1.0)


def _plain_saddles(labels: np.ndarray, height: np.ndarray, n: int) -> tuple[np.ndarray, dict]:
    """label_saddles as NumPy: np.maximum.at, shifted comparisons, a dict of max saddles."""
    peak = np.zeros(n + 1, np.float32)
    np.maximum.at(peak, labels.ravel(), height.ravel())
    best: dict[tuple[int, int], float] = {}
    for la, lb, ha, hb in ((labels[:, :-1], labels[:, 1:], height[:, :-1], height[:, 1:]),
                           (labels[:-1], labels[1:], height[:-1], height[1:])):
        edge = (la != lb) & (la > 0) & (lb > 0)
        for a, b, s in zip(la[edge], lb[edge], np.minimum(ha[edge], hb[edge]), strict=True):
            key = (int(min(a, b)), int(max(a, b)))
            best[key] = max(best.get(key, -np.inf), float(s))
    return peak, best


@pytest.mark.parametrize("seed", [0, 5])
def test_label_saddles_equal_the_plain_formulation(seed: int) -> None:
    fg, core = _scene(seed)
    labels = segment_maps(fg, core, pixel_um=1.0, h_core=0.0, min_area_um2=0.0)
    n = int(labels.max())
    peak, lo, hi, saddle = label_saddles(labels, core, n)
    want_peak, want = _plain_saddles(labels, core, n)
    got: dict[tuple[int, int], float] = {}
    for a, b, s in zip(lo, hi, saddle, strict=True):
        assert a < b
        got[(int(a), int(b))] = max(got.get((int(a), int(b)), -np.inf), float(s))
    assert np.array_equal(peak[1:], want_peak[1:])  # (label 0, the background: not a cell)
    assert got == want and len(want) > 50
    assert lo.size < sum(1 for _ in want) * 20  # runs along a row are one edge
