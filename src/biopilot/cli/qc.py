"""CLI: Holographic in-process QC of cells: synthesise, analyse, release."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import typer

from biopilot.cli._common import (
    JSON_OPTION,
    check_device,
    current_user,
    fail,
    open_store,
    print_json,
    print_table,
    progress,
    resolve_batch,
)
from biopilot.cli.qc_report import print_frames, warn_unreliable
from biopilot.config import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from biopilot.imaging.frame_result import FrameAnalysis

app = typer.Typer(
    help="Holographic in-process QC of cells: synthesise, analyse, release.", no_args_is_help=True
)

_FORMATS = ("tiff", "png", "npy")


@app.command()
def synth(
    out: Path = typer.Option(..., "--out", help="Folder for holograms, sidecars and truth."),
    n: int = typer.Option(10, "--n", min=1, help="Number of frames."),
    size: str = typer.Option("3840x2748", "--size", help="Sensor WIDTHxHEIGHT in pixels."),
    seed: int = typer.Option(0, "--seed", help="Seed of the benchmark set."),
    fmt: str = typer.Option("tiff", "--format", help="Hologram format: tiff, png or npy."),
    second: float | None = typer.Option(
        None, "--second-wavelength", help="Also record each frame under a second LED at this "
        "wavelength, nm (files <name>_<nm>nm; for 'qc analyze --second')."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Simulate a seeded set of holograms (with optics sidecars and ground truth)."""
    from biopilot.twin.incubator import at_wavelength, benchmark_set, write_frame

    try:
        width, height = _parse_size(size)
        if fmt not in _FORMATS:
            raise ValueError(f"--format must be one of {', '.join(_FORMATS)}, got {fmt!r}")
        rows: list[dict[str, Any]] = []
        with progress(enabled=not as_json) as bar:
            task = bar.add_task("simulating", total=n)
            for frame in benchmark_set(seed=seed, n=n, size=(height, width)):
                path = write_frame(frame, out, fmt)  # type: ignore[arg-type]
                extra: dict[str, str] = {}
                if second is not None:
                    other = at_wavelength(frame, second, rng=[seed, len(rows), 2])
                    extra["second_file"] = str(write_frame(other, out, fmt))  # type: ignore[arg-type]
                rows.append(
                    {
                        "file": str(path),
                        **extra,
                        "scenario": frame.scene.scenario,
                        "confluence": frame.confluence,
                        "n_cells": len(frame.cells),
                        "z_mm": frame.z_mm,
                    }
                )
                bar.advance(task)
    except (ConfigError, ValueError, OSError) as err:
        fail(str(err))
    if as_json:
        print_json(rows)
    else:
        print_table(f"{n} frames in {out}", rows)


