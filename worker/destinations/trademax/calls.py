"""How each WMS operation becomes one Trademax call, and what of the reply the ledger keeps.

The table is the seam between the delivery pipeline (which knows nothing of URLs) and the Trademax client
(which knows nothing of WMS events).  A later channel (ka-ching, StockTrim...) gets a table of its own."""
from __future__ import annotations

from typing import Any, Callable

from worker.destinations.trademax.client import TrademaxClient, TrademaxReply

Send = Callable[[TrademaxClient, dict, Any], TrademaxReply]


def _without(fields: dict, *names: str) -> dict:
    return {k: v for k, v in fields.items() if k not in names}


# operation -> send(client, fields, dispatch_id).  dispatch_id is filled in by the pipeline from the
# delivered dispatch.create of the same transaction_id (None for operations that do not need it).
SENDERS: dict[str, Send] = {
    "dispatch.create": lambda c, f, _: c.create_dispatch(f),
    "dispatch.update": lambda c, f, d: c.update_dispatch(d, f),
    "dispatch.publish": lambda c, f, d: c.publish_dispatch(d, f),
    "dispatch.delete": lambda c, f, d: c.delete_dispatch(d),
    "vendor_dispatch.create": lambda c, f, _: c.create_vendor_dispatch(f),
    "receipt.create": lambda c, f, _: c.create_receipt(f),
    "stock.adjust": lambda c, f, _: c.adjust_stock(f["artno"], _without(f, "artno")),
    "inventory.update_packages": lambda c, f, _: c.update_package_data(f["artno"], _without(f, "artno")),
    "order.lock_lines": lambda c, f, _: c.lock_order_lines(f["order_no"], _without(f, "order_no")),
}

# Operations that name a shipment by transaction_id and need Trademax's dispatch_id first.
NEEDS_DISPATCH_ID = frozenset({"dispatch.update", "dispatch.publish", "dispatch.delete"})

# What the ledger keeps of a reply: the identifiers and links support staff and later events need.
_KEPT = ("dispatch_id", "receipt_id", "tracking_code", "labels_url_pdf", "labels_url_web",
         "shipping_agent_code", "dispatch_date", "draft", "old_quantity", "new_quantity", "quantity")


def kept_result(reply: TrademaxReply) -> dict:
    """The useful part of a delivered reply (never the whole body: the ledger stays small)."""
    data = reply.data if isinstance(reply.data, dict) else {}
    result = {name: data[name] for name in _KEPT if name in data}
    packages = data.get("packages") or []
    labels = [p["label_url"] for p in packages if isinstance(p, dict) and p.get("label_url")]
    if labels:
        result["package_labels"] = labels
    if reply.duplicate:
        result["duplicate"] = True
    result["status"] = reply.status
    return result
