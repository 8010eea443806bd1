"""The WMS operations delivered to Trademax: one row each (``worker.destinations.contract.Operation``).

A row names the WMS event's schema and key, the Trademax call that delivers it (its sender: one method of
``TrademaxClient``, see ``calls`` for the documented method and path), whether it needs the dispatch_id
of its shipment's delivered create, and whether it may be resent after an unknown outcome.  The task
(``trademax.<operation>``), queue (``trademax.<resource>``) and task module (``tasks.<resource>``) follow
from the row.

Resending after an unknown outcome: a read timeout leaves it unknown whether Trademax applied the
request.  The rules below say whether sending it again is harmless; where it is not, the pipeline parks
the event as ``uncertain`` for a person.
"""
from __future__ import annotations

from typing import Any

from tasks.schemas import dispatch, inventory, orders, receipt, stock
from worker.destinations.contract import Destination, Operation
from worker.destinations.trademax.declaration import DECLARATION


# -- may it be resent after an unknown outcome? -------------------------------------------------------

def deduplicated_by_transaction_id(event: Any) -> bool:
    # Trademax answers 452 to a repeated transaction_id, which the pipeline counts as delivered.
    return True


def same_state_again(event: Any) -> bool:
    # The request states a target (package data, line locks, dispatch header/package values, draft=false):
    # applying it twice leaves Trademax as applying it once.  A dispatch update names its packages by
    # package_id, so a resent package replaces itself rather than adding a second one (an update keeps the
    # draft a draft: the client always sends draft, true unless the event says false).  Publishing — by
    # dispatch.publish or by an update with draft=false — and deleting (target: the dispatch gone) are
    # one-way: Trademax refuses the second time, and the pipeline then reads the dispatch back
    # (worker.destinations.trademax.read_back) to tell a refusal from a change that already landed.
    return True


def absolute_stock_value(event: Any) -> bool:
    # "absolute" sets the quantity (idempotent); "relative" adds to it, and twice is double.
    return event.fields.get("type") == stock.ABSOLUTE


def never(event: Any) -> bool:
    # vendor_dispatch.create has no transaction_id, so a repeat would be a second dispatch.
    return False


# -- senders: send(client, fields, dispatch_id) ------------------------------------------------------
# dispatch_id is filled in by the pipeline from the delivered dispatch.create of the same transaction_id
# (None for operations that do not need it).

def _without(fields: dict, *names: str) -> dict:
    return {k: v for k, v in fields.items() if k not in names}


def _create_dispatch(client, fields, _):
    return client.create_dispatch(fields)


def _update_dispatch(client, fields, dispatch_id):
    return client.update_dispatch(dispatch_id, fields)


def _publish_dispatch(client, fields, dispatch_id):
    return client.publish_dispatch(dispatch_id, fields)


def _delete_dispatch(client, fields, dispatch_id):
    return client.delete_dispatch(dispatch_id)


def _create_vendor_dispatch(client, fields, _):
    return client.create_vendor_dispatch(fields)


def _create_receipt(client, fields, _):
    return client.create_receipt(fields)


def _adjust_stock(client, fields, _):
    return client.adjust_stock(fields["artno"], _without(fields, "artno"))


def _update_package_data(client, fields, _):
    return client.update_package_data(fields["artno"], _without(fields, "artno"))


def _lock_order_lines(client, fields, _):
    return client.lock_order_lines(fields["order_no"], _without(fields, "order_no"))


def _row(name, resource, key_field, schema, send, resend_rule, **policies) -> Operation:
    return Operation(name=name, destination="trademax", resource=resource, key_field=key_field, schema=schema,
                     send=send, resend_rule=resend_rule, **policies)


TX, EV = "transaction_id", "event_id"

OPERATIONS: tuple[Operation, ...] = (
    # operation, resource, key, schema, sender, resend rule, policies (worker.destinations.contract)
    _row("dispatch.create", "dispatch", TX, dispatch.DispatchCreateSchema, _create_dispatch,
         deduplicated_by_transaction_id, wakes_dispatch_waiters=True),
    _row("dispatch.update", "dispatch", EV, dispatch.DispatchUpdateSchema, _update_dispatch,
         same_state_again, needs_dispatch_id=True),
    _row("dispatch.publish", "dispatch", EV, dispatch.DispatchPublishSchema, _publish_dispatch,
         same_state_again, needs_dispatch_id=True),
    _row("dispatch.delete", "dispatch", EV, dispatch.DispatchDeleteSchema, _delete_dispatch,
         same_state_again, needs_dispatch_id=True),
    _row("vendor_dispatch.create", "dispatch", EV, dispatch.VendorDispatchCreateSchema,
         _create_vendor_dispatch, never),
    _row("receipt.create", "receipt", TX, receipt.ReceiptCreateSchema, _create_receipt,
         deduplicated_by_transaction_id),
    _row("stock.adjust", "stock", EV, stock.StockAdjustmentSchema, _adjust_stock,
         absolute_stock_value, ordered_by_sku=True),
    _row("inventory.update_packages", "inventory", EV, inventory.PackageDataSchema, _update_package_data,
         same_state_again),
    _row("order.lock_lines", "orders", EV, orders.LineLocksSchema, _lock_order_lines,
         same_state_again),
)


# -- the destination ---------------------------------------------------------------------------------

CHECK_ORDER_NO = "WMS-RELAY-CHECK"
CHECK_WAREHOUSE = "wms-relay-check"


def build_client(settings, *, redis=None, clock=None):
    """The process's Trademax client (needs TRADEMAX_API_KEY and TRADEMAX_SECRET)."""
    import time

    from worker.destinations.trademax.client import TrademaxClient

    return TrademaxClient(settings.require_credentials("trademax"), clock=clock or time.time)


def check(client) -> str:
    """One signed, read-only request: GET the lines of a made-up outgoing order.  Any answer past
    authentication — even "not found" — proves the api key and secret are accepted; a 401 is raised."""
    from worker.errors import PermanentError

    try:
        reply = client.get_order_lines(CHECK_ORDER_NO, CHECK_WAREHOUSE)
    except PermanentError as exc:
        if exc.status == 401:
            raise
        code = f", error_code {exc.error_code}" if exc.error_code else ""
        return (f"credentials accepted (the test request was answered HTTP {exc.status}{code}, which is "
                "expected for a made-up order)")
    return f"credentials accepted (HTTP {reply.status})"


def sandbox(settings, options):
    """The fake Trademax (``wms-relay sandbox``), taking the one api key and secret of ``settings``."""
    from worker.sandbox.trademax.api import TrademaxApi

    return TrademaxApi(keys={settings.trademax_api_key: settings.trademax_secret})


# Every WMS operation; always on (TRADEMAX_BASE_URL has a default).  Its keys keep the names they had
# before there were other destinations (namespace "wms", refs without a prefix).
DESTINATION = Destination(declaration=DECLARATION, operations=OPERATIONS, build_client=build_client,
                          check=check, sandbox=sandbox, namespace="wms", ref_prefix="")
