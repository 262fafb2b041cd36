"""CellNet's compiled fold and unfold: the same maps as torch's folds, for every view."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from biopilot.imaging.cellnet import CellNet, net_input
from biopilot.imaging.cellnet_io import fold_view, unfold_view_add

VIEWS = [(bool(k & 4), bool(k & 2), bool(k & 1)) for k in range(8)]


def _field(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (np.exp(1j * rng.uniform(-3, 3, shape)) * rng.uniform(0.5, 1.5, shape)).astype(
        np.complex64
    )


def _torch_view(x: torch.Tensor, view: tuple[bool, bool, bool]) -> torch.Tensor:
    tr, fr, fc = view
    v = x.transpose(-1, -2) if tr else x
    flip = [d for d, on in ((-2, fr), (-1, fc)) if on]
    return torch.flip(v, flip) if flip else v


def _torch_unview(y: torch.Tensor, view: tuple[bool, bool, bool]) -> torch.Tensor:
    tr, fr, fc = view
    flip = [d for d, on in ((-2, fr), (-1, fc)) if on]
    y = torch.flip(y, flip) if flip else y
    return y.transpose(-1, -2) if tr else y


@pytest.mark.parametrize("view", VIEWS)
def test_fold_equals_padding_viewing_and_pixel_unshuffle(view):
    u = _field((37, 54))  # odd rows: padded to (48, 64) with medium
    x = F.pad(torch.from_numpy(net_input(u))[None], (0, 10, 0, 11))
    ref = F.pixel_unshuffle(_torch_view(x, view), 2)[0].permute(1, 2, 0).numpy()
    out = fold_view(u, (48, 64), view)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, atol=1e-6)


@pytest.mark.parametrize("view", VIEWS)
def test_unfold_maps_each_view_back_with_sigmoids_and_gain(view):
    rng = np.random.default_rng(1)
    h, w, hp, wp = 37, 54, 48, 64
    a, b = (wp, hp) if view[0] else (hp, wp)
    y = rng.normal(0, 3, (1, 12, a // 2, b // 2)).astype(np.float32)
    full = _torch_unview(F.pixel_shuffle(torch.from_numpy(y), 2), view)[0].numpy()
    acc = np.ones((3, h, w), np.float32)  # added to, not overwritten
    unfold_view_add(y[0].transpose(1, 2, 0), acc, view, phase_gain=1.5)
    np.testing.assert_allclose(acc[0], 1 + 1.5 * full[0, :h, :w], atol=1e-5)
    np.testing.assert_allclose(acc[1:], 1 + 1 / (1 + np.exp(-full[1:, :h, :w])), atol=1e-6)


@pytest.mark.parametrize("view", [VIEWS[0], VIEWS[7]])
def test_bfloat16_in_and_out_round_as_torch_does(view):
    """The bfloat16 input is torch's rounding of the float32 one, bit for bit; bfloat16
    output bits unfold to the same maps as their float32 values."""
    u = _field((37, 54), seed=3)
    want = torch.from_numpy(fold_view(u, (48, 64), view)).to(torch.bfloat16)
    got = torch.from_numpy(fold_view(u, (48, 64), view, bfloat16=True)).view(torch.bfloat16)
    assert torch.equal(got, want)
    y = torch.from_numpy(np.random.default_rng(4).normal(0, 3, (24, 32, 12)).astype(np.float32))
    a, b = (32, 24) if view[0] else (24, 32)
    y = y.reshape(a, b, 12).to(torch.bfloat16)
    from_bits, from_float = np.zeros((2, 3, 37, 54), np.float32)
    unfold_view_add(y.view(torch.int16).numpy().view(np.uint16), from_bits, view, 1.5)
    unfold_view_add(y.float().numpy(), from_float, view, 1.5)
    np.testing.assert_array_equal(from_bits, from_float)


def test_the_compiled_path_gives_the_network_s_own_forward():
    torch.manual_seed(0)
    net = CellNet(widths=(8, 16)).eval()
    u = _field((40, 52), seed=2)
    x = F.pad(torch.from_numpy(net_input(u))[None], (0, 4, 0, 0))
    with torch.no_grad():
        ref = net(x)[0, :, :, :52].numpy()
        folded = net.body(torch.from_numpy(fold_view(u, (40, 56)))[None].permute(0, 3, 1, 2))
    acc = np.zeros((3, 40, 52), np.float32)
    unfold_view_add(folded[0].permute(1, 2, 0).numpy(), acc, phase_gain=float(net.phase_gain))
    np.testing.assert_allclose(acc[0], ref[0], atol=1e-5)
    np.testing.assert_allclose(acc[1], 1 / (1 + np.exp(-ref[1])), atol=1e-6)


def test_bad_fields_and_grids_are_refused():
    bad = _field((16, 16))
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fold_view(bad, (16, 16))
    with pytest.raises(ValueError, match="even"):
        fold_view(_field((16, 16)), (17, 16))
    with pytest.raises(ValueError, match="hold the field"):
        fold_view(_field((16, 16)), (8, 16))
    with pytest.raises(ValueError, match="larger"):
        unfold_view_add(np.zeros((4, 4, 12), np.float32), np.zeros((3, 9, 8), np.float32))
