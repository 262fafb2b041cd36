"""`biopilot separate design|simulate`: JSON, HTML, tables and clear errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from biopilot.cli.separate import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "separation"
CHIP = str(EXAMPLES / "generic_chip.yaml")
POPS = str(EXAMPLES / "generic_populations.yaml")
runner = CliRunner()


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_design_json_gives_operating_point_and_meets_recovery():
    result = runner.invoke(app, ["design", CHIP, POPS, "--recovery", "0.85", "--particles",
                                 "1000", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)["design"]
    assert out["met"] is True
    assert out["outcome"]["recovery"] >= 0.85 - 1e-3
    assert 0 < out["outcome"]["purity"] <= 1
    point = out["operating_point"]
    assert point["frequency_hz"] == pytest.approx(out["resonance_hz"], rel=0.01)
    names = [p["name"] for p in out["outcome"]["populations"]]
    assert names == ["viable", "dead", "debris"]
    assert out["outcome"]["exposure"]["mechanical_index"] <= 0.5 + 1e-9


def test_design_tables_and_offline_html_report(tmp_path):
    report = tmp_path / "design.html"
    result = runner.invoke(app, ["design", CHIP, POPS, "--particles", "500", "--html",
                                 str(report)])
    assert result.exit_code == 0, result.output
    assert "purity" in result.stdout and "mechanical index" in result.stdout
    page = report.read_text()
    assert "Trajectories" in page and "Exit position" in page
    assert "<script src=\"http" not in page  # plotly.js inlined: works offline
    assert "Plotly.newPlot" in page or "plotly" in page.lower()


def test_simulate_json_at_a_given_operating_point():
    result = runner.invoke(app, ["simulate", CHIP, POPS, "--flow-ul-min", "100",
                                 "--frequency-mhz", "2.0", "--voltage-v", "5", "--particles",
                                 "1000", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["operating_point"]["frequency_hz"] == 2.0e6
    assert 0 <= out["outcome"]["recovery"] <= 1
    e = out["outcome"]["exposure"]
    # transducer map of the chip: 1e5 Pa/V at resonance, Lorentzian with Q = 100 around it
    detune = 2 * 100 * (2.0e6 - out["resonance_hz"]) / out["resonance_hz"]
    assert e["pressure_amplitude_pa"] == pytest.approx(5 * 1e5 / (1 + detune**2) ** 0.5)


def test_simulate_with_pressure_instead_of_voltage():
    result = runner.invoke(app, ["simulate", CHIP, POPS, "--flow-ul-min", "100",
                                 "--frequency-mhz", "2.0", "--pressure-mpa", "0.3",
                                 "--particles", "300", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outcome"]["exposure"]["pressure_amplitude_pa"] == 3e5


def test_simulate_refuses_a_channel_too_wide_for_the_frequency():
    result = runner.invoke(app, ["simulate", CHIP, POPS, "--flow-ul-min", "100",
                                 "--frequency-mhz", "5", "--voltage-v", "5"])
    assert result.exit_code == 2
    assert "channel_width_um=375 is wider than a half-wave mode allows" in _flat(result.output)


def test_simulate_refuses_a_voltage_above_the_transducer_limit():
    result = runner.invoke(app, ["simulate", CHIP, POPS, "--flow-ul-min", "100",
                                 "--frequency-mhz", "2", "--voltage-v", "50"])
    assert result.exit_code == 2
    assert "exceeds the chip's transducer.max_voltage_v=20" in _flat(result.output)


def test_simulate_needs_exactly_one_drive():
    result = runner.invoke(app, ["simulate", CHIP, POPS, "--flow-ul-min", "100",
                                 "--frequency-mhz", "2"])
    assert result.exit_code == 2
    assert "exactly one of voltage_v or pressure_amplitude_pa" in _flat(result.output)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["populations"][0].update(compressibility_per_pa=-4e-10),
     "populations.0.compressibility_per_pa: Input should be greater than or equal to 0"),
    (lambda d: d.update(populations=[]), "populations: is empty"),
    (lambda d: d["populations"][0].update(diameter=12),
     "'diameter' has no unit: write it as 'diameter_um'"),
])
def test_bad_populations_exit_2_with_the_field_named(tmp_path, edit, message):
    data = yaml.safe_load(Path(POPS).read_text())
    edit(data)
    bad = tmp_path / "pops.yaml"
    bad.write_text(yaml.safe_dump(data))
    for cmd in (["design", CHIP, str(bad)],
                ["simulate", CHIP, str(bad), "--flow-ul-min", "50", "--frequency-mhz", "2",
                 "--voltage-v", "3"]):
        result = runner.invoke(app, cmd)
        assert result.exit_code == 2
        assert message in _flat(result.output)
        assert "Traceback" not in result.output


def test_missing_unit_in_chip_and_missing_file(tmp_path):
    data = yaml.safe_load(Path(CHIP).read_text())
    data["channel_height"] = data.pop("channel_height_um")
    bad = tmp_path / "chip.yaml"
    bad.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["design", str(bad), POPS])
    assert result.exit_code == 2
    assert "'channel_height' has no unit: write it as 'channel_height_um'" in _flat(
        result.output)
    result = runner.invoke(app, ["design", str(tmp_path / "nope.yaml"), POPS])
    assert result.exit_code == 2 and "no such file" in result.output


@pytest.mark.parametrize("cmd", [[], ["design"], ["simulate"]])
def test_every_command_has_help_and_json(cmd):
    result = runner.invoke(app, [*cmd, "--help"])
    assert result.exit_code == 0
    if cmd:
        assert "--json" in result.output and "--html" in result.output
