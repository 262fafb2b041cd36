"""Line connectivity: OPC UA client and server, reconnect, backfill and write-back."""

from biopilot.line.address_space import NAMESPACE_URI, SETPOINT_SPECS, TWIN_TAG_SPECS, TagSpec
from biopilot.line.client import LineClient, Sink
from biopilot.line.client_types import (
    Backoff,
    ClientStats,
    LineConfigError,
    LoginRefusedError,
    UnknownNodeError,
)
from biopilot.line.history import SampleHistory
from biopilot.line.netcut import NetworkRelay
from biopilot.line.quality import Sample, classify
from biopilot.line.security import (
    CertificatePair,
    ClientSecurity,
    ServerSecurity,
    generate_certificate,
)
from biopilot.line.server import LineServer
from biopilot.line.tagmap import TagEntry, TagMap, load_tagmap
from biopilot.line.twin_server import TwinLine, twin_tagmap

__all__ = [
    "NAMESPACE_URI",
    "SETPOINT_SPECS",
    "TWIN_TAG_SPECS",
    "Backoff",
    "CertificatePair",
    "ClientSecurity",
    "ClientStats",
    "LineClient",
    "LineConfigError",
    "LineServer",
    "LoginRefusedError",
    "NetworkRelay",
    "Sample",
    "SampleHistory",
    "ServerSecurity",
    "Sink",
    "TagEntry",
    "TagMap",
    "TagSpec",
    "TwinLine",
    "UnknownNodeError",
    "classify",
    "generate_certificate",
    "load_tagmap",
    "twin_tagmap",
]
