"""Typed inputs of a separation design: chip, transducer, medium, populations, operating point.

Every length, rate and property carries its unit in its name. A key written without its unit
(``channel_width: 375``) is refused with a message that names the unit-bearing field.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from biopilot.config import StrictModel
from biopilot.models.acoustics import half_wave_resonance_hz
from biopilot.models.acoustics_properties import MEDIA, PARTICLES

__all__ = [
    "Chip",
    "MediumSpec",
    "OperatingPoint",
    "Population",
    "Sample",
    "Transducer",
    "check_half_wave",
]

# A half-wave mode keeps one node on the centre line while k w stays within (pi/2, 3 pi/2):
# the channel may be from a quarter to three quarters of a wavelength wide.
_HALF_WAVE_BAND = (0.25, 0.75)


class _UnitModel(StrictModel):
    """Strict model that explains a key given without its unit."""

    @model_validator(mode="before")
    @classmethod
    def _units_in_names(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if key in cls.model_fields:
                    continue
                match = [f for f in cls.model_fields if f.startswith(f"{key}_")]
                if match:
                    raise ValueError(f"'{key}' has no unit: write it as '{match[0]}'")
        return data


class Transducer(_UnitModel):
    """Piezo transducer: linear voltage -> pressure map at resonance, Lorentzian around it."""

    # E_ac grows with the square of the drive voltage (Barnkob et al. 2010 Lab Chip 10:563),
    # i.e. p_a is linear in U. The slope is chip-specific: calibrate it by particle tracking.
    pressure_per_volt_pa_per_v: float = Field(gt=0, le=1e7)
    max_voltage_v: float = Field(gt=0, le=1000)
    # Default Q is ours (order of magnitude of glass/silicon chips); measure it as the
    # resonance width of the focusing quality versus frequency.
    quality_factor: float = Field(100.0, gt=1, le=1e5)
    frequency_span_fraction: float = Field(0.05, gt=0, le=0.5)

    def pressure_amplitude_pa(
        self, voltage_v: float, frequency_hz: float, resonance_hz: float
    ) -> float:
        """Pressure amplitude at ``voltage_v``: ``s U / sqrt(1 + (2 Q (f - f0) / f0)^2)``."""
        detune = 2.0 * self.quality_factor * (frequency_hz - resonance_hz) / resonance_hz
        return float(self.pressure_per_volt_pa_per_v * voltage_v / np.sqrt(1.0 + detune**2))


class Chip(_UnitModel):
    """Separation channel, inlet arrangement, outlet split and transducer."""

    name: str = "chip"
    channel_width_um: float = Field(gt=0, le=1e5)
    channel_height_um: float = Field(gt=0, le=1e5)
    channel_length_um: float = Field(gt=0, le=1e6)
    prefocused: bool = False
    prefocus_distance_from_wall_um: float | None = Field(None, gt=0)
    prefocus_spread_um: float = Field(5.0, ge=0)
    sample_flow_fraction: float = Field(1.0, gt=0, le=1)
    center_outlet_fraction: float = Field(gt=0, lt=1)
    target_outlet: Literal["center", "side"] = "center"
    flow_rate_range_ul_per_min: tuple[float, float] = (10.0, 500.0)
    max_mechanical_index: float | None = Field(None, gt=0)
    transducer: Transducer

    @field_validator("flow_rate_range_ul_per_min")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] < v[1]:
            raise ValueError("needs 0 < low < high (uL/min)")
        return v

    @model_validator(mode="after")
    def _geometry(self) -> Chip:
        if self.prefocused and self.prefocus_distance_from_wall_um is None:
            raise ValueError("prefocus_distance_from_wall_um is required when prefocused")
        d = self.prefocus_distance_from_wall_um
        if d is not None and d >= self.channel_width_um / 2:
            raise ValueError(
                f"prefocus_distance_from_wall_um={d} must be less than half of "
                f"channel_width_um={self.channel_width_um}"
            )
        return self


class MediumSpec(_UnitModel):
    """Suspending liquid: a literature preset (water, pbs, plasma) and/or explicit values."""

    preset: str | None = None
    density_kg_per_m3: float | None = Field(None, gt=100, le=3e4)
    speed_of_sound_m_per_s: float | None = Field(None, gt=100, le=1e4)
    viscosity_pa_s: float | None = Field(None, gt=0, le=10)

    @model_validator(mode="after")
    def _fill(self) -> MediumSpec:
        _fill_from_preset(self, MEDIA, ("density_kg_per_m3", "speed_of_sound_m_per_s",
                                        "viscosity_pa_s"))
        return self

    @property
    def compressibility_per_pa(self) -> float:
        """Adiabatic compressibility ``1 / (rho c^2)``, 1/Pa."""
        return 1.0 / (float(self.density_kg_per_m3 or 0) * float(self.speed_of_sound_m_per_s or 0)
                      ** 2)


class Population(_UnitModel):
    """One particle population: amount, size and acoustic-property distributions (lognormal)."""

    name: str = Field(min_length=1)
    preset: str | None = None
    count: float | None = Field(None, gt=0)
    fraction: float | None = Field(None, gt=0, le=1)
    is_target: bool = False
    diameter_um: float | None = Field(None, gt=0, le=1000)
    diameter_sd_um: float | None = Field(None, ge=0)
    density_kg_per_m3: float | None = Field(None, gt=100, le=3e4)
    density_sd_kg_per_m3: float | None = Field(None, ge=0)
    compressibility_per_pa: float | None = Field(None, ge=0, le=1e-8)
    compressibility_sd_per_pa: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _fill(self) -> Population:
        if (self.count is None) == (self.fraction is None):
            raise ValueError(f"population {self.name!r}: give exactly one of count or fraction")
        _fill_from_preset(self, PARTICLES, (
            "diameter_um", "diameter_sd_um", "density_kg_per_m3", "density_sd_kg_per_m3",
            "compressibility_per_pa", "compressibility_sd_per_pa"))
        return self

    @property
    def amount(self) -> float:
        """Relative abundance (count, or fraction)."""
        return float(self.count if self.count is not None else self.fraction or 0.0)


class Sample(_UnitModel):
    """What goes into the chip: the medium and at least one population, one of them a target."""

    medium: MediumSpec
    populations: list[Population]

    @field_validator("populations")
    @classmethod
    def _populations(cls, v: list[Population]) -> list[Population]:
        if not v:
            raise ValueError("is empty: list at least one population (name, count or fraction, "
                             "diameter_um, density_kg_per_m3, compressibility_per_pa, is_target)")
        names = [p.name for p in v]
        if len(set(names)) != len(names):
            raise ValueError(f"population names must be unique, got {names}")
        if not any(p.is_target for p in v):
            raise ValueError("mark at least one population with is_target: true")
        return v


class OperatingPoint(_UnitModel):
    """Flow rate, drive frequency and drive (voltage, or pressure amplitude directly)."""

    flow_rate_ul_per_min: float = Field(gt=0, le=1e6)
    frequency_hz: float = Field(gt=0, le=1e9)
    voltage_v: float | None = Field(None, ge=0)
    pressure_amplitude_pa: float | None = Field(None, ge=0, le=1e8)

    @model_validator(mode="after")
    def _one_drive(self) -> OperatingPoint:
        if (self.voltage_v is None) == (self.pressure_amplitude_pa is None):
            raise ValueError("give exactly one of voltage_v or pressure_amplitude_pa")
        return self

    def pressure_pa(self, chip: Chip, resonance_hz: float) -> float:
        """Pressure amplitude in the channel, from the transducer map if a voltage is given."""
        if self.pressure_amplitude_pa is not None:
            return self.pressure_amplitude_pa
        v = float(self.voltage_v or 0.0)
        return chip.transducer.pressure_amplitude_pa(v, self.frequency_hz, resonance_hz)


def check_half_wave(chip: Chip, medium: MediumSpec, frequency_hz: float) -> None:
    """Raise ValueError naming ``channel_width_um`` if no half-wave mode fits at ``frequency_hz``.

    The centre-line node of the half-wave mode exists while the width lies between a quarter
    and three quarters of the wavelength ``c / f`` in the medium.
    """
    c = float(medium.speed_of_sound_m_per_s or 0)
    lam_um = c / frequency_hz * 1e6
    lo, hi = _HALF_WAVE_BAND[0] * lam_um, _HALF_WAVE_BAND[1] * lam_um
    w = chip.channel_width_um
    f0 = float(half_wave_resonance_hz(w, c))
    if w > hi:
        raise ValueError(
            f"channel_width_um={w:g} is wider than a half-wave mode allows at frequency_hz="
            f"{frequency_hz:.4g} (at most {hi:.0f} um, 3/4 of the {lam_um:.0f} um wavelength); "
            f"the half-wave resonance of this channel is {f0:.4g} Hz"
        )
    if w < lo:
        raise ValueError(
            f"channel_width_um={w:g} is narrower than a half-wave mode allows at frequency_hz="
            f"{frequency_hz:.4g} (at least {lo:.0f} um); the half-wave resonance is {f0:.4g} Hz"
        )


def _fill_from_preset(model: Any, table: dict[str, Any], fields: tuple[str, ...]) -> None:
    """Fill unset ``fields`` of ``model`` from ``table[model.preset]``; name what is missing."""
    preset = getattr(model, "preset", None)
    if preset is not None and preset not in table:
        raise ValueError(f"preset {preset!r} is unknown; choose one of {sorted(table)}")
    values = table[preset] if preset is not None else None
    missing = []
    for f in fields:
        if getattr(model, f) is None:
            if values is None:
                missing.append(f)
            else:
                object.__setattr__(model, f, getattr(values, f))
    if missing:
        raise ValueError(f"missing {', '.join(missing)} (or give a preset: {sorted(table)})")