@app.command()
def analyze(
    files: list[Path] = typer.Argument(..., help="Hologram files (.tiff, .png, .npy)."),
    z: str = typer.Option("auto", "--z", help="Sample-to-sensor distance in mm, or 'auto'."),
    wavelength: float | None = typer.Option(None, "--wavelength", help="Wavelength in nm."),
    pixel: float | None = typer.Option(None, "--pixel", help="Pixel pitch in um."),
    json_out: str | None = typer.Option(
        None, "--json", help="Write the JSON report to this file ('-' prints it on stdout)."
    ),
    cells_csv: Path | None = typer.Option(None, "--cells-csv", help="Per-cell table as CSV."),
    cells_parquet: Path | None = typer.Option(
        None, "--cells-parquet", help="Per-cell table as Parquet."
    ),
    overlay: Path | None = typer.Option(None, "--overlay", help="Folder for overlay PNGs."),
    db: str | None = typer.Option(None, "--db", help="Historian (SQLite path or URL)."),
    batch: str | None = typer.Option(None, "--batch", help="Batch id or code for QC records."),
    volume_ml: float | None = typer.Option(None, "--volume-ml", help="Imaged volume, mL."),
    author: str | None = typer.Option(None, "--author", help="Author of the QC records."),
    method: str = typer.Option(
        "net", "--method", help="'net' (CellNet, default) or 'iterative' (phase retrieval)."
    ),
    device: str = typer.Option("cpu", "--device", help="'cpu' or 'cuda' (where PyTorch has it)."),
    refine: int = typer.Option(
        0, "--refine", min=0, help="Fit CellNet's phase and z to the hologram: L-BFGS "
        "iterations (30-60, ~1 s each on a 4K frame); the networks' cells are measured on it."
    ),
    precision: str = typer.Option(
        "auto", "--precision", help="CellNet arithmetic: 'auto' (bfloat16 on CPUs with AMX "
        "or AVX512-BF16), 'float32' or 'bfloat16'."
    ),
    views: int = typer.Option(
        1, "--views", help="CellNet test-time augmentation: 1, 2, 4 or 8 mirror images "
        "averaged (4: F1 0.91 -> 0.93 at 80 % confluence, 2.5x the frame's time)."
    ),
    cores: str = typer.Option(
        "corenet", "--cores", help="Whose core map splits touching cells: 'corenet' (CellNet's, "
        "corrected by CoreNet) or 'cellnet' (CellNet's alone: faster, more merged cells)."
    ),
    merge: str = typer.Option(
        "mergenet", "--merge", help="Which touching regions are one cell: 'mergenet' (learned, "
        "with CoreNet's cores) or 'rule' (the h_core rule alone: more cells split in two)."
    ),
    analysis_pixel: float | None = typer.Option(
        None, "--analysis-pixel", min=0.0, help="Holograms from sensors coarser than 1.5 um "
        "are resampled (exactly) to this pitch, um, for the networks' cut (default 1.3: more "
        "whole cells, ~1.7x their time at 1.67 um). 0: always the sensor's own grid."
    ),
    second: list[Path] | None = typer.Option(
        None, "--second", metavar="FILE", help="A hologram of the same field under a second "
        "LED, one per FILE in the same order (needs --refine): thick cells' whole turns and a "
        "finer phase."
    ),
    second_wavelength: float | None = typer.Option(
        None, "--second-wavelength", help="Wavelength of the --second files, nm (default: "
        "their sidecars)."
    ),
) -> None:
    """Analyse holograms: cell count, viability, confluence, differentiation, per-cell table.

    A bad file is reported with its reason and the others go on.

    Exit code 1 if any file failed.
    """
    from biopilot.imaging.pipeline import analyze_frame
    from biopilot.imaging.resample import ANALYSIS_PIXEL_UM
    from biopilot.quality import frame_attributes, record_qc
    from biopilot.twin.incubator import acquisition_time, read_hologram

    try:
        z_value: Literal["auto"] | float = "auto" if z == "auto" else float(z)
    except ValueError:
        fail(f"--z must be 'auto' or a distance in mm, got {z!r}")
    if cells_csv and cells_parquet:
        fail("give --cells-csv or --cells-parquet, not both")
    if method not in ("net", "iterative"):
        fail(f"--method must be 'net' or 'iterative', got {method!r}")
    if device not in ("cpu", "cuda"):
        fail(f"--device must be 'cpu' or 'cuda', got {device!r}")
    if precision not in ("auto", "float32", "bfloat16"):
        fail(f"--precision must be 'auto', 'float32' or 'bfloat16', got {precision!r}")
    if views not in (1, 2, 4, 8):
        fail(f"--views must be 1, 2, 4 or 8, got {views}")
    if cores not in ("corenet", "cellnet"):
        fail(f"--cores must be 'corenet' or 'cellnet', got {cores!r}")
    if merge not in ("mergenet", "rule"):
        fail(f"--merge must be 'mergenet' or 'rule', got {merge!r}")
    check_device(device)
    if (db is None) != (batch is None):
        fail("--db and --batch go together")
    if second and len(second) != len(files):
        fail(f"--second needs one file per hologram: {len(second)} for {len(files)}")
    if second and refine == 0:
        fail("--second combines two phase fits: give --refine N (30 for a start)")
    historian = _batch_store(db, batch) if db and batch else None
    results: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    tables = []
    with progress(enabled=json_out != "-" and len(files) > 1) as bar:
        task = bar.add_task("analysing", total=len(files))
        for k, path in enumerate(files):
            try:
                holo, optics = read_hologram(path, wavelength_nm=wavelength, pixel_um=pixel)
                pair: dict[str, Any] = {}
                if second:
                    holo_b, optics_b = read_hologram(second[k], wavelength_nm=second_wavelength,
                                                     pixel_um=optics.pixel_um)
                    pair = {"second_hologram": holo_b,
                            "second_wavelength_um": optics_b.wavelength_um}
                res = analyze_frame(
                    holo,
                    wavelength_um=optics.wavelength_um,
                    pixel_um=optics.pixel_um,
                    z=z_value,
                    n_medium=optics.n_medium,
                    tilt_mrad=optics.tilt_mrad,
                    method=method,  # type: ignore[arg-type]
                    device=device,
                    refine=refine,
                    precision=precision,  # type: ignore[arg-type]
                    views=views,
                    cores=cores,  # type: ignore[arg-type]
                    merge=merge,  # type: ignore[arg-type]
                    analysis_pixel_um=(ANALYSIS_PIXEL_UM if analysis_pixel is None
                                       else analysis_pixel or None),
                    **pair,
                )
                qc = frame_attributes(res, volume_ml=volume_ml)
                row = {"file": str(path), **res.summary(), **_pick(qc.as_dict())}
                if (when := acquisition_time(path)) is not None:
                    row["acquired_utc"] = when.isoformat()
                if historian is not None and batch is not None:
                    row["record_id"] = record_qc(
                        historian,
                        resolve_batch(batch),
                        qc,
                        author=author or current_user(),
                        source=path.name,
                        extra={"z_mm": res.z_mm, "timings_s": res.timings_s,
                               **res.reconstruction},
                    )
                if overlay is not None:
                    row["overlay"] = str(write_overlay(res, overlay / f"{path.stem}_overlay.png"))
                results.append(row)
                tables.append(res.cells.assign(file=path.name))
            except (ConfigError, ValueError, OSError, KeyError) as err:
                failed.append({"file": str(path), "error": str(err)})
            bar.advance(task)
    if tables:
        _write_cells(tables, cells_csv, cells_parquet)
    report = {"frames": results, "failed": failed}
    if json_out == "-":
        print_json(report)
    else:
        if json_out:
            Path(json_out).write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
        print_frames(results)
        warn_unreliable(results)
        for f in failed:
            typer.echo(f"failed: {f['file']}: {f['error']}", err=True)
    if failed:
        raise typer.Exit(1)


