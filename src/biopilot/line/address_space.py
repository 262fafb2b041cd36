"""The ISA-88 address space of a line: Site / Area / Unit objects, one object per tag.

Each tag is an object under its unit holding a ``PV`` variable (an OPC UA ``AnalogItemType``
with ``EngineeringUnits`` (EUInformation, UNECE codes) and ``EURange``), and for setpoints a
writable ``SP`` variable. A spectrum is a Float-array ``PV`` beside a ``wavenumbers_cm1``
variable. NodeIds are strings, ``ns=<ns>;s=<Site>/<Area>/<Unit>/<tag>/<PV|SP>``, so they
stay the same across server restarts and a client's tag map keeps working.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from asyncua import Node, Server, ua

from biopilot.twin.sensors import ONLINE_SENSORS

__all__ = [
    "DOSE_SETPOINTS",
    "NAMESPACE_URI",
    "SETPOINT_SPECS",
    "TWIN_TAG_SPECS",
    "TagSpec",
    "UnitNodes",
    "add_unit",
    "node_text",
    "string_node_id",
    "twin_tag_specs",
]

#: Namespace of biopilot's own address space.
NAMESPACE_URI = "urn:biopilot:line"
_UNECE = "http://www.opcfoundation.org/UA/units/un/cefact"
# UNECE Recommendation 20 common codes of the units we use (OPC UA Part 8, 5.6.3).
_UNECE_CODES = {"degC": "CEL", "%": "P1", "L": "LTR", "mL": "MLT", "L/h": "L2"}


@dataclass(frozen=True)
class TagSpec:
    """A variable of a unit: its tag, engineering units, range, and what kind it is."""

    tag: str
    units: str
    low: float
    high: float
    writable: bool = False  # a setpoint (``SP``), written by clients
    array: bool = False  # a spectrum (Float array) with a ``wavenumbers_cm1`` axis


# Engineering units and instrument ranges of the twin's tags we know; a tag added to the twin
# later gets its units from its name (units live in names) and a wide range.
_KNOWN_TAGS: dict[str, tuple[str, float, float]] = {
    "ph": ("pH", 6.0, 8.0),
    "do_pct": ("%", 0.0, 100.0),
    "temperature_c": ("degC", 0.0, 50.0),
    "our_mmol_per_l_h": ("mmol/L/h", 0.0, 20.0),
    "cer_mmol_per_l_h": ("mmol/L/h", 0.0, 20.0),
    "capacitance_pf_per_cm": ("pF/cm", 0.0, 200.0),
    "base_added_ml": ("mL", 0.0, 100_000.0),
    "volume_l": ("L", 0.0, 3000.0),
    "o2_fraction_pct": ("%", 0.0, 100.0),
}
_SUFFIX_UNITS = (
    ("_mmol_per_l_h", "mmol/L/h"),
    ("_pf_per_cm", "pF/cm"),
    ("_ml_per_h", "mL/h"),
    ("_slpm", "L/min"),
    ("_pct", "%"),
    ("_ml", "mL"),
    ("_l", "L"),
    ("_c", "degC"),
)


def twin_tag_specs() -> tuple[TagSpec, ...]:
    """Return the specs of every online tag of the twin (its sensors) and of its Raman."""
    specs = []
    for sensor in ONLINE_SENSORS:
        units, low, high = _KNOWN_TAGS.get(sensor.tag) or (_units_of(sensor.tag), 0.0, 1.0e6)
        specs.append(TagSpec(sensor.tag, units, low, high))
    specs.append(TagSpec("raman", "counts", 0.0, 1.0e6, array=True))
    return tuple(specs)


def _units_of(tag: str) -> str:
    """Engineering units from a tag name's suffix (``air_flow_slpm`` -> ``L/min``)."""
    return next((u for suffix, u in _SUFFIX_UNITS if tag.endswith(suffix)), "-")


#: The twin's online tags with their engineering units and instrument ranges, and Raman.
TWIN_TAG_SPECS: tuple[TagSpec, ...] = twin_tag_specs()
#: The setpoints a client may write: culture temperature, continuous feed rate, and two dose
#: commands (litres of the bolus feed and of glucose stock, delivered once at the next step,
#: after which the plant resets the command to 0).
SETPOINT_SPECS: tuple[TagSpec, ...] = (
    TagSpec("temperature_c", "degC", 28.0, 39.0, writable=True),
    TagSpec("feed", "L/h", 0.0, 100.0, writable=True),
    TagSpec("bolus", "L", 0.0, 200.0, writable=True),
    TagSpec("glucose_bolus", "L", 0.0, 100.0, writable=True),
)
#: Setpoints that are one-shot dose commands (consumed by the plant, then reset to 0).
DOSE_SETPOINTS: tuple[str, ...] = ("bolus", "glucose_bolus")


@dataclass
class UnitNodes:
    """The nodes of one unit: ``pv[tag]``, ``sp[tag]`` and ``axis[tag]`` (spectra)."""

    unit: str
    pv: dict[str, ua.NodeId]
    sp: dict[str, ua.NodeId]
    axis: dict[str, ua.NodeId]


def node_text(ns: int, site: str, area: str, unit: str, tag: str, leaf: str = "PV") -> str:
    """Return the NodeId text of ``leaf`` (PV, SP, wavenumbers_cm1) of a tag."""
    return f"ns={ns};s={site}/{area}/{unit}/{tag}/{leaf}"


