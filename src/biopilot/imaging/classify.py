"""Deep cell classifier on phase crops: live/dead and differentiated/undifferentiated heads."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

import biopilot
from biopilot.imaging.features import SCALAR_FEATURES, CellSamples, cell_samples
from biopilot.imaging.netfile import shipped_weights
from biopilot.imaging.pooling import max_pool2

__all__ = [
    "FORMAT_VERSION",
    "SCALAR_FEATURES",
    "CellClassifier",
    "CellSamples",
    "cell_samples",
    "default_weights_path",
    "load_default_classifier",
]

#: Version of the saved-file layout; ``load`` refuses any other.
FORMAT_VERSION = 1
_WEIGHTS = "cell_classifier.pt"
_CHUNK = 1024  # cells per inference batch: small batches stay in cache (measured faster)


class CellClassifier:
    """Small CNN with two heads on cell crops, in the scikit-learn estimator style.

    ``fit(samples, y)`` takes a :class:`CellSamples` and a DataFrame with boolean columns
    ``alive`` and ``differentiated`` (the latter may be missing/NA for cells outside
    stem-cell scenes: that head then learns from the other cells only).

    Parameters
    ----------
    epochs : int
        Passes over the training set.
    batch_size : int
        Cells per gradient step.
    learning_rate : float
        Adam step size.
    weight_decay : float
        L2 penalty of AdamW.
    width : int
        Channels of the first convolution (doubled at each of the three stages).
    seed : int
        Seed of weight initialisation and batch order.
    crop_px, crop_um : int, float
        Crop side in pixels and in micrometres (see :func:`cell_samples`); inference must
        cut crops the same way, so use :meth:`samples`.
    device : str
        Torch device for fit and predict ("cpu" is the reference; "cuda" where present).

    Attributes
    ----------
    net_ : torch.nn.Module
        The trained network.
    feature_mean_, feature_scale_ : ndarray
        Standardisation of the scalar features learnt in ``fit``.
    history_ : list of float
        Mean training loss per epoch.
    metadata_ : dict
        Training metadata saved with the weights (seed, data, accuracy, versions).
    """

    def __init__(
        self,
        *,
        epochs: int = 12,
        batch_size: int = 256,
        learning_rate: float = 3e-3,
        weight_decay: float = 1e-4,
        width: int = 8,
        seed: int = 0,
        crop_px: int = 16,
        crop_um: float = 28.0,
        device: str = "cpu",
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.width = width
        self.seed = seed
        self.crop_px = crop_px
        self.crop_um = crop_um
        self.device = device

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters, as given to ``__init__``."""
        return {
            k: getattr(self, k)
            for k in (
                "epochs",
                "batch_size",
                "learning_rate",
                "weight_decay",
                "width",
                "seed",
                "crop_px",
                "crop_um",
                "device",
            )
        }

    def samples(
        self,
        phase_rad: NDArray[np.floating],
        labels: NDArray[np.integer],
        cells: pd.DataFrame,
        *,
        pixel_um: float,
        background_rad: float = 0.0,
    ) -> CellSamples:
        """Crops and features of ``cells`` cut as this classifier expects them."""
        return cell_samples(
            phase_rad,
            labels,
            cells,
            pixel_um=pixel_um,
            size=self.crop_px,
            crop_um=self.crop_um,
            background_rad=background_rad,
        )

    def fit(self, samples: CellSamples, y: pd.DataFrame) -> CellClassifier:
        """Train both heads on ``samples`` with the labels in ``y``; returns self."""
        if len(samples) != len(y) or len(samples) == 0:
            raise ValueError(f"need as many labels as samples (got {len(y)} for {len(samples)})")
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        feats = samples.features.astype(np.float64)
        self.feature_mean_ = feats.mean(axis=0).astype(np.float32)
        self.feature_scale_ = (feats.std(axis=0) + 1e-6).astype(np.float32)
        self.net_ = _Net(len(SCALAR_FEATURES), self.width).to(self.device)
        crops, scal = self._tensors(samples)
        alive = torch.as_tensor(y["alive"].to_numpy(np.float32))
        diff_col = y["differentiated"] if "differentiated" in y else pd.Series([pd.NA] * len(y))
        known = torch.as_tensor(diff_col.notna().to_numpy().copy())
        diff = torch.as_tensor(diff_col.fillna(False).to_numpy(bool).astype(np.float32))
        opt = torch.optim.AdamW(
            self.net_.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        steps = self.epochs * math.ceil(len(samples) / self.batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.learning_rate, total_steps=steps
        )
        bce = nn.BCEWithLogitsLoss(reduction="none")
        self.history_: list[float] = []
        self.net_.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(samples), generator=gen)
            total = 0.0
            for start in range(0, len(samples), self.batch_size):
                b = order[start : start + self.batch_size]
                la, ld = self.net_(crops[b], scal[b])
                w = known[b].float().to(self.device)
                loss = bce(la, alive[b].to(self.device)).mean() + (
                    bce(ld, diff[b].to(self.device)) * w
                ).sum() / w.sum().clamp(min=1.0)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(b)
            self.history_.append(total / len(samples))
        self.net_.eval()
        self.metadata_: dict[str, Any] = {}
        return self

    def predict_proba(self, samples: CellSamples) -> pd.DataFrame:
        """Probabilities ``p_alive`` and ``p_differentiated`` per cell (columns, floats)."""
        self._check_fitted()
        out = np.zeros((len(samples), 2), np.float32)
        net = _inference_copy(self.net_)
        with torch.inference_mode():
            for start in range(0, len(samples), _CHUNK):
                part = samples.take(slice(start, start + _CHUNK))
                crops, scal = self._tensors(part)
                la, ld = net(crops.contiguous(memory_format=torch.channels_last), scal)
                out[start : start + len(part)] = (
                    torch.sigmoid(torch.stack([la, ld], 1)).cpu().numpy()
                )
        return pd.DataFrame({"p_alive": out[:, 0], "p_differentiated": out[:, 1]})

    def predict(self, samples: CellSamples) -> pd.DataFrame:
        """Classes per cell: boolean columns ``alive`` and ``differentiated``."""
        p = self.predict_proba(samples)
        return pd.DataFrame(
            {"alive": p.p_alive >= 0.5, "differentiated": p.p_differentiated >= 0.5}
        )

    def accuracy(self, samples: CellSamples, y: pd.DataFrame) -> dict[str, float]:
        """Accuracy of each head where the truth is known (NaN where none is)."""
        pred = self.predict(samples)
        out = {}
        for col in ("alive", "differentiated"):
            known = y[col].notna().to_numpy() if col in y else np.zeros(len(y), bool)
            hit = pred[col].to_numpy()[known] == y[col].to_numpy()[known].astype(bool)
            out[col] = float(hit.mean()) if known.any() else float("nan")
        return out

    def score(self, samples: CellSamples, y: pd.DataFrame) -> float:
        """Mean accuracy of the heads that have truth in ``y``."""
        acc = [v for v in self.accuracy(samples, y).values() if not math.isnan(v)]
        return float(np.mean(acc)) if acc else float("nan")

    def save(self, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
        """Write weights, standardisation, hyper-parameters and metadata to ``path``."""
        self._check_fitted()
        if metadata is not None:
            self.metadata_ = dict(metadata)
        blob = {
            "format_version": FORMAT_VERSION,
            "biopilot_version": biopilot.__version__,
            "params": json.dumps(self.get_params()),
            "metadata": json.dumps(self.metadata_),
            "feature_mean": torch.as_tensor(self.feature_mean_),
            "feature_scale": torch.as_tensor(self.feature_scale_),
            "state_dict": {k: v.cpu() for k, v in self.net_.state_dict().items()},
        }
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        torch.save(blob, p)
        return p

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> CellClassifier:
        """Read a classifier written by :meth:`save` (no network, tensors only).

        Raises
        ------
        ValueError
            If the file is not a classifier file or was written in another format version.
        """
        p = Path(path)
        try:
            blob = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises several types for a bad file
            raise ValueError(f"{p}: not a readable classifier file ({err})") from None
        if not isinstance(blob, dict) or "format_version" not in blob:
            raise ValueError(f"{p}: not a biopilot cell-classifier file")
        if blob["format_version"] != FORMAT_VERSION:
            raise ValueError(
                f"{p}: classifier file format {blob['format_version']} (biopilot "
                f"{blob.get('biopilot_version', '?')}) cannot be read by this biopilot, which "
                f"reads format {FORMAT_VERSION}; retrain with `biopilot qc train`"
            )
        params = json.loads(blob["params"])
        params["device"] = device
        clf = cls(**params)
        clf.feature_mean_ = blob["feature_mean"].numpy()
        clf.feature_scale_ = blob["feature_scale"].numpy()
        clf.net_ = _Net(len(SCALAR_FEATURES), clf.width)
        clf.net_.load_state_dict(blob["state_dict"])
        clf.net_.to(device).eval()
        clf.metadata_ = json.loads(blob["metadata"])
        clf.history_ = []
        return clf

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise ValueError("this CellClassifier is not fitted: call fit() or load() first")

    def _tensors(self, samples: CellSamples) -> tuple[torch.Tensor, torch.Tensor]:
        scal = (samples.features - self.feature_mean_) / self.feature_scale_
        scal = np.nan_to_num(scal, nan=0.0, posinf=0.0, neginf=0.0)
        return (
            torch.as_tensor(samples.crops, device=self.device),
            torch.as_tensor(scal.astype(np.float32), device=self.device),
        )


def default_weights_path() -> Path:
    """Path of the weights shipped inside the package."""
    return shipped_weights(_WEIGHTS)


def load_default_classifier(device: str = "cpu") -> CellClassifier:
    """The shipped classifier (``imaging/weights/cell_classifier.pt``), loaded offline."""
    return CellClassifier.load(default_weights_path(), device=device)


def _inference_copy(net: _Net) -> _Net:
    """An evaluation copy of ``net``: batch norms folded into their convolutions, ReLUs in
    place, channels-last (CPU max-pooling of these small crops is ~1.7x faster); the same
    outputs to float rounding."""
    out = copy.deepcopy(net).eval()
    layers: list[nn.Module] = []
    for m in out.conv:
        if isinstance(m, nn.BatchNorm2d):
            conv = layers.pop()
            assert isinstance(conv, nn.Conv2d)
            m = fuse_conv_bn_eval(conv, m)
        elif isinstance(m, nn.ReLU):
            m = nn.ReLU(inplace=True)
        elif isinstance(m, nn.MaxPool2d):
            m = _PairMaxPool()
        layers.append(m)
    out.conv = nn.Sequential(*layers)
    return out.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


class _PairMaxPool(nn.Module):
    """:func:`~biopilot.imaging.pooling.max_pool2` as a layer (the inference copy's pooling)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H / 2, W / 2)."""
        return max_pool2(x)


class _Net(nn.Module):
    """Three conv stages on the crop, an MLP on the scalar features, two logit heads."""

    def __init__(self, n_features: int, width: int) -> None:
        super().__init__()
        w = width

        def stage(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.conv = nn.Sequential(
            *stage(2, w),
            nn.MaxPool2d(2),
            *stage(w, 2 * w),
            nn.MaxPool2d(2),
            *stage(2 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.mlp = nn.Sequential(nn.Linear(n_features, 32), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(4 * w + 32, 64), nn.ReLU(), nn.Linear(64, 2))

    def forward(
        self, crops: torch.Tensor, features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.head(torch.cat([self.conv(crops), self.mlp(features)], dim=1))
        return z[:, 0], z[:, 1]
