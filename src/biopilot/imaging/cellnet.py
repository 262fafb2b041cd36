"""CellNet: a small U-Net from a back-propagated hologram to phase, cell foreground and cell cores.

Why a network here: one in-line hologram superposes each cell and its out-of-focus twin
image. Iterative retrieval (:func:`~biopilot.imaging.phase.retrieve_phase`) removes the twin
with a support constraint, which fails where cells cover most of the field (no medium left
to constrain) and costs ~80 full-frame FFTs; unwrapping one wrapped map cannot follow the
rims of cells thicker than 2 pi. A convolutional network trained on the twin's simulated
holograms learns the twin image, the unwrapping and the cell boundaries at once, from the
back-propagated field, in one pass (Rivenson et al. 2018 showed the phase recovery; the
foreground + normalised-distance heads with a marker watershed are the "deep watershed" of
Bai & Urtasun 2017).

The input is ``(Re u - 1, Im u, arg u)`` of the back-propagated field ``u`` (1 in the medium),
folded 2 x 2 into channels (``PixelUnshuffle``: lossless, 4x fewer positions; cells are 5-18
px across); a 4-level U-Net; the output unfolded back to full resolution, 3 channels:
phase in radians (unwrapped, 0 in the medium), foreground logit and core logit (the target
of the core head is each cell's distance to its border divided by its largest, so touching
cells have separate cores).

References
----------
.. [1] Rivenson, Y., Zhang, Y., Gunaydin, H., Teng, D. & Ozcan, A. (2018). Phase recovery
   and holographic image reconstruction using deep learning in neural networks. Light Sci.
   Appl. 7, 17141.
.. [2] Ronneberger, O., Fischer, P. & Brox, T. (2015). U-Net: convolutional networks for
   biomedical image segmentation. MICCAI, LNCS 9351, 234-241.
.. [3] Bai, M. & Urtasun, R. (2017). Deep watershed transform for instance segmentation.
   CVPR, 5221-5229.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from biopilot.imaging.cellnet_io import fold_view, unfold_view_add
from biopilot.imaging.corenet import CORE, CoreNet
from biopilot.imaging.netfile import read_net_file, ready_net, shipped_weights, write_net_file
from biopilot.imaging.pooling import unet_levels, unet_pass

__all__ = [
    "CellMaps",
    "CellNet",
    "default_cellnet_path",
    "load_cellnet",
    "load_default_cellnet",
    "net_input",
    "predict_maps",
    "save_cellnet",
]

#: Version of the saved-file layout; :func:`load_cellnet` refuses any other.
FORMAT_VERSION = 1
_WEIGHTS = "cellnet.pt"
_FOLD = 2  # PixelUnshuffle factor
Precision = Literal["auto", "float32", "bfloat16"]
_IN = 3  # input channels: Re u - 1, Im u, arg u


@dataclass(frozen=True)
class CellMaps:
    """What :class:`CellNet` sees in a frame, per pixel.

    Attributes
    ----------
    phase_rad : (H, W) float32
        Quantitative phase, unwrapped, 0 in the medium.
    foreground : (H, W) float32
        Probability that the pixel belongs to a cell (not medium, not debris).
    core : (H, W) float32
        Predicted distance to the cell's border over the cell's largest (0-1): peaks at
        each cell's centre, low on the borders between touching cells.
    """

    phase_rad: NDArray[np.float32]
    foreground: NDArray[np.float32]
    core: NDArray[np.float32]


class CellNet(nn.Module):
    """U-Net on 2 x 2-folded field channels; ``widths`` are the channels per level."""

    phase_gain: torch.Tensor
    metadata_: dict[str, Any]  # how the weights were made (set by load_cellnet)

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 96)) -> None:
        super().__init__()
        self.metadata_ = {}
        self.widths = tuple(int(w) for w in widths)
        self.fold = nn.PixelUnshuffle(_FOLD)
        self.unfold = nn.PixelShuffle(_FOLD)
        self.enc, self.up, self.dec = unet_levels(_IN * _FOLD * _FOLD, self.widths, _block)
        self.head = nn.Conv2d(self.widths[0], 3 * _FOLD * _FOLD, 1)
        # Calibration of the phase output (see cellnet_train.calibrate_phase_gain); saved.
        self.register_buffer("phase_gain", torch.tensor(1.0))
        self.gain_folded = False

    def fused(self) -> CellNet:
        """An inference copy with each batch norm folded into its convolution (~15 % faster).

        Same outputs to float rounding; for evaluation only (the copy cannot be trained).
        """
        out = copy.deepcopy(self).eval()
        for blocks in (out.enc, out.dec):
            for i, b in enumerate(blocks):
                c1, n1, r1, c2, n2, r2 = b.children()  # see _block
                assert isinstance(c1, nn.Conv2d) and isinstance(n1, nn.BatchNorm2d)
                assert isinstance(c2, nn.Conv2d) and isinstance(n2, nn.BatchNorm2d)
                blocks[i] = nn.Sequential(
                    fuse_conv_bn_eval(c1, n1), r1, fuse_conv_bn_eval(c2, n2), r2
                )
        # The phase gain scales the head's phase outputs (channels 0..3, unfolded into the
        # phase map): folded in, forward skips a full-resolution concatenation (~0.2 s, 4K).
        k = _FOLD * _FOLD
        with torch.no_grad():
            out.head.weight[:k] *= out.phase_gain
            if out.head.bias is not None:
                out.head.bias[:k] *= out.phase_gain
        out.gain_folded = True  # (a fused copy cannot be fused again: its blocks lack BN)
        return out.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (fold times the poolings)."""
        return _FOLD * 2 ** (len(self.widths) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) field channels -> (N, 3, H, W): phase, foreground logit, core logit."""
        y = self.unfold(self.body(self.fold(x)))
        if self.gain_folded:  # see fused(): the head applies the gain already
            return y
        return torch.cat([y[:, :1] * self.phase_gain, y[:, 1:]], 1)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """The U-Net between the folds: (N, 12, H/2, W/2) -> (N, 12, H/2, W/2), before the
        phase gain unless it is folded in (see :mod:`~biopilot.imaging.cellnet_io`)."""
        return self.head(unet_pass(x, self.enc, self.up, self.dec))


def _block(c_in: int, c_out: int) -> nn.Sequential:
    """Two 3 x 3 convolutions with batch norm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def net_input(field: NDArray[np.complexfloating]) -> NDArray[np.float32]:
    """(3, H, W) network input from a back-propagated field: ``Re u - 1``, ``Im u``, ``arg u``.

    The wrapped phase ``arg u`` is a function of the other two, but not one a few ReLU
    convolutions approximate well; given, it is already the answer on thin cells in focus.
    """
    u = np.asarray(field)
    if u.ndim != 2 or not np.iscomplexobj(u):
        raise ValueError(f"field must be a 2-D complex array, got {u.dtype} {u.shape}")
    out = np.empty((_IN, *u.shape), np.float32)
    out[0] = u.real - 1.0
    out[1] = u.imag
    out[2] = np.angle(u)
    if not np.isfinite(out).all():
        raise ValueError("field holds NaN or infinite values")
    return out


