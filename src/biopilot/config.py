"""Typed boundaries: pydantic base models and YAML loading with errors that name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["ConfigError", "StrictModel", "format_validation_error", "load_yaml", "parse_model"]

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """Raised when a configuration file or body is malformed; the message names the field."""


class StrictModel(BaseModel):
    """Base for every typed boundary: unknown fields are refused, values are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def format_validation_error(err: ValidationError, source: str = "") -> str:
    """Turn a pydantic ValidationError into one line per field: ``path: rule (got value)``."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        got = e.get("input")
        shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"  {loc}: {msg}{shown}" if loc else f"  {msg}{shown}")
    head = f"invalid {source}" if source else "invalid input"
    return head + ":\n" + "\n".join(lines)


def parse_model(model: type[M], data: Any, source: str = "") -> M:
    """Validate ``data`` into ``model``; raise ConfigError naming each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source or model.__name__)) from None


def load_yaml(path: str | Path, model: type[M]) -> M:
    """Load a YAML file into a validated pydantic model.

    Raises
    ------
    ConfigError
        If the file is missing, is not valid YAML, or a field breaks its rule; the message
        names the file and each offending field with the allowed range.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such file")
    try:
        # The C loader when libyaml is there: about 10x faster than the pure-Python one.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load(p.read_text(encoding="utf-8"), Loader=loader)  # a safe loader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{p}: malformed YAML{where}: {getattr(err, 'problem', err)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ConfigError(f"{p}: expected a mapping of fields at the top, got {kind}")
    return parse_model(model, data, source=str(p))
