"""The demo's imaging incubator: each batch's harvest sample on the lens-free sensor, to QC.

At harvest an at-line sample of every bioreactor is imaged by the incubator's holographic
sensor (the twin simulates the hologram of a suspension culture at the batch's measured
viability), analysed by :func:`biopilot.imaging.analyze_frame` (autofocus, phase, cells,
classes) and filed as a ``qc_result`` record of the batch, with its overlay image, where the
cockpit's QC panel and the report show it.
"""

from __future__ import annotations

import base64
import math
from typing import Any

from biopilot.imaging.overlay import overlay_png
from biopilot.imaging.pipeline import analyze_frame
from biopilot.quality.attributes import frame_attributes
from biopilot.quality.release import record_qc
from biopilot.store import Historian
from biopilot.twin.hologram import OpticalSetup
from biopilot.twin.incubator import SceneSpec, simulate_frame

__all__ = ["IMAGER", "image_harvest_samples"]

#: Who files the imaging QC results (the instrument service, for the audit of records).
IMAGER = "system:imaging-incubator"
#: A 640 x 480 px window of the sensor (405 nm, 1.12 um pixels, 1 mm): ~0.39 mm2 per frame.
_OPTICS = OpticalSetup(wavelength_nm=405.0, pixel_um=1.12, z_mm=1.0, shape_px=(480, 640))


def image_harvest_samples(historian: Historian, batch_ids: dict[str, int]) -> list[dict[str, Any]]:
    """Image, analyse and file one harvest sample per batch; return a summary row per batch."""
    rows = []
    for i, (unit, batch_id) in enumerate(sorted(batch_ids.items())):
        measured = _last_viability(historian, batch_id)
        viability = 0.9 if measured is None else measured  # 0.9: a late fed-batch, assumed
        scene = SceneSpec(scenario="suspension", confluence=0.25, viability=viability)
        frame = simulate_frame(_OPTICS, scene, rng=1000 + i, name=f"{unit}-harvest")
        res = analyze_frame(frame.hologram, wavelength_um=_OPTICS.wavelength_nm / 1e3,
                            pixel_um=_OPTICS.pixel_um)
        qc = frame_attributes(res)
        png = base64.b64encode(overlay_png(res)).decode("ascii")
        extra = {"z_mm": res.z_mm, "overlay_png_base64": png,
                 "sample": "harvest, at-line", "viability_at_line": measured}
        rid = record_qc(historian, batch_id, qc, author=IMAGER,
                        source=f"{unit}-harvest hologram", extra=extra)
        rows.append({"unit": unit, "record_id": rid, "cells": res.n_cells,
                     "viability (imaging)": qc.viability, "viability (at-line)": measured,
                     "hologram agreement": res.hologram_agreement})
    return rows


def _last_viability(historian: Historian, batch_id: int) -> float | None:
    """The batch's last at-line viability as a fraction; None if none was stored."""
    try:
        frame = historian.read_tag(batch_id, "viability_pct").dropna()
    except (KeyError, ValueError):
        return None
    if frame.empty:
        return None
    value = float(frame["value"].iloc[-1]) / 100.0
    return value if math.isfinite(value) and 0.0 < value <= 1.0 else None