def predict_maps(
    net: CellNet,
    field: NDArray[np.complexfloating],
    *,
    device: str | None = None,
    precision: Precision = "auto",
    views: int = 1,
    cores: CoreNet | None = None,
) -> CellMaps:
    """Run ``net`` on a whole back-propagated field (any size; padded with medium).

    Parameters
    ----------
    net : CellNet
        A trained network (see :func:`load_default_cellnet`).
    field : (H, W) complex array
        Back-propagated field from :func:`~biopilot.imaging.phase.backpropagate`.
    device : str, optional
        Torch device; default the network's own.
    precision : {"auto", "float32", "bfloat16"}
        Arithmetic of the convolutions. ``"auto"``: bfloat16 on a CPU that multiplies it in
        hardware, with AMX tiles (Intel Sapphire Rapids and later) or AVX512-BF16 (AMD Zen 4
        and later, Intel Cooper Lake), where it halves the network's time on a 4K frame
        (AMX 3.1 -> 1.5 s, AMD EPYC 1.9-2.4 -> 0.9-1.1 s on 2 cores) and moved no figure
        beyond the frame-to-frame spread (phase RMSE on cells within 0.001 rad, F1 within
        0.001, dry mass within 0.3 %: RESULTS.md); float32 elsewhere (emulated bfloat16 is
        slower, and CUDA runs are validated in float32).
    views : {1, 2, 4, 8}
        Test-time augmentation: the maps averaged over this many mirror images of the field
        (flips, then transposes), each mapped back; the network was trained on all of them.
        On the benchmark's 4K frames 4 views took the F1 at 80 % confluence from 0.79 to 0.82,
        its count error from 11.5 % to 7.1 % and the phase error on cells down ~7 %, for 4x
        the network's time (RESULTS.md); with ``cores`` (session 13) 0.866 -> 0.893 (8
        views 0.897), count error 9.5 -> 7.7 %.
    cores : CoreNet, optional
        A second network that corrects the core map from what ``net`` read and answered
        (:mod:`~biopilot.imaging.corenet`), in each view; None leaves ``net``'s cores.

    Returns
    -------
    CellMaps
    """
    if precision not in ("auto", "float32", "bfloat16"):
        raise ValueError(f"precision must be 'auto', 'float32' or 'bfloat16', got {precision!r}")
    if views not in (1, 2, 4, 8):
        raise ValueError(f"views must be 1, 2, 4 or 8, got {views!r}")
    u = np.asarray(field)
    if u.ndim != 2 or not np.iscomplexobj(u):
        raise ValueError(f"field must be a 2-D complex array, got {u.dtype} {u.shape}")
    h, w = u.shape
    m = net.multiple if cores is None else math.lcm(net.multiple, _FOLD * cores.multiple)
    grid = (h + -h % m, w + -w % m)  # padded with medium
    dev = torch.device(device) if device else next(net.parameters()).device
    was_training = net.training
    bf16 = precision == "bfloat16" or (
        precision == "auto" and dev.type == "cpu" and _cpu_has_fast_bf16()
    )
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16)
    gain = 1.0 if net.gain_folded else float(net.phase_gain)
    acc = np.zeros((3, h, w), np.float32)
    net.eval()  # (channels-last weights, as load_cellnet makes them, are ~2x faster on CPU)
    with torch.inference_mode(), autocast:
        for k in range(views):  # the dihedral group of the square: flips, then transposes
            view = (bool(k & 4), bool(k & 2), bool(k & 1))  # transpose, flip rows, flip cols
            # bfloat16 in and out as raw bits: no full-frame conversion pass either way
            x = torch.from_numpy(fold_view(u, grid, view, bfloat16=bf16))
            x = x.view(torch.bfloat16) if bf16 else x
            x = x[None].permute(0, 3, 1, 2).to(dev)
            y = net.body(x)  # channels-last in and out
            if cores is not None:  # CoreNet reads the phase with its gain, as trained
                seen = y if net.gain_folded else torch.cat([y[:, :4] * gain, y[:, 4:]], 1)
                y[:, CORE] += cores(x, seen)
            y = y.permute(0, 2, 3, 1)[0].cpu()
            y = y.to(torch.bfloat16).view(torch.int16) if bf16 else y.float()
            unfold_view_add(y.numpy().view(np.uint16) if bf16 else y.numpy(), acc, view, gain)
    net.train(was_training)
    if views > 1:
        acc /= views
    return CellMaps(phase_rad=acc[0], foreground=acc[1], core=acc[2])


