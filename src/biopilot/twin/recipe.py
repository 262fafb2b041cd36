"""The fed-batch recipe a process engineer sets: typed, validated, loadable from YAML."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Self

from pydantic import Field, model_validator

from biopilot.config import StrictModel, load_yaml, parse_model
from biopilot.models.kinetics import GLUCOSE_G_PER_MMOL, FeedComposition

__all__ = [
    "BolusFeed",
    "ContinuousFeed",
    "FeedMedium",
    "GlucoseFeed",
    "Recipe",
    "default_recipe",
    "load_recipe",
    "with_harvest_day",
]


class FeedMedium(StrictModel):
    """A feed medium: what one litre brings in."""

    glucose_g_per_l: float = Field(0.0, ge=0, le=700)
    glutamine_mmol_per_l: float = Field(0.0, ge=0, le=300)
    osmolality_mosm_per_kg: float = Field(300.0, gt=0, le=4000)

    def composition(self) -> FeedComposition:
        """Return the medium as the kinetics model's :class:`FeedComposition`."""
        return FeedComposition(
            self.glucose_g_per_l, self.glutamine_mmol_per_l, self.osmolality_mosm_per_kg
        )


class BolusFeed(StrictModel):
    """One bolus addition of ``volume_l`` litres of ``medium`` at ``day``."""

    day: float = Field(ge=0, le=60)
    medium: str
    volume_l: float = Field(gt=0, le=10000)


class ContinuousFeed(StrictModel):
    """A constant-rate feed of ``medium`` from ``start_day`` to ``end_day``."""

    medium: str
    start_day: float = Field(ge=0, le=60)
    end_day: float = Field(gt=0, le=60)
    rate_l_per_day: float = Field(gt=0, le=5000)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end_day <= self.start_day:
            raise ValueError(f"end_day ({self.end_day}) must be after start_day ({self.start_day})")
        return self


class GlucoseFeed(StrictModel):
    """Daily glucose top-up: after each at-line sample from ``start_day``, back to target."""

    stock_g_per_l: float = Field(400.0, gt=0, le=700)
    target_g_per_l: float = Field(4.0, gt=0, le=15)
    trigger_below_g_per_l: float = Field(3.5, ge=0, le=15)
    start_day: float = Field(3.0, ge=0, le=60)

    def composition(self) -> FeedComposition:
        """Return the stock as a :class:`FeedComposition` (osmolality from its molarity)."""
        return FeedComposition(self.stock_g_per_l, 0.0, self.stock_g_per_l / GLUCOSE_G_PER_MMOL)


