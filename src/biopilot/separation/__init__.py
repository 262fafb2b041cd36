"""Acoustic cell processing: acoustophoresis sorting and sonoporation dose."""

from biopilot.separation.config import (
    Chip,
    MediumSpec,
    OperatingPoint,
    Population,
    Sample,
    Transducer,
    check_half_wave,
)
from biopilot.separation.design import Design, design_separation, threshold_doses
from biopilot.separation.flow import ChannelFlow, height_profile, width_profile
from biopilot.separation.outcome import Exposure, Outcome, PopulationOutcome, evaluate
from biopilot.separation.plots import write_report
from biopilot.separation.trajectories import Particles, Trajectories, draw_particles, simulate

__all__ = [
    "ChannelFlow",
    "Chip",
    "Design",
    "Exposure",
    "MediumSpec",
    "OperatingPoint",
    "Outcome",
    "Particles",
    "Population",
    "PopulationOutcome",
    "Sample",
    "Trajectories",
    "Transducer",
    "check_half_wave",
    "design_separation",
    "draw_particles",
    "evaluate",
    "height_profile",
    "simulate",
    "threshold_doses",
    "width_profile",
    "write_report",
]