@app.command()
def release(
    batch: str = typer.Argument(..., help="Batch id or code."),
    spec: Path = typer.Option(..., "--spec", help="Specification YAML."),
    db: str = typer.Option(..., "--db", help="Historian (SQLite path or URL)."),
    author: str | None = typer.Option(None, "--author", help="Who asks for the disposition."),
    reason: str = typer.Option("QC disposition on the specification", "--reason",
                               help="Why, for the audit trail."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Judge a batch on its QC results against a specification and record the disposition.

    The disposition is a ``release`` record of the batch and an audit-trail entry; QA's
    e-signed release (the cockpit) comes after it.
    """
    from biopilot.quality import audit_disposition, load_spec, release_batch

    who = author or current_user()
    try:
        specification = load_spec(spec)
        store = open_store(db)
        decision, qc, record_id = release_batch(
            store, resolve_batch(batch), specification, author=who
        )
        entry = audit_disposition(store, resolve_batch(batch), record_id, author=who, reason=reason)
    except (ConfigError, ValueError, KeyError) as err:
        fail(str(err))
    out = {"batch": batch, "record_id": record_id, "audit_seq": entry.seq, **decision.as_dict(),
           "attributes": qc.as_dict()}
    if as_json:
        print_json(out)
        return
    rows = [
        {
            "attribute": c.attribute,
            "value": c.value,
            "min": c.low,
            "max": c.high,
            "verdict": c.verdict,
        }
        for c in decision.checks
    ]
    print_table(f"batch {batch}: {decision.disposition.upper()}", rows)
    for reason in decision.reasons:
        typer.echo(f"- {reason}")


def write_overlay(analysis: FrameAnalysis, path: Path) -> Path:
    """PNG of the phase with cell contours coloured by class (green live, red dead, blue diff.)."""
    from biopilot.imaging.overlay import overlay_png

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(overlay_png(analysis))
    return path


def _write_cells(tables: list[pd.DataFrame], csv: Path | None, parquet: Path | None) -> None:
    import pandas as pd

    table = pd.concat(tables, ignore_index=True)
    if csv is not None:
        table.to_csv(csv, index=False)
    if parquet is not None:
        table.to_parquet(parquet, index=False)


def _pick(qc: dict[str, Any]) -> dict[str, Any]:
    keys = ("viable_cells_per_cm2", "viable_cells_per_ml", "dry_mass_pg_median", "dry_mass_cv",
            "clustered_fraction")
    return {k: qc[k] for k in keys}


def _parse_size(size: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", size)
    if not m:
        raise ValueError(f"--size must be WIDTHxHEIGHT in pixels (e.g. 3840x2748), got {size!r}")
    return int(m.group(1)), int(m.group(2))


def _batch_store(db: str, batch: str) -> Any:
    """The store, once ``batch`` is known in it: checked before any frame is analysed."""
    from biopilot.store import StoreError

    historian = open_store(db)
    try:
        historian.batch(resolve_batch(batch))
    except StoreError as err:
        fail(f"{err}: start it first: biopilot batch start {batch} --product NAME --db {db}")
    return historian