class Recipe(StrictModel):
    """A fed-batch recipe: inoculum, medium, feeds, temperature, setpoints and harvest.

    Raises
    ------
    pydantic.ValidationError
        (ConfigError through :func:`load_recipe`) naming the field and its allowed range, or
        the cross-field rule broken: shift before harvest, feeds within the batch, known
        media, volume never above the working volume with the scheduled feeds.
    """

    name: str = "platform-mAb"
    seeding_density_cells_per_ml: float = Field(0.8e6, gt=0, le=1.0e7)
    seeding_viability_pct: float = Field(97.0, gt=50, le=100)
    initial_volume_l: float = Field(1300.0, gt=0, le=25000)
    working_volume_l: float = Field(2000.0, gt=0, le=25000)
    initial_glucose_g_per_l: float = Field(6.0, ge=0, le=20)
    initial_glutamine_mmol_per_l: float = Field(4.0, ge=0, le=20)
    initial_osmolality_mosm_per_kg: float = Field(300.0, ge=200, le=450)
    media: dict[str, FeedMedium] = Field(default_factory=dict)
    bolus_feeds: list[BolusFeed] = Field(default_factory=list)
    continuous_feeds: list[ContinuousFeed] = Field(default_factory=list)
    glucose_feed: GlucoseFeed | None = None
    temperature_c: float = Field(36.5, ge=30, le=39)
    shift_temperature_c: float = Field(33.0, ge=28, le=39)
    temperature_shift_day: float | None = Field(5.0, ge=0, le=60)
    ph_setpoint: float = Field(7.0, ge=6.5, le=7.6)
    ph_deadband: float = Field(0.05, ge=0, le=0.3)
    do_setpoint_pct: float = Field(40.0, gt=0, le=100)
    harvest_day: float = Field(14.0, gt=0, le=60)
    harvest_duration_h: float = Field(2.0, gt=0, le=48)
    sample_hour_of_day: float = Field(0.0, ge=0, lt=24)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.initial_volume_l > self.working_volume_l:
            raise ValueError(
                f"initial_volume_l ({self.initial_volume_l} L) must not exceed "
                f"working_volume_l ({self.working_volume_l} L)"
            )
        shift = self.temperature_shift_day
        if shift is not None and self.harvest_day <= shift:
            raise ValueError(
                f"harvest_day ({self.harvest_day}) must be after temperature_shift_day ({shift})"
            )
        if self.harvest_duration_h >= self.harvest_day * 24.0:
            raise ValueError("harvest_duration_h must be shorter than the batch (harvest_day)")
        for where, medium, first, last in self._feed_spans():
            if medium not in self.media:
                known = ", ".join(sorted(self.media)) or "none defined"
                raise ValueError(f"{where}.medium: unknown medium {medium!r} (media: {known})")
            if not first < self.harvest_day or last > self.harvest_day:
                raise ValueError(
                    f"{where}: day {first:g}-{last:g} must lie within the batch, "
                    f"0 <= day < harvest_day ({self.harvest_day})"
                )
        self._check_volume()
        return self

    def _feed_spans(self) -> list[tuple[str, str, float, float]]:
        spans = [
            (f"bolus_feeds[{i}]", b.medium, b.day, b.day) for i, b in enumerate(self.bolus_feeds)
        ]
        spans += [
            (f"continuous_feeds[{i}]", c.medium, c.start_day, c.end_day)
            for i, c in enumerate(self.continuous_feeds)
        ]
        return spans

    def _check_volume(self) -> None:
        """Raise if the scheduled feeds take the volume above the working volume."""
        ends = [(b.day, f"bolus_feeds[{i}]") for i, b in enumerate(self.bolus_feeds)]
        ends += [(c.end_day, f"continuous_feeds[{i}]") for i, c in enumerate(self.continuous_feeds)]
        for day, where in sorted(ends):
            volume = self.scheduled_volume_l(day)
            if volume > self.working_volume_l + 1e-9:
                raise ValueError(
                    f"{where} (day {day:g}) takes the volume to {volume:.1f} L, above "
                    f"working_volume_l ({self.working_volume_l} L)"
                )

    def scheduled_volume_l(self, day: float) -> float:
        """Return the volume (L) at ``day`` from the scheduled bolus and continuous feeds only."""
        volume = self.initial_volume_l + sum(b.volume_l for b in self.bolus_feeds if b.day <= day)
        for c in self.continuous_feeds:
            span = max(0.0, min(day, c.end_day) - c.start_day)
            volume += c.rate_l_per_day * span
        return volume

    @property
    def harvest_h(self) -> float:
        """Batch duration from inoculation to harvest, hours."""
        return self.harvest_day * 24.0


def load_recipe(path: str | Path) -> Recipe:
    """Load and validate a recipe YAML file.

    Raises
    ------
    biopilot.config.ConfigError
        If the file is missing or malformed, or a field breaks its rule.
    """
    return load_yaml(path, Recipe)


def default_recipe() -> Recipe:
    """Return the platform recipe shipped with biopilot (``twin/recipes/default.yaml``)."""
    with resources.as_file(resources.files("biopilot.twin") / "recipes" / "default.yaml") as p:
        return load_recipe(p)


def with_harvest_day(recipe: Recipe, harvest_day: float) -> Recipe:
    """Return ``recipe`` harvested on ``harvest_day``: later feeds dropped, continuous ones cut.

    Raises
    ------
    biopilot.config.ConfigError
        If the shortened recipe breaks a rule (e.g. the harvest comes before the
        temperature shift); the message names the field.
    """
    data = recipe.model_dump()
    data["harvest_day"] = harvest_day
    data["bolus_feeds"] = [f for f in data["bolus_feeds"] if f["day"] < harvest_day]
    kept = []
    for f in data["continuous_feeds"]:
        if f["start_day"] < harvest_day:
            kept.append({**f, "end_day": min(f["end_day"], harvest_day)})
    data["continuous_feeds"] = kept
    source = f"recipe {recipe.name!r} with harvest day {harvest_day}"
    return parse_model(Recipe, data, source=source)
