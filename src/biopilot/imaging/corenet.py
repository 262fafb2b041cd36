"""CoreNet: a second small U-Net that sharpens CellNet's core map where cells touch.

CellNet's core map (each cell's distance to its border over its largest) is what splits
touching cells, and on dense frames it is where the segmentation loses (session 11: with
CellNet's own foreground and perfect cores, F1 at 80 % confluence rose from 0.81 to 0.96).
CellNet is at capacity there: fine-tuning it further changed nothing. CoreNet is a second
network trained on CellNet's *output*: it reads the folded field that CellNet read and the
twelve folded channels CellNet answered (phase, foreground and core logits of each 2 x 2
block) and adds a correction to the four core logits. It works in CellNet's folded domain, at
half resolution, so it costs no full-frame pass of its own, and it trains on a CPU in
minutes because CellNet's answers are computed once per training frame (a stacked network;
Wolpert 1992's stacked generalisation, here a residual refinement stage).

References
----------
.. [1] Wolpert, D. H. (1992). Stacked generalization. Neural Networks 5(2), 241-259.
.. [2] Ronneberger, O., Fischer, P. & Brox, T. (2015). U-Net: convolutional networks for
   biomedical image segmentation. MICCAI, LNCS 9351, 234-241.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from biopilot.imaging.netfile import read_net_file, ready_net, shipped_weights, write_net_file
from biopilot.imaging.pooling import unet_levels, unet_pass

__all__ = [
    "CoreNet",
    "default_corenet_path",
    "load_corenet",
    "load_default_corenet",
    "save_corenet",
]

#: Version of the saved-file layout; :func:`load_corenet` refuses any other.
FORMAT_VERSION = 1
_WEIGHTS = "corenet.pt"
_FOLDED = 12  # CellNet's folded channels, in and out (3 x 2 x 2)
CORE = slice(8, 12)  # the core logits among CellNet's folded output channels


class CoreNet(nn.Module):
    """U-Net on CellNet's folded input and output; ``widths`` are the channels per level.

    ``forward(x, y)`` takes CellNet's folded input ``x`` and its folded output ``y`` (phase
    with the gain applied, foreground and core logits), both (N, 12, h, w), and returns the
    correction to add to ``y[:, 8:12]``, the core logits (N, 4, h, w). The head starts at
    zero: an untrained CoreNet leaves CellNet's cores as they are.
    """

    metadata_: dict[str, Any]  # how the weights were made (set by load_corenet)

    def __init__(self, widths: tuple[int, ...] = (16, 32, 48)) -> None:
        super().__init__()
        self.metadata_ = {}
        self.widths = tuple(int(w) for w in widths)
        self.enc, self.up, self.dec = unet_levels(2 * _FOLDED, self.widths, _block)
        self.head = nn.Conv2d(self.widths[0], 4, 1)
        with torch.no_grad():  # start as the identity: CellNet's cores unchanged
            self.head.weight.zero_()
            self.head.bias.zero_()  # type: ignore[union-attr]

    @property
    def multiple(self) -> int:
        """Folded sides must be multiples of this."""
        return int(2 ** (len(self.widths) - 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N, 12, h, w) folded input and CellNet output -> (N, 4, h, w) core-logit correction."""
        # the phase in units of ~3 rad and the logits as probabilities: inputs of order 1
        h = torch.cat([x, y[:, :4] / 3.0, torch.sigmoid(y[:, 4:])], 1)
        return self.head(unet_pass(h, self.enc, self.up, self.dec))


def _block(c_in: int, c_out: int) -> nn.Sequential:
    """Two 3 x 3 convolutions with ReLU (no batch norm: nothing to fold at inference)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.ReLU(inplace=True),
    )


def save_corenet(net: CoreNet, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write weights, widths and metadata to ``path``, the metadata also to a ``.json`` beside."""
    return write_net_file(net, path, kind="corenet", format_version=FORMAT_VERSION,
                          widths=net.widths, metadata=metadata)


def load_corenet(path: str | Path, *, device: str = "cpu") -> CoreNet:
    """Read a network written by :func:`save_corenet` (tensors only, no network access).

    Raises
    ------
    ValueError
        If the file is not a CoreNet file or has another format version.
    """
    widths, state, metadata = read_net_file(path, kind="corenet", name="CoreNet",
                                            format_version=FORMAT_VERSION,
                                            retrain="biopilot qc train-cores")
    return ready_net(CoreNet(widths), state, metadata, device)


def default_corenet_path() -> Path:
    """Path of the CoreNet weights shipped inside the package."""
    return shipped_weights(_WEIGHTS)


def load_default_corenet(device: str = "cpu") -> CoreNet:
    """The shipped CoreNet (``imaging/weights/corenet.pt``), loaded offline."""
    return load_corenet(default_corenet_path(), device=device)
