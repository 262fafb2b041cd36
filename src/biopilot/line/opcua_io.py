"""Low-level OPC UA requests of the line client: node resolution, HistoryRead, subscription.

Kept apart from :mod:`biopilot.line.client` (the reconnect/backfill logic) so each reads
alone: these are thin, stateless wrappers over asyncua's services.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from asyncua import Client, Node, ua
from asyncua.common.subscription import Subscription

from biopilot.line.security import ClientSecurity, apply_client_security
from biopilot.line.tagmap import TagEntry

__all__ = [
    "BatchSubscription",
    "browse_variables",
    "history_read_raw",
    "resolve_entry",
    "resolve_node_id",
]


class BatchSubscription(Subscription):
    """A subscription that hands each publish's data changes over as one list (no tasks)."""

    def __init__(
        self,
        client: Client,
        on_items: Callable[[list[ua.MonitoredItemNotification]], None],
        publishing_ms: float,
    ) -> None:
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=publishing_ms,
            RequestedLifetimeCount=10_000,
            RequestedMaxKeepAliveCount=10,
            MaxNotificationsPerPublish=0,
            PublishingEnabled=True,
        )
        super().__init__(client.uaclient.session, params, handler=_NoHandler())  # type: ignore[arg-type]
        self._on_items = on_items

    async def publish_callback(self, publish_result: ua.PublishResult) -> None:
        """Take the data changes of one PublishResponse."""
        self.last_publish_at = time.monotonic()
        data = publish_result.NotificationMessage.NotificationData
        for notif in data or ():
            if isinstance(notif, ua.DataChangeNotification):
                self._on_items(notif.MonitoredItems)


async def resolve_entry(client: Client, e: TagEntry) -> ua.NodeId:
    """Return the NodeId of a tag-map entry (its NodeId text, or its browse path resolved)."""
    if e.node is not None:
        return await resolve_node_id(client, e.node)
    node = await client.nodes.root.get_child(list(e.browse_path or []))
    return node.nodeid


async def resolve_node_id(client: Client, text: str) -> ua.NodeId:
    """Parse NodeId text, resolving ``nsu=`` namespace URIs on this server."""
    node_id = ua.NodeId.from_string(text)
    uri = getattr(node_id, "NamespaceUri", None)  # nsu=... parses as an ExpandedNodeId
    if uri:
        idx = await client.get_namespace_index(uri)
        return ua.NodeId(node_id.Identifier, ua.Int16(idx), node_id.NodeIdType)
    return ua.NodeId(node_id.Identifier, node_id.NamespaceIndex, node_id.NodeIdType)


async def history_read_raw(
    client: Client, node_ids: list[ua.NodeId], start: datetime | None
) -> list[list[ua.DataValue]]:
    """HistoryRead raw values from ``start`` (inclusive; None: all) to now, per node."""
    details = ua.ReadRawModifiedDetails(
        IsReadModified=False,
        StartTime=start or ua.get_win_epoch(),
        EndTime=ua.get_win_epoch(),
        NumValuesPerNode=0,
        ReturnBounds=False,
    )
    out: list[list[ua.DataValue]] = [[] for _ in node_ids]
    todo: dict[int, bytes | None] = dict.fromkeys(range(len(node_ids)))
    while todo:
        params = ua.HistoryReadParameters(
            HistoryReadDetails=details,
            TimestampsToReturn=ua.TimestampsToReturn.Both,
            NodesToRead=[
                ua.HistoryReadValueId(NodeId=node_ids[i], ContinuationPoint=cp)
                for i, cp in todo.items()
            ],
        )
        results = await client.uaclient.history_read(params)
        nxt: dict[int, bytes | None] = {}
        for i, res in zip(list(todo), results, strict=True):
            res.StatusCode.check()
            out[i].extend(res.HistoryData.DataValues or [])
            if res.ContinuationPoint:
                nxt[i] = res.ContinuationPoint
        todo = nxt
    return out


async def browse_variables(
    url: str, security: ClientSecurity | None = None
) -> list[dict[str, Any]]:
    """Return every variable under Objects (not the Server object, not properties).

    Each row: ``node`` (NodeId text), ``path`` (browse path from Objects), ``units``
    (EngineeringUnits display name, if any), ``kind`` (scalar or array).
    """
    client = Client(url)
    await apply_client_security(client, security)
    rows: list[dict[str, Any]] = []
    async with client:
        server_id = client.nodes.server.nodeid
        stack: list[tuple[Node, str]] = [(client.nodes.objects, "0:Objects")]
        while stack:
            node, path = stack.pop()
            for child in await node.get_children(refs=ua.ObjectIds.HierarchicalReferences):
                if child.nodeid == server_id:
                    continue
                qn = await child.read_browse_name()
                child_path = f"{path}/{qn.NamespaceIndex}:{qn.Name}"
                cls = await child.read_node_class()
                if cls == ua.NodeClass.Object:
                    stack.append((child, child_path))
                elif cls == ua.NodeClass.Variable and qn.NamespaceIndex != 0:
                    rows.append(await _describe(child, child_path))
    return sorted(rows, key=lambda r: r["path"])


async def _describe(node: Node, path: str) -> dict[str, Any]:
    units = None
    for prop in await node.get_properties():
        if (await prop.read_browse_name()).Name == "EngineeringUnits":
            eu = await prop.read_value()
            units = getattr(getattr(eu, "DisplayName", None), "Text", None)
    rank = await node.read_attribute(ua.AttributeIds.ValueRank)
    kind = "array" if rank.Value is not None and rank.Value.Value not in (-1, -2) else "scalar"
    return {"node": node.nodeid.to_string(), "path": path, "units": units, "kind": kind}


class _NoHandler:
    """Placeholder handler: data changes go through ``publish_callback`` directly."""
