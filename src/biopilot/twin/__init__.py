"""The digital twin of the plant: fed-batch bioreactors with Raman, and the imaging incubator."""

from biopilot.twin.batch import BatchEvent, BatchResult, Phase, RamanSpectra
from biopilot.twin.bioreactor import Bioreactor, PlantInputs, simulate_batch
from biopilot.twin.faults import FAULT_NAMES, parse_fault
from biopilot.twin.incubator import (
    OpticalSetup,
    SceneSpec,
    SimulatedFrame,
    at_wavelength,
    benchmark_set,
    read_hologram,
    simulate_frame,
    write_frame,
)
from biopilot.twin.recipe import Recipe, default_recipe, load_recipe

__all__ = [
    "FAULT_NAMES",
    "BatchEvent",
    "BatchResult",
    "Bioreactor",
    "OpticalSetup",
    "Phase",
    "PlantInputs",
    "RamanSpectra",
    "Recipe",
    "SceneSpec",
    "SimulatedFrame",
    "at_wavelength",
    "benchmark_set",
    "default_recipe",
    "load_recipe",
    "parse_fault",
    "read_hologram",
    "simulate_batch",
    "simulate_frame",
    "write_frame",
]