async def add_unit(
    server: Server,
    ns: int,
    site: str,
    area: str,
    unit: str,
    specs: Sequence[TagSpec],
    *,
    axis_cm1: np.ndarray | None = None,
) -> UnitNodes:
    """Add ``Site/Area/Unit`` (reusing existing objects) and the unit's tags; return its nodes.

    Parameters
    ----------
    server : asyncua.Server
        The server, not yet started or running.
    ns : int
        Index of :data:`NAMESPACE_URI` on that server.
    site, area, unit : str
        The ISA-88 path of the unit.
    specs : sequence of TagSpec
        Its variables; a spec with ``writable`` is a setpoint ``SP``, else a ``PV``.
    axis_cm1 : ndarray, optional
        Wavenumber axis of the spectra (cm-1); required if a spec is an array.

    Returns
    -------
    UnitNodes
    """
    site_node = await _object(server.nodes.objects, ns, site, site)
    area_node = await _object(site_node, ns, f"{site}/{area}", area)
    unit_node = await _object(area_node, ns, f"{site}/{area}/{unit}", unit)
    out = UnitNodes(unit, {}, {}, {})
    for spec in specs:
        path = f"{site}/{area}/{unit}/{spec.tag}"
        tag_node = await _object(unit_node, ns, path, spec.tag)
        leaf = "SP" if spec.writable else "PV"
        var = await _analog(tag_node, ns, f"{path}/{leaf}", leaf, spec)
        (out.sp if spec.writable else out.pv)[spec.tag] = var.nodeid
        if spec.array:
            if axis_cm1 is None:
                raise ValueError(f"{spec.tag} is a spectrum: axis_cm1 is required")
            axis = await tag_node.add_variable(
                string_node_id(f"{path}/wavenumbers_cm1", ns),
                ua.QualifiedName("wavenumbers_cm1", ns),
                ua.Variant([float(x) for x in axis_cm1], ua.VariantType.Double),
            )
            out.axis[spec.tag] = axis.nodeid
    return out


def string_node_id(path: str, ns: int) -> ua.NodeId:
    """Return the string NodeId ``ns=<ns>;s=<path>``."""
    return ua.NodeId(ua.String(path), ua.Int16(ns))


def eu_information(units: str) -> ua.EUInformation:
    """Return the OPC UA EUInformation of ``units`` (UNECE UnitId where there is one)."""
    code = _UNECE_CODES.get(units)
    unit_id = -1 if code is None else int.from_bytes(code.encode("ascii").rjust(3, b"\0"), "big")
    return ua.EUInformation(
        NamespaceUri=_UNECE,
        UnitId=unit_id,
        DisplayName=ua.LocalizedText(units),
        Description=ua.LocalizedText(units),
    )


def _std(identifier: int) -> ua.NodeId:
    """A numeric NodeId of the standard namespace 0."""
    return ua.NodeId(ua.Int32(identifier))


async def _object(parent: Node, ns: int, path: str, name: str) -> Node:
    """Return the object ``name`` under ``parent``, creating it with NodeId ``path``."""
    node_id = string_node_id(path, ns)
    for child in await parent.get_children():
        if child.nodeid == node_id:
            return child
    return await parent.add_object(node_id, ua.QualifiedName(name, ns))


async def _analog(parent: Node, ns: int, path: str, name: str, spec: TagSpec) -> Node:
    """Add an AnalogItemType variable with EngineeringUnits and EURange properties."""
    attrs = ua.VariableAttributes()
    attrs.DisplayName = ua.LocalizedText(name)
    attrs.Description = ua.LocalizedText(f"{spec.tag} ({spec.units})")
    if spec.array:
        attrs.DataType = _std(ua.ObjectIds.Float)
        attrs.Value = ua.Variant([], ua.VariantType.Float)
        attrs.ValueRank = ua.ValueRank.OneDimension
        attrs.ArrayDimensions = [0]
    else:
        attrs.DataType = _std(ua.ObjectIds.Double)
        attrs.Value = ua.Variant(float("nan"), ua.VariantType.Double)
        attrs.ValueRank = ua.ValueRank.Scalar
    read = ua.AccessLevel.CurrentRead.mask
    access = read | (ua.AccessLevel.CurrentWrite.mask if spec.writable else 0)
    access |= 0 if spec.writable else ua.AccessLevel.HistoryRead.mask
    attrs.AccessLevel = attrs.UserAccessLevel = access
    attrs.Historizing = not spec.writable
    attrs.WriteMask = attrs.UserWriteMask = 0
    item = ua.AddNodesItem()
    item.RequestedNewNodeId = string_node_id(path, ns)
    item.BrowseName = ua.QualifiedName(name, ns)
    item.NodeClass = ua.NodeClass.Variable
    item.ParentNodeId = parent.nodeid
    item.ReferenceTypeId = _std(ua.ObjectIds.HasComponent)
    item.TypeDefinition = _std(ua.ObjectIds.AnalogItemType)
    item.NodeAttributes = attrs
    (result,) = await parent.session.add_nodes([item])
    result.StatusCode.check()
    var = Node(parent.session, result.AddedNodeId)
    # Standard property browse names live in namespace 0 (OPC UA Part 8, 5.3.2).
    await var.add_property(
        string_node_id(f"{path}/EngineeringUnits", ns),
        ua.QualifiedName("EngineeringUnits", 0),
        eu_information(spec.units),
    )
    await var.add_property(
        string_node_id(f"{path}/EURange", ns),
        ua.QualifiedName("EURange", 0),
        ua.Range(Low=spec.low, High=spec.high),
    )
    return var
