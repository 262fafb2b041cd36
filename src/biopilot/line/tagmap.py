"""The tag map: which OPC UA node of a vendor's server is which biopilot tag, in which unit.

A tag map is YAML validated by pydantic; an error names the field (``tags.3.node: ...``).

Example
-------
.. code-block:: yaml

    site: Site A
    area: Upstream
    tags:
      - {unit: BR-01, tag: ph, node: "ns=2;s=Site A/Upstream/BR-01/ph/PV", units: pH}
      - unit: BR-01
        tag: temperature_c
        browse_path: ["0:Objects", "2:Site A", "2:Upstream", "2:BR-01", "2:temperature_c", "2:PV"]
        units: degC
      - {unit: BR-01, tag: raman, kind: spectrum, node: "ns=2;s=...raman/PV",
         axis_node: "ns=2;s=...raman/wavenumbers_cm1"}

``node`` takes any OPC UA NodeId text (``ns=2;s=...``, ``ns=3;i=1042``, ``i=2258``,
``nsu=urn:vendor;s=...``); ``browse_path`` a list of ``ns:Name`` qualified names from the
root. Exactly one of the two is given.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from asyncua import ua
from pydantic import Field, field_validator, model_validator

from biopilot.config import StrictModel, load_yaml

__all__ = ["TagEntry", "TagMap", "load_tagmap"]

_TAG_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_QNAME_RE = re.compile(r"^\d+:.+$")


class TagEntry(StrictModel):
    """One mapped node: where it is on the server and what it is in biopilot."""

    unit: str = Field(min_length=1, max_length=200)
    tag: str = Field(min_length=1, max_length=120)
    node: str | None = None
    browse_path: list[str] | None = None
    units: str | None = Field(None, max_length=40)
    kind: Literal["scalar", "spectrum"] = "scalar"
    axis_node: str | None = None

    @field_validator("tag")
    @classmethod
    def _tag_name(cls, v: str) -> str:
        if not _TAG_RE.match(v):
            raise ValueError("must be lower_snake_case (a-z, 0-9, _), starting with a letter")
        return v

    @field_validator("node", "axis_node")
    @classmethod
    def _node_id(cls, v: str | None) -> str | None:
        if v is not None:
            parse_node_id(v)
        return v

    @field_validator("browse_path")
    @classmethod
    def _path(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if not v:
                raise ValueError("must name at least one element")
            bad = [p for p in v if not _QNAME_RE.match(p)]
            if bad:
                raise ValueError(f"elements must be 'namespace:Name', got {bad}")
        return v

    @model_validator(mode="after")
    def _one_address(self) -> TagEntry:
        if (self.node is None) == (self.browse_path is None):
            raise ValueError("give exactly one of node or browse_path")
        if self.kind == "spectrum" and self.axis_node is None:
            raise ValueError("a spectrum needs axis_node (its wavenumber axis)")
        if self.kind == "scalar" and self.axis_node is not None:
            raise ValueError("axis_node is only for kind: spectrum")
        return self

    @property
    def address(self) -> str:
        """The node as written in the map (NodeId text or the browse path joined by /)."""
        return self.node if self.node is not None else "/".join(self.browse_path or [])


class TagMap(StrictModel):
    """A validated tag map: the site and area of the units, and the mapped nodes."""

    site: str = Field("Site", min_length=1, max_length=200)
    area: str = Field("Area", min_length=1, max_length=200)
    tags: list[TagEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> TagMap:
        seen: dict[tuple[str, str], int] = {}
        nodes: dict[str, int] = {}
        for i, t in enumerate(self.tags):
            key = (t.unit, t.tag)
            if key in seen:
                raise ValueError(
                    f"tags.{i}: {t.unit}/{t.tag} is mapped twice (also tags.{seen[key]})"
                )
            if t.address in nodes:
                raise ValueError(
                    f"tags.{i}: node {t.address!r} is mapped twice (also tags.{nodes[t.address]})"
                )
            seen[key], nodes[t.address] = i, i
        return self

    @property
    def units(self) -> list[str]:
        """The units of the map, in order of first appearance."""
        return list(dict.fromkeys(t.unit for t in self.tags))


def load_tagmap(path: str | Path) -> TagMap:
    """Load and validate a tag map from YAML.

    Raises
    ------
    biopilot.config.ConfigError
        If the file is missing or malformed; the message names each bad field.
    """
    return load_yaml(path, TagMap)


def parse_node_id(text: str) -> ua.NodeId:
    """Parse OPC UA NodeId text; ValueError saying what is wrong."""
    try:
        return ua.NodeId.from_string(text)
    except Exception as err:  # asyncua raises UaStringParsingError, ValueError, IndexError...
        raise ValueError(f"not an OPC UA NodeId ({err or type(err).__name__})") from None
