"""Inference max-pooling: torch's maps exactly, torch's own pooling wherever it must be."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from biopilot.imaging.pooling import max_pool2


@pytest.mark.parametrize("shape", [(5, 8, 16, 16), (1, 16, 30, 44), (2, 4, 7, 9)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_pair_maxima_equal_torch_max_pool(shape, dtype):
    x = torch.randn(*shape).to(dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        assert torch.equal(max_pool2(x), F.max_pool2d(x, 2))  # odd sides: torch's own
        assert torch.equal(max_pool2(x.contiguous()), F.max_pool2d(x, 2))  # NCHW


def test_training_keeps_torch_pooling_and_its_gradient():
    """A tie sends the whole gradient to one input, as max_pool2d does (not half to each)."""
    x = torch.zeros(1, 1, 2, 2).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    max_pool2(x).sum().backward()
    assert x.grad is not None and float(x.grad.sum()) == 1.0 and int((x.grad > 0).sum()) == 1