def save_cellnet(net: CellNet, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write weights, widths and metadata to ``path``, the metadata also to a ``.json`` beside."""
    return write_net_file(net, path, kind="cellnet", format_version=FORMAT_VERSION,
                          widths=net.widths, metadata=metadata)


def load_cellnet(path: str | Path, *, device: str = "cpu") -> CellNet:
    """Read a network written by :func:`save_cellnet` (tensors only, no network access).

    The training metadata is on the returned network as ``metadata_``.

    Raises
    ------
    ValueError
        If the file is not a CellNet file or has another format version.
    """
    widths, state, metadata = read_net_file(path, kind="cellnet", name="CellNet",
                                            format_version=FORMAT_VERSION,
                                            retrain="biopilot qc train-net")
    state.setdefault("phase_gain", torch.tensor(1.0))  # files from before the calibration
    return ready_net(CellNet(widths), state, metadata, device)


def default_cellnet_path() -> Path:
    """Path of the network weights shipped inside the package."""
    return shipped_weights(_WEIGHTS)


def load_default_cellnet(device: str = "cpu") -> CellNet:
    """The shipped network (``imaging/weights/cellnet.pt``), loaded offline."""
    return load_cellnet(default_cellnet_path(), device=device)


@functools.cache
def _cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware: AMX tiles or AVX512-BF16 (torch's probes).

    Without either, oneDNN emulates bfloat16 and it is slower than float32.
    """
    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        probe = getattr(torch.cpu, name, None)  # private; absent -> not this one
        try:
            if probe is not None and probe():
                return True
        except RuntimeError:
            continue
    return False
