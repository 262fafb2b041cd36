"""CLI: Design and simulate acoustophoretic cell separation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from biopilot.cli._common import JSON_OPTION, fail, print_json, print_table, progress
from biopilot.config import ConfigError, load_yaml, parse_model
from biopilot.models.acoustics import half_wave_resonance_hz
from biopilot.separation import (
    Chip,
    OperatingPoint,
    Outcome,
    Sample,
    check_half_wave,
    design_separation,
    draw_particles,
    evaluate,
    simulate,
    write_report,
)

app = typer.Typer(help="Design and simulate acoustophoretic cell separation.", no_args_is_help=True)

CHIP_ARG = typer.Argument(..., help="Chip YAML: channel, inlets, outlet split, transducer.")
POP_ARG = typer.Argument(..., help="Sample YAML: medium and populations (one is_target).")
HTML_OPTION = typer.Option(None, "--html", help="Write an offline HTML report to this file.")
SEED_OPTION = typer.Option(0, "--seed", help="Random seed of the particle draw.")


@app.command()
def design(
    chip_yaml: Path = CHIP_ARG,
    populations_yaml: Path = POP_ARG,
    recovery: float = typer.Option(0.9, "--recovery", help="Required target recovery (0-1]."),
    particles: int = typer.Option(
        4000, "--particles", min=1, help="Simulated particles per population."),
    max_mi: float | None = typer.Option(None, "--max-mi", help="Mechanical-index cap."),
    seed: int = SEED_OPTION,
    json_out: bool = JSON_OPTION,
    html_out: Path | None = HTML_OPTION,
) -> None:
    """Find flow rate, frequency and voltage that maximise purity at the required recovery.

    Example: biopilot separate design examples/separation/augustsson2012_chip.yaml
    examples/separation/augustsson2012_populations.yaml --recovery 0.95 --html design.html
    """
    chip, sample = _load(chip_yaml, populations_yaml)
    try:
        with progress(enabled=not json_out) as bar:
            task = bar.add_task("designing", total=1)
            result = design_separation(chip, sample, recovery, particles, seed, max_mi)
            bar.advance(task)
    except ValueError as err:
        fail(str(err))
    point = result.operating_point
    _finish(f"Design: {chip.name}", chip, point, result.trajectories, result.outcome, json_out,
            html_out, {"design": result.as_dict()})


@app.command("simulate")
def simulate_cmd(
    chip_yaml: Path = CHIP_ARG,
    populations_yaml: Path = POP_ARG,
    flow_ul_min: float = typer.Option(..., "--flow-ul-min", help="Total flow rate, uL/min."),
    frequency_mhz: float = typer.Option(..., "--frequency-mhz", help="Drive frequency, MHz."),
    voltage_v: float | None = typer.Option(None, "--voltage-v", help="Drive amplitude, V."),
    pressure_mpa: float | None = typer.Option(
        None, "--pressure-mpa", help="Pressure amplitude, MPa (instead of --voltage-v)."),
    particles: int = typer.Option(
        10000, "--particles", min=1, help="Simulated particles per population."),
    seed: int = SEED_OPTION,
    json_out: bool = JSON_OPTION,
    html_out: Path | None = HTML_OPTION,
) -> None:
    """Simulate the separation at one operating point: outlets, recovery, purity and dose.

    Example: biopilot separate simulate examples/separation/generic_chip.yaml
    examples/separation/generic_populations.yaml --flow-ul-min 100 --frequency-mhz 2.0
    --voltage-v 5
    """
    chip, sample = _load(chip_yaml, populations_yaml)
    try:
        point = parse_model(OperatingPoint, {
            "flow_rate_ul_per_min": flow_ul_min,
            "frequency_hz": frequency_mhz * 1e6,
            "voltage_v": voltage_v,
            "pressure_amplitude_pa": None if pressure_mpa is None else pressure_mpa * 1e6,
        }, source="operating point (--flow-ul-min, --frequency-mhz, --voltage-v/--pressure-mpa)")
        check_half_wave(chip, sample.medium, point.frequency_hz)
        if point.voltage_v is not None and point.voltage_v > chip.transducer.max_voltage_v:
            raise ValueError(f"--voltage-v {point.voltage_v:g} exceeds the chip's "
                             f"transducer.max_voltage_v={chip.transducer.max_voltage_v:g}")
        c = float(sample.medium.speed_of_sound_m_per_s or 0)
        f0 = float(half_wave_resonance_hz(chip.channel_width_um, c))
        with progress(enabled=not json_out) as bar:
            task = bar.add_task("simulating", total=1)
            parts = draw_particles(chip, sample, particles, seed)
            traj = simulate(parts, chip, sample.medium, point.flow_rate_ul_per_min,
                            point.frequency_hz, point.pressure_pa(chip, f0))
            bar.advance(task)
    except (ConfigError, ValueError) as err:
        fail(str(err))
    outcome = evaluate(traj, sample, chip, point.frequency_hz)
    extra = {"operating_point": point.model_dump(), "resonance_hz": f0,
             "outcome": outcome.as_dict()}
    _finish(f"Simulation: {chip.name}", chip, point, traj, outcome, json_out, html_out, extra)


def _load(chip_yaml: Path, populations_yaml: Path) -> tuple[Chip, Sample]:
    try:
        return load_yaml(chip_yaml, Chip), load_yaml(populations_yaml, Sample)
    except ConfigError as err:
        fail(str(err))


def _finish(title: str, chip: Chip, point: OperatingPoint, traj: Any, outcome: Outcome,
            json_out: bool, html_out: Path | None, payload: dict[str, Any]) -> None:
    if html_out is not None:
        try:
            write_report(html_out, title, chip, point, traj, outcome)
        except OSError as err:
            fail(f"--html {html_out}: {err}")
        payload["html"] = str(html_out)
    if json_out:
        print_json(payload)
        return
    e = outcome.exposure
    print_table(title, [{"quantity": k, "value": v} for k, v in {
        "flow rate (uL/min)": point.flow_rate_ul_per_min,
        "frequency (MHz)": point.frequency_hz / 1e6,
        "drive voltage (V)": point.voltage_v,
        "pressure amplitude (MPa)": e.pressure_amplitude_pa / 1e6,
        "energy density E_ac (J/m3)": e.energy_density_j_per_m3,
        "mechanical index": e.mechanical_index,
        "recovery (targets)": outcome.recovery,
        "purity (target outlet)": outcome.purity,
    }.items()])
    print_table("Populations and dose", [{
        "population": p.name,
        "target": "yes" if p.is_target else "",
        "to target outlet": p.to_target_outlet,
        "residence (s)": p.residence_time_s_median,
        "dose median (Pa2 s)": p.pressure_dose_pa2_s_median,
        "dose p95 (Pa2 s)": p.pressure_dose_pa2_s_p95,
    } for p in outcome.populations])
    for note in outcome.notes:
        typer.echo(f"note: {note}")
    if html_out is not None:
        typer.echo(f"report: {html_out}")
