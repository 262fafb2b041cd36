"""Hologram files of the imaging incubator: TIFF, PNG or NPY with a JSON sidecar of optics.

A hologram ``name.tiff`` (or ``.png``, ``.npy``) sits beside ``name.json``, which holds the
optical metadata the reconstruction needs::

    {"format": "biopilot-hologram/1", "wavelength_nm": 532.0, "pixel_um": 1.12,
     "z_mm": 1.2, "n_medium": 1.335, "bit_depth": 12, "shape_px": [2748, 3840]}

``z_mm`` may be null (unknown: autofocus); an optional ``acquired_utc`` (ISO 8601, with
its time zone) dates the frame, for growth over a time-lapse. A simulated frame adds its
ground truth:
``name_labels.npy`` (int32), ``name_phase.npy`` (float32 rad), ``name_cells.csv`` and
``name_truth.json`` (true z, scene).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from biopilot.config import parse_model
from biopilot.twin.hologram import OpticalSetup

if TYPE_CHECKING:
    from biopilot.twin.incubator import SimulatedFrame

__all__ = [
    "SIDECAR_FORMAT", "acquisition_time", "parse_time", "read_hologram", "write_frame",
    "write_hologram",
]

SIDECAR_FORMAT = "biopilot-hologram/1"
_SATURATED_FRACTION = 0.25  # a frame with more pixels at full scale is refused
_SUFFIXES = {".tif": "tiff", ".tiff": "tiff", ".png": "png", ".npy": "npy"}


def write_hologram(
    hologram: NDArray[np.integer] | NDArray[np.floating],
    optics: OpticalSetup,
    path: str | Path,
    *,
    acquired_utc: datetime | None = None,
) -> Path:
    """Write a hologram (format from the suffix: .tif/.tiff, .png, .npy) and its sidecar.

    Parameters
    ----------
    hologram : (H, W) ndarray
        Counts (uint8/uint16; PNG needs one of these) or float intensities (TIFF, NPY).
    optics : OpticalSetup
        Metadata for the sidecar ``path.with_suffix('.json')``.
    path : str or Path
        Hologram file.
    acquired_utc : datetime, optional
        When the frame was taken (time-zone aware); written as ``acquired_utc``.

    Returns
    -------
    Path
        The hologram file.

    Raises
    ------
    ValueError
        For an unknown suffix, a non-2-D array or a naive ``acquired_utc``.
    """
    p = Path(path)
    fmt = _SUFFIXES.get(p.suffix.lower())
    if fmt is None:
        raise ValueError(f"{p}: unknown hologram format {p.suffix!r} (use .tiff, .png or .npy)")
    if hologram.ndim != 2:
        raise ValueError(f"hologram must be 2-D, got shape {hologram.shape}")
    p.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": SIDECAR_FORMAT, **optics.model_dump(mode="json")}
    meta["shape_px"] = list(hologram.shape)
    if acquired_utc is not None:
        if acquired_utc.tzinfo is None:
            raise ValueError("acquired_utc must carry its time zone (e.g. datetime.UTC)")
        meta["acquired_utc"] = acquired_utc.isoformat()
    if fmt == "tiff":
        import tifffile

        tifffile.imwrite(p, hologram, photometric="minisblack", description=json.dumps(meta))
    elif fmt == "png":
        import imageio.v3 as iio

        iio.imwrite(p, hologram, extension=".png")
    else:
        np.save(p, hologram, allow_pickle=False)
    p.with_suffix(".json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return p


def write_frame(
    frame: SimulatedFrame,
    out_dir: str | Path,
    fmt: Literal["tiff", "png", "npy"] = "tiff",
    *,
    name: str | None = None,
    truth: bool = True,
    acquired_utc: datetime | None = None,
) -> Path:
    """Write a simulated frame: hologram, optics sidecar and (optionally) its ground truth.

    Parameters
    ----------
    frame : SimulatedFrame
        The frame.
    out_dir : str or Path
        Folder (created if needed).
    fmt : {"tiff", "png", "npy"}
        Hologram format.
    name : str, optional
        File stem; defaults to ``frame.name``.
    truth : bool
        Also write ``<name>_labels.npy``, ``<name>_phase.npy``, ``<name>_cells.csv`` and
        ``<name>_truth.json`` (true z, scene).
    acquired_utc : datetime, optional
        When the frame was taken, for the sidecar (see :func:`write_hologram`).

    Returns
    -------
    Path
        The hologram file.

    Examples
    --------
    >>> import tempfile
    >>> from biopilot.twin.incubator import SceneSpec, simulate_frame
    >>> optics = OpticalSetup(wavelength_nm=450, pixel_um=1.4, z_mm=2.0, shape_px=(64, 64))
    >>> f = simulate_frame(optics, SceneSpec(confluence=0.1), rng=3)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     holo, meta = read_hologram(write_frame(f, d, "png"))
    >>> meta.wavelength_nm, meta.z_mm, holo.shape
    (450.0, 2.0, (64, 64))
    """
    if fmt not in ("tiff", "png", "npy"):
        raise ValueError(f"fmt must be 'tiff', 'png' or 'npy', got {fmt!r}")
    out = Path(out_dir)
    stem = name or frame.name
    path = write_hologram(frame.hologram, frame.optics, out / f"{stem}.{fmt}",
                          acquired_utc=acquired_utc)
    if truth:
        np.save(out / f"{stem}_labels.npy", frame.labels, allow_pickle=False)
        np.save(out / f"{stem}_phase.npy", frame.phase_rad, allow_pickle=False)
        frame.cells.to_csv(out / f"{stem}_cells.csv", index=False)
        info = {"name": stem, "z_mm": frame.z_mm, "confluence": frame.confluence,
                "n_cells": len(frame.cells), "scene": frame.scene.model_dump(mode="json")}
        (out / f"{stem}_truth.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    return path


def read_hologram(
    path: str | Path,
    *,
    wavelength_nm: float | None = None,
    pixel_um: float | None = None,
    z_mm: float | None = None,
    n_medium: float | None = None,
) -> tuple[NDArray[np.float32], OpticalSetup]:
    """Read a hologram and its optical metadata (sidecar JSON, overridden by arguments).

    Parameters
    ----------
    path : str or Path
        ``.tif``/``.tiff`` (tifffile), ``.png`` (imageio) or ``.npy`` file; its sidecar is
        ``path.with_suffix('.json')`` when present.
    wavelength_nm, pixel_um, z_mm, n_medium : float, optional
        Values that replace (or stand in for) the sidecar's.

    Returns
    -------
    hologram : (H, W) float32
        The recorded values (counts), unscaled.
    optics : OpticalSetup
        Metadata; ``z_mm`` is None when unknown, ``bit_depth`` from the sidecar or the
        integer type of the file (16 for floats).

    Raises
    ------
    ValueError
        One message per problem, naming the file: missing or unreadable (corrupt) file or
        sidecar, unknown format, not a 2-D grayscale image, non-finite values, an empty (all
        zero) or saturated frame (over 25 % of pixels at full scale), or missing / out of
        range optical metadata (wavelength and pixel pitch are required).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> np.save(d / "h.npy", np.full((32, 32), 900, np.uint16))
    >>> holo, optics = read_hologram(d / "h.npy", wavelength_nm=520, pixel_um=1.67)
    >>> holo.dtype.name, optics.z_mm, optics.bit_depth
    ('float32', None, 16)
    """
    p = Path(path)
    fmt = _SUFFIXES.get(p.suffix.lower())
    if fmt is None:
        raise ValueError(f"{p}: unknown hologram format {p.suffix!r} (use .tiff, .png or .npy)")
    if not p.is_file():
        raise ValueError(f"{p}: no such file")
    image = _load(p, fmt)
    if image.ndim != 2:
        raise ValueError(f"{p}: expected a 2-D grayscale hologram, got an array of shape "
                         f"{image.shape}")
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise ValueError(f"{p}: expected integer or real intensities, got dtype {image.dtype}")
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise ValueError(f"{p}: hologram contains NaN or infinite values")
    meta = _sidecar(p)
    given = {"wavelength_nm": wavelength_nm, "pixel_um": pixel_um, "z_mm": z_mm,
             "n_medium": n_medium}
    meta.update({k: v for k, v in given.items() if v is not None})
    missing = [k for k in ("wavelength_nm", "pixel_um") if meta.get(k) is None]
    if missing:
        raise ValueError(f"{p}: missing optical metadata: {', '.join(missing)} (give them as "
                         f"arguments or in the sidecar {p.with_suffix('.json').name})")
    is_int = np.issubdtype(image.dtype, np.integer)
    depth_known = "bit_depth" in meta
    if not depth_known:
        meta["bit_depth"] = 8 if image.dtype.itemsize == 1 else 16
    meta["shape_px"] = tuple(image.shape)
    keys = ("wavelength_nm", "pixel_um", "z_mm", "n_medium", "shape_px", "bit_depth", "tilt_mrad")
    optics = parse_model(OpticalSetup, {k: meta[k] for k in keys if k in meta}, source=str(p))
    if not np.any(image > 0):
        raise ValueError(f"{p}: empty frame (every pixel is zero)")
    full = optics.full_scale
    saturated = float(np.mean(image >= full)) if is_int or depth_known else 0.0
    if saturated > _SATURATED_FRACTION:
        raise ValueError(f"{p}: saturated frame ({100 * saturated:.0f} % of pixels at full "
                         f"scale {full})")
    return image.astype(np.float32), optics


def acquisition_time(path: str | Path) -> datetime | None:
    """When the hologram at ``path`` was taken (its sidecar's ``acquired_utc``), or None.

    Raises
    ------
    ValueError
        If the sidecar is malformed or the time is not ISO 8601 with a time zone.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from datetime import UTC, datetime
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> optics = OpticalSetup(wavelength_nm=450, pixel_um=1.4, z_mm=2.0, shape_px=(32, 32))
    >>> p = write_hologram(np.ones((32, 32), np.uint16), optics, d / "h.npy",
    ...                    acquired_utc=datetime(2026, 3, 1, 8, tzinfo=UTC))
    >>> acquisition_time(p).isoformat()
    '2026-03-01T08:00:00+00:00'
    """
    p = Path(path)
    value = _sidecar(p).get("acquired_utc")
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as err:
        raise ValueError(f"{p.with_suffix('.json')}: acquired_utc {err}") from None


def parse_time(value: Any) -> datetime:
    """An ISO 8601 time that carries its zone (the only kind two sites can compare).

    Raises
    ------
    ValueError
        Saying what is expected, if ``value`` is not such a time.

    Examples
    --------
    >>> parse_time("2026-03-01T08:00:00Z").isoformat()
    '2026-03-01T08:00:00+00:00'
    """
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ValueError(f"must be an ISO 8601 time with its zone (e.g. "
                         f"2026-03-01T08:00:00+00:00), got {value!r}")
    return when


# --------------------------------------------------------------------------------- helpers


def _load(p: Path, fmt: str) -> NDArray[Any]:
    """Read the image array; any reader failure becomes a ValueError naming the file."""
    try:
        if fmt == "tiff":
            import tifffile

            return np.asarray(tifffile.imread(p))
        if fmt == "png":
            import imageio.v3 as iio

            return np.asarray(iio.imread(p, plugin="pillow"))
        return np.asarray(np.load(p, allow_pickle=False))
    except Exception as err:  # readers raise many types for corrupt data
        raise ValueError(f"{p}: cannot read {fmt.upper()} file (corrupt or truncated): "
                         f"{type(err).__name__}: {err}") from None


def _sidecar(p: Path) -> dict[str, Any]:
    """The sidecar's fields, {} when there is none."""
    side = p.with_suffix(".json")
    if not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{side}: malformed sidecar JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{side}: sidecar must be a JSON object, got {type(data).__name__}")
    data.pop("format", None)
    return data
