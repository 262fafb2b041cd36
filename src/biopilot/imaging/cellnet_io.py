"""CellNet's input and output at full resolution, folded 2 x 2 in one compiled pass each.

:class:`~biopilot.imaging.cellnet.CellNet` sees the back-propagated field as three channels
(``Re u - 1``, ``Im u``, ``arg u``) folded 2 x 2 into twelve (``PixelUnshuffle``), and answers
twelve channels unfolded back into phase, foreground and core. In torch that is five full-
frame passes on the way in (the channels, the padding, the channels-last copy, the fold and
its copy) and four on the way out; on a 4K frame with 2 cores they took 0.45 s of CellNet's
1.4 s. Here each direction is one loop over the pixels, in row bands on all cores, and
handles the mirror images of test-time augmentation by index arithmetic instead of copies
(written by hand: no library fuses these). The wrapped phase comes from NumPy's vectorised
arctan2, faster than a scalar one in the loop. Under bfloat16 arithmetic both cross as raw
bfloat16 bits in uint16 arrays (NumPy has no bfloat16), rounded as torch rounds: no
conversion pass on either side (0.08 s a 4K frame with 2 cores).

A *view* is the padded field transposed (``tr``), then flipped along rows (``fr``) and
columns (``fc``), as :func:`~biopilot.imaging.cellnet.predict_maps` enumerates them.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numba import types
from numba.extending import overload
from numpy.typing import NDArray

from biopilot.models.bands import in_bands

__all__ = ["fold_view", "unfold_view_add"]

_FOLD = 2
_IN = 3  # input channels: Re u - 1, Im u, arg u
_OUT = 3  # output channels: phase, foreground logit, core logit


def fold_view(
    field: NDArray[np.complexfloating],
    padded: tuple[int, int],
    view: tuple[bool, bool, bool] = (False, False, False),
    *,
    bfloat16: bool = False,
) -> NDArray[np.float32] | NDArray[np.uint16]:
    """The folded network input of one view of ``field``, channels last.

    Parameters
    ----------
    field : (h, w) complex array
        Back-propagated field (1 in the medium).
    padded : (int, int)
        Grid the field is padded to with medium (bottom and right), both even.
    view : (tr, fr, fc)
        Transpose, flip rows, flip columns (applied in that order to the padded field).
    bfloat16 : bool
        Return the values rounded to bfloat16 (to nearest even, as torch rounds), as their
        bits in uint16 (``torch.from_numpy(out).view(torch.bfloat16)``): the network's input
        under bfloat16 arithmetic without a further full-frame conversion.

    Returns
    -------
    (A / 2, B / 2, 12) float32, or uint16 bfloat16 bits
        ``out[a2, b2, 4 c + 2 i + j]`` is channel ``c`` of the view at ``(2 a2 + i, 2 b2 + j)``,
        with ``(A, B)`` the view's shape.

    Raises
    ------
    ValueError
        If the field holds NaN or infinite values, or the grid is odd or too small.
    """
    u = np.ascontiguousarray(field, np.complex64)
    hp, wp = padded
    if hp % _FOLD or wp % _FOLD or hp < u.shape[0] or wp < u.shape[1]:
        raise ValueError(f"padded grid {padded} must be even and hold the field {u.shape}")
    tr, fr, fc = (bool(v) for v in view)
    a, b = (wp, hp) if tr else (hp, wp)
    out = np.empty((a // _FOLD, b // _FOLD, _IN * _FOLD * _FOLD),
                   np.uint16 if bfloat16 else np.float32)
    # NumPy's SIMD arctan2 (30 ms a 4K frame, one core) beats the compiled loop's scalar one.
    ang = np.angle(u)
    bad = in_bands(lambda lo, hi: _fold(u, ang, out, hp, wp, tr, fr, fc, lo, hi), a // _FOLD)
    if sum(bad):
        raise ValueError("field holds NaN or infinite values")
    return out


def unfold_view_add(
    folded: NDArray[np.float32],
    out: NDArray[np.float32],
    view: tuple[bool, bool, bool] = (False, False, False),
    phase_gain: float = 1.0,
) -> None:
    """Add the unfolded maps of one view's network output to ``out`` (the field's geometry).

    ``folded`` is the (A / 2, B / 2, 12) output for the view (channels last), float32 or
    bfloat16 bits in uint16 (read without a conversion pass); ``out`` a (3, h, w) float32
    accumulator: phase times ``phase_gain``, then the sigmoids of the foreground and core
    logits.
    """
    y = np.ascontiguousarray(folded)
    if y.dtype != np.uint16:
        y = y.astype(np.float32, copy=False)
    if out.dtype != np.float32 or out.ndim != 3 or out.shape[0] != _OUT:
        raise ValueError(f"out must be a (3, h, w) float32 array, got {out.dtype} {out.shape}")
    if y.ndim != 3 or y.shape[2] != _OUT * _FOLD * _FOLD:
        raise ValueError(f"folded must be (A/2, B/2, 12), got {y.shape}")
    tr, fr, fc = (bool(v) for v in view)
    a, b = 2 * y.shape[0], 2 * y.shape[1]
    hp, wp = (b, a) if tr else (a, b)
    if out.shape[1] > hp or out.shape[2] > wp:
        raise ValueError(f"maps {out.shape[1:]} larger than the network's grid {(hp, wp)}")
    g = np.float32(phase_gain)
    in_bands(lambda lo, hi: _unfold_add(y, out, hp, wp, tr, fr, fc, g, lo, hi), out.shape[1])


@numba.njit(cache=True, nogil=True)
def _fold(
    u: NDArray[np.complex64], ang: NDArray[np.float32], out: NDArray[Any], hp: int,
    wp: int, tr: bool, fr: bool, fc: bool, lo: int, hi: int,
) -> int:  # pragma: no cover - compiled; covered through fold_view
    """Folded rows ``lo:hi`` (of ``out``) of the view; returns the non-finite samples seen."""
    h, w = u.shape
    na, nb = (wp, hp) if tr else (hp, wp)
    bad = 0
    for a2 in range(lo, hi):
        for i in range(2):
            a = 2 * a2 + i
            ap = na - 1 - a if fr else a
            for b in range(nb):
                bp = nb - 1 - b if fc else b
                py, px = (bp, ap) if tr else (ap, bp)
                k = i * 2 + (b & 1)
                if py < h and px < w:
                    v = u[py, px]
                    re, im = v.real, v.imag
                    if not (math.isfinite(re) and math.isfinite(im)):
                        bad += 1
                    _put(out, a2, b >> 1, k, re - np.float32(1.0))
                    _put(out, a2, b >> 1, 4 + k, im)
                    _put(out, a2, b >> 1, 8 + k, ang[py, px])
                else:  # medium: u = 1
                    _put(out, a2, b >> 1, k, np.float32(0.0))
                    _put(out, a2, b >> 1, 4 + k, np.float32(0.0))
                    _put(out, a2, b >> 1, 8 + k, np.float32(0.0))
    return bad


@numba.njit(cache=True, nogil=True)
def _unfold_add(
    y: NDArray[Any], out: NDArray[np.float32], hp: int, wp: int,
    tr: bool, fr: bool, fc: bool, gain: np.float32, lo: int, hi: int,
) -> int:  # pragma: no cover - compiled; covered through unfold_view_add
    """Rows ``lo:hi`` of ``out`` += the view's unfolded maps (sigmoid on the logits)."""
    na, nb = (wp, hp) if tr else (hp, wp)
    one = np.float32(1.0)
    for py in range(lo, hi):
        for px in range(out.shape[2]):
            ap, bp = (px, py) if tr else (py, px)
            a = na - 1 - ap if fr else ap
            b = nb - 1 - bp if fc else bp
            k = (a & 1) * 2 + (b & 1)
            a2, b2 = a >> 1, b >> 1
            out[0, py, px] += gain * _get(y, a2, b2, k)
            out[1, py, px] += one / (one + math.exp(-_get(y, a2, b2, 4 + k)))
            out[2, py, px] += one / (one + math.exp(-_get(y, a2, b2, 8 + k)))
    return 0


