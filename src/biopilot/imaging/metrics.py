"""Segmentation scoring against a ground-truth label mask: IoU matching, F1, count error."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components

__all__ = ["SegmentationScore", "match_labels", "score_segmentation"]


@dataclass(frozen=True)
class SegmentationScore:
    """Object-level agreement of a predicted label mask with the truth.

    Attributes
    ----------
    n_true, n_pred : int
        Objects in the truth and in the prediction.
    tp, fp, fn : int
        Matched pairs (IoU >= threshold), unmatched predictions, unmatched truths.
    precision, recall, f1 : float
        ``tp / n_pred``, ``tp / n_true`` and their harmonic mean.
    count_error : float
        ``|n_pred - n_true| / n_true`` (0 when both are empty).
    mean_iou : float
        Mean IoU over the matched pairs (NaN when none matched).
    """

    n_true: int
    n_pred: int
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    count_error: float
    mean_iou: float


def match_labels(
    true_labels: NDArray[np.integer],
    pred_labels: NDArray[np.integer],
    *,
    iou_threshold: float = 0.5,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Match predicted objects to true objects one-to-one by maximum total IoU.

    The IoU of every overlapping pair is computed from a sparse contingency table, then the
    Hungarian algorithm picks the one-to-one assignment; pairs under ``iou_threshold`` are
    dropped. Above 0.5 the matching is unique anyway (an object can overlap at most one
    other by more than half) and no assignment is solved; this is the object-level scoring
    of Caicedo et al. 2019 (Cytometry A 95:952) and the Data Science Bowl 2018.

    Parameters
    ----------
    true_labels, pred_labels : (H, W) ndarray of int
        Label masks of the same shape; 0 is background.
    iou_threshold : float
        Minimum intersection-over-union of a match, in (0, 1].

    Returns
    -------
    true_ids, pred_ids : ndarray of int64
        Labels of the matched pairs.
    iou : ndarray of float64
        Their IoU.

    Raises
    ------
    ValueError
        If the shapes differ or the threshold is outside (0, 1].
    """
    t = np.asarray(true_labels)
    p = np.asarray(pred_labels)
    if t.shape != p.shape:
        raise ValueError(f"label masks differ in shape: {t.shape} vs {p.shape}")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    t = t.ravel().astype(np.int64)
    p = p.ravel().astype(np.int64)
    area_t = np.bincount(t)
    area_p = np.bincount(p)
    both = (t > 0) & (p > 0)
    table = sparse.coo_matrix(
        (np.ones(int(both.sum()), np.int64), (t[both], p[both])),
        shape=(area_t.size, area_p.size),
    )
    table.sum_duplicates()
    rows, cols = table.row.astype(np.int64), table.col.astype(np.int64)
    inter = table.data.astype(np.float64)
    iou = inter / (area_t[rows] + area_p[cols] - inter)
    keep = iou >= iou_threshold
    rows, cols, iou = rows[keep], cols[keep], iou[keep]
    _, r_count = np.unique(rows, return_counts=True)
    _, c_count = np.unique(cols, return_counts=True)
    if rows.size == 0 or (r_count.max() == 1 and c_count.max() == 1):
        # Usual at IoU >= 0.5: each object has at most one partner, the pairs are the matching.
        return rows, cols, iou
    return _hungarian(rows, cols, iou)


def _hungarian(
    rows: NDArray[np.int64], cols: NDArray[np.int64], iou: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Maximum-IoU one-to-one matching, solved per connected group of candidate pairs."""
    ur, ri = np.unique(rows, return_inverse=True)
    uc, ci = np.unique(cols, return_inverse=True)
    graph = sparse.coo_matrix(
        (np.ones(ri.size), (ri, ur.size + ci)), shape=(ur.size + uc.size,) * 2
    )
    _, comp = connected_components(graph, directed=False)
    group = comp[ri]
    out_r, out_c, out_v = [], [], []
    for g in np.unique(group):
        sel = group == g
        r_idx, r_inv = np.unique(ri[sel], return_inverse=True)
        c_idx, c_inv = np.unique(ci[sel], return_inverse=True)
        cost = np.zeros((r_idx.size, c_idx.size))
        cost[r_inv, c_inv] = -iou[sel]
        a, b = linear_sum_assignment(cost)
        ok = cost[a, b] < 0
        out_r.append(ur[r_idx[a[ok]]])
        out_c.append(uc[c_idx[b[ok]]])
        out_v.append(-cost[a[ok], b[ok]])
    return np.concatenate(out_r), np.concatenate(out_c), np.concatenate(out_v)


def score_segmentation(
    true_labels: NDArray[np.integer],
    pred_labels: NDArray[np.integer],
    *,
    iou_threshold: float = 0.5,
) -> SegmentationScore:
    """Score a predicted label mask against the truth (F1 at an IoU threshold, count error).

    Parameters
    ----------
    true_labels, pred_labels : (H, W) ndarray of int
        Label masks; 0 is background.
    iou_threshold : float
        Minimum IoU of a true positive.

    Returns
    -------
    SegmentationScore

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.zeros((8, 8), int); truth[1:4, 1:4] = 1; truth[5:8, 5:8] = 2
    >>> s = score_segmentation(truth, truth)
    >>> (s.f1, s.count_error)
    (1.0, 0.0)
    """
    tids, _, iou = match_labels(true_labels, pred_labels, iou_threshold=iou_threshold)
    n_true = int(np.unique(true_labels[true_labels > 0]).size)
    n_pred = int(np.unique(pred_labels[pred_labels > 0]).size)
    tp = int(tids.size)
    precision = tp / n_pred if n_pred else float(n_true == 0)
    recall = tp / n_true if n_true else float(n_pred == 0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    count_error = abs(n_pred - n_true) / n_true if n_true else float(n_pred > 0)
    return SegmentationScore(
        n_true=n_true,
        n_pred=n_pred,
        tp=tp,
        fp=n_pred - tp,
        fn=n_true - tp,
        precision=float(precision),
        recall=float(recall),
        f1=float(f1),
        count_error=float(count_error),
        mean_iou=float(iou.mean()) if tp else float("nan"),
    )
