"""Benchmark helpers: repeat a call, report the median, print a markdown table."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any


def median_time(fn: Callable[[], Any], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine() -> str:
    """One line on the machine: CPU model, cores, torch's SIMD level, memory kept or not.

    Speed figures differ ~2x between this project's VMs (AVX512 with bfloat16 against AVX2
    only, session 16), so every speed table names the machine it was measured on.
    """
    import torch

    import biopilot

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    kept = "kept" if biopilot.MEMORY_RETAINED else "allocator defaults"
    return (f"{model}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.backends.cpu.get_cpu_capability()}), freed memory {kept}")


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print rows as a markdown table (the format kept in RESULTS.md)."""
    if not rows:
        return
    cols = list(dict.fromkeys(k for r in rows for k in r))  # union, first-seen order
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" for _ in cols) + "|")
    for r in rows:
        print("| " + " | ".join(_fmt(r.get(c, "-")) for c in cols) + " |")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def tuning_fields(size: int = 768) -> Iterator[dict[str, Any]]:
    """The 24 tuning frames of sessions 11-14 (seed 97), each with its back-propagated field.

    Streams 900-917 cover three scenarios at 80 / 60 / 30 % confluence and 950-955 add six at
    80 %; optics are drawn over the operating range (``random_setup``) and the distance is
    off by an autofocus-sized error (2 um). Never the benchmark's frames (seed 0) nor any
    network's training frames. Yields ``sc``, ``cf``, ``px``, ``wl``, ``frame``, ``field``.
    """
    import numpy as np

    from biopilot.imaging import backpropagate
    from biopilot.imaging.cellnet_data import random_setup
    from biopilot.imaging.recon_input import normalize_illumination
    from biopilot.twin.incubator import simulate_frame

    kinds = ("stem_cell", "adherent", "suspension")
    streams = [(900 + i, kinds[i % 3], (0.8, 0.6, 0.3)[(i // 3) % 3]) for i in range(18)]
    streams += [(950 + i, kinds[i % 3], 0.8) for i in range(6)]
    for stream, scenario, confluence in streams:
        rng = np.random.default_rng([97, stream])
        optics, scene = random_setup(rng, size)
        scene = scene.model_copy(update={"scenario": scenario, "confluence": confluence})
        frame = simulate_frame(optics, scene, rng=rng)
        z = frame.z_mm + rng.normal(0.0, 2e-3)
        holo = frame.hologram.astype(np.float32)
        field = backpropagate(holo, z, relative=normalize_illumination(holo)[0],
                              wavelength_um=optics.wavelength_um, pixel_um=optics.pixel_um,
                              n_medium=optics.n_medium)
        yield {"sc": scenario, "cf": confluence, "px": optics.pixel_um,
               "wl": optics.wavelength_um, "frame": frame, "field": field}