# Element access to float32 arrays, or to bfloat16 kept as its upper 16 bits in uint16 (NumPy
# has no bfloat16): a bit shift each way, in registers; chosen by dtype when compiled.
def _put(a: Any, i: int, j: int, k: int, v: Any) -> None:
    """``a[i, j, k] = v``, rounded to nearest even bfloat16 when ``a`` holds uint16 bits."""
    raise NotImplementedError("compiled only")  # pragma: no cover


def _get(a: Any, i: int, j: int, k: int) -> float:
    """``a[i, j, k]`` as float32, from bfloat16 bits when ``a`` holds uint16."""
    raise NotImplementedError("compiled only")  # pragma: no cover


@overload(_put)
def _put_typed(a: Any, i: Any, j: Any, k: Any, v: Any) -> Any:  # pragma: no cover - compiled
    if a.dtype == types.uint16:
        def to_bf16(a: Any, i: Any, j: Any, k: Any, v: Any) -> None:
            u = np.float32(v).view(np.uint32)
            a[i, j, k] = np.uint16((u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))) >> 16)
        return to_bf16

    def plain(a: Any, i: Any, j: Any, k: Any, v: Any) -> None:
        a[i, j, k] = v
    return plain


@overload(_get)
def _get_typed(a: Any, i: Any, j: Any, k: Any) -> Any:  # pragma: no cover - compiled
    if a.dtype == types.uint16:
        def from_bf16(a: Any, i: Any, j: Any, k: Any) -> Any:
            return np.uint32(np.uint32(a[i, j, k]) << 16).view(np.float32)
        return from_bf16

    def plain(a: Any, i: Any, j: Any, k: Any) -> Any:
        return a[i, j, k]
    return plain
