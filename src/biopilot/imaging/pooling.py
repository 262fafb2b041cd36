"""2 x 2 max-pooling for inference (no argmax indices), and the U-Net pass built on it."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["max_pool2", "unet_levels", "unet_pass"]


def max_pool2(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 2)``, as two maxima of neighbour pairs on channels-last maps.

    On the CPU ``max_pool2d`` also computes the argmax indices, even in inference mode, and
    writes them as int64: the pair maxima give the same maps 2-3x faster (CellNet's first
    pooling of a 4K frame in bfloat16, 53 -> 18 ms; the classifier's 1024 crops of
    8 x 16 x 16, 2.7 -> 0.8 ms). Tensors that need a gradient (training: ``torch.maximum``
    splits the gradient of ties), other layouts and odd sides go to ``F.max_pool2d``.
    """
    n, c, h, w = x.shape
    if x.requires_grad or h % 2 or w % 2 or not x.is_contiguous(
        memory_format=torch.channels_last
    ):
        return F.max_pool2d(x, 2)
    v = x.permute(0, 2, 3, 1).reshape(n, h // 2, 2, w // 2, 2 * c)  # a view: no copy
    rows = torch.maximum(v[:, :, 0], v[:, :, 1]).reshape(n, h // 2, w // 2, 2, c)
    return torch.maximum(rows[:, :, :, 0], rows[:, :, :, 1]).permute(0, 3, 1, 2)


def unet_pass(
    x: torch.Tensor, enc: Iterable[nn.Module], up: Iterable[nn.Module], dec: Iterable[nn.Module]
) -> torch.Tensor:
    """A U-Net's features before its head (CellNet, CoreNet): the encoder's blocks with a
    2 x 2 pooling between levels, then each up-sampling joined to its level's skip."""
    skips = []
    for i, block in enumerate(enc):
        if i:
            x = max_pool2(x)  # F.max_pool2d's maps, without its indices when inferring
        x = block(x)
        skips.append(x)
    skips.pop()
    for lift, block in zip(up, dec, strict=True):
        x = block(torch.cat([lift(x), skips.pop()], 1))
    return x


def unet_levels(
    c_in: int, widths: tuple[int, ...], block: Callable[[int, int], nn.Module]
) -> tuple[nn.ModuleList, nn.ModuleList, nn.ModuleList]:
    """The encoder, up-sampling and decoder modules of a U-Net for :func:`unet_pass`: one
    ``block(c_in, c_out)`` per level each way, 2 x 2 transposed convolutions between; the
    decoder ends at ``widths[0]`` channels."""
    enc, up, dec = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
    prev = c_in
    for w in widths:
        enc.append(block(prev, w))
        prev = w
    for w in reversed(widths[:-1]):
        up.append(nn.ConvTranspose2d(prev, w, 2, stride=2))
        dec.append(block(2 * w, w))
        prev = w
    return enc, up, dec
