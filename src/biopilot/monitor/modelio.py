"""Versioned model files: a JSON header of training metadata, then the pickled estimator.

A file is one line of JSON (format, biopilot/scikit-learn versions, date, the batches and
seeds calibrated on, CV and test figures, the wavenumber axis with its SHA-256), a newline,
then the pickle. The header is read and checked before anything is unpickled, so a file from
another major version (for 0.x releases, another minor: semver's rule for unstable
versions), another scikit-learn minor, or another axis is refused with a clear error. A
pickle runs code when loaded: load only model files you trust. The payload's SHA-256 is in
the header and checked, so a corrupted or altered file is refused too.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import sklearn

from biopilot import __version__

__all__ = ["FORMAT", "ModelFileError", "axis_summary", "load_model", "read_header", "save_model"]

#: Identifies a biopilot model file and its layout version.
FORMAT = "biopilot-model/1"


class ModelFileError(ValueError):
    """Raised when a model file is malformed, altered or from an incompatible version."""


def save_model(model: Any, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model`` and its training metadata to a versioned file.

    Parameters
    ----------
    model : estimator
        A fitted estimator; its ``wavenumbers_cm1_`` (if any) is summarised in the header.
    path : str or Path
        Where to write (parents are created).
    metadata : dict, optional
        JSON-serialisable training metadata (batches, seeds, CV and test figures...).

    Returns
    -------
    Path
        The file written.
    """
    payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    header = {
        "format": FORMAT,
        "kind": type(model).__name__,
        "biopilot_version": __version__,
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "payload_bytes": len(payload),
        "metadata": _jsonable(metadata or {}),
    }
    axis = getattr(model, "wavenumbers_cm1_", None)
    if axis is not None:
        header["wavenumbers"] = axis_summary(axis)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(json.dumps(header, sort_keys=True).encode() + b"\n" + payload)
    return out


def read_header(path: str | Path) -> dict[str, Any]:
    """Return a model file's header (metadata) without unpickling the model.

    Raises
    ------
    ModelFileError
        If the file is missing or is not a biopilot model file.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"{p}: no such model file")
    with p.open("rb") as f:
        line = f.readline(1 << 24)
    try:
        header = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(f"{p}: not a biopilot model file (no JSON header)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        got = header.get("format") if isinstance(header, dict) else None
        raise ModelFileError(f"{p}: format {got!r} is not {FORMAT!r}")
    return header


def load_model(path: str | Path, *, wavenumbers_cm1: np.ndarray | None = None) -> Any:
    """Load a model file after checking its versions, integrity and (optionally) axis.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`save_model`.
    wavenumbers_cm1 : ndarray, optional
        The axis of the spectra the model will see, cm-1; refused if it differs from the
        calibration axis.

    Raises
    ------
    ModelFileError
        If the file is not a model file, was written by an incompatible biopilot (major
        version) or scikit-learn (minor version), or its payload does not match its hash.
    ValueError
        If ``wavenumbers_cm1`` differs from the model's axis (both lengths and ranges named).
    """
    p = Path(path)
    header = read_header(p)
    saved, ours = str(header.get("biopilot_version")), __version__
    if _compat(saved) != _compat(ours):
        raise ModelFileError(
            f"{p}: written by biopilot {saved}, incompatible with this biopilot {ours}; "
            "retrain the model (biopilot model train softsensor)"
        )
    sk_saved = str(header.get("sklearn_version"))
    if sk_saved.split(".")[:2] != sklearn.__version__.split(".")[:2]:
        raise ModelFileError(
            f"{p}: pickled with scikit-learn {sk_saved}, this is {sklearn.__version__}; "
            "retrain the model or install the matching scikit-learn"
        )
    data = p.read_bytes()
    payload = data[data.index(b"\n") + 1 :]
    if hashlib.sha256(payload).hexdigest() != header.get("payload_sha256"):
        raise ModelFileError(f"{p}: payload does not match its SHA-256; the file was altered")
    if wavenumbers_cm1 is not None and "wavenumbers" in header:
        _check_axis(header["wavenumbers"], np.asarray(wavenumbers_cm1, dtype=float), p)
    return pickle.loads(payload)  # hash-checked above; load only model files you trust


def axis_summary(axis: np.ndarray) -> dict[str, Any]:
    """Describe a wavenumber axis: points, first/last cm-1, median step and SHA-256."""
    a = np.asarray(axis, dtype="<f8")
    return {
        "n_points": int(a.size),
        "first_cm1": float(a[0]) if a.size else None,
        "last_cm1": float(a[-1]) if a.size else None,
        "step_cm1": float(np.median(np.diff(a))) if a.size > 1 else None,
        "sha256": hashlib.sha256(a.tobytes()).hexdigest(),
    }


def _check_axis(saved: dict[str, Any], axis: np.ndarray, p: Path) -> None:
    now = axis_summary(axis)
    if now["sha256"] != saved.get("sha256"):
        raise ValueError(
            f"{p}: the model was calibrated on {saved.get('n_points')} points "
            f"({saved.get('first_cm1')}-{saved.get('last_cm1')} cm-1), the spectra have "
            f"{now['n_points']} points ({now['first_cm1']}-{now['last_cm1']} cm-1)"
        )


def _compat(version: str) -> tuple[str, ...]:
    """Compatibility key: the major version, or major.minor for 0.x releases."""
    parts = version.split(".")
    return tuple(parts[:2]) if parts[0] == "0" else tuple(parts[:1])


def _jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays and tuples in ``obj`` to plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
