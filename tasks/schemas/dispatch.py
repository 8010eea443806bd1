"""Dispatch events: a shipment packed for an outgoing order (Trademax ``dispatch`` and ``vendor/dispatch``).

A dispatch is created once (``dispatch.create``, keyed by its ``transaction_id``), may be updated
while it is a draft (``dispatch.update``), published (``dispatch.publish``) or deleted as a draft
(``dispatch.delete``).  Those three name the shipment by its ``transaction_id``: Trademax's
``dispatch_id`` exists only after the create is delivered, and the worker resolves it from the ledger.
"""
from __future__ import annotations

from marshmallow import ValidationError, validates_schema

from tasks.schemas.common import (
    Choice,
    EventSchema,
    ExternalId,
    Flag,
    Forbidden,
    Integer,
    Listing,
    Measure,
    Nested,
    StrictSchema,
    Text,
    artno,
    order_no,
    quantity,
    require_unique,
    required_event_id,
    transaction_id,
    warehouse_id,
)

ORDER_TYPES = ("SO", "PRO", "TO")
MAX_PACKAGES = 1000
MAX_PRODUCTS = 5000
MAX_PICKING_ZONES = 100

NAME_BY_TRANSACTION_ID = (
    "Do not send dispatch_id: name the shipment by its transaction_id; "
    "wms-relay looks up Trademax's dispatch_id from the delivered dispatch.create."
)
PUBLISH_SETS_DRAFT = "Leave draft out: dispatch.publish always sends draft=false."


def line_no(**kwargs) -> Integer:
    """An order line number.  The document types it as a string in dispatches, yet its examples and
    responses carry integers (1000, 20000): both are accepted and it is sent as an integer (the signed
    string is the same either way, and one spelling keeps a repeated event identical)."""
    return Integer(digit_string=True, **kwargs)


class PackageProductSchema(StrictSchema):
    """An order line whose goods (or part of them) travel in this package."""

    line_no = line_no(required=True)
    artno = artno(required=True)
    label = Text(64)


class PackageSchema(StrictSchema):
    """One package of a dispatch.  Weight and volume are required floats in the dispatch document."""

    package_id = Integer(minimum=1, required=True)
    external_package_id = ExternalId()
    weight = Measure(required=True)
    volume = Measure(required=True)
    picking_zones = Listing(Text(64), max_items=MAX_PICKING_ZONES)
    products = Listing(Nested(PackageProductSchema), max_items=MAX_PRODUCTS, required=True)


class DispatchProductSchema(StrictSchema):
    """How many of an order line's goods this dispatch ships."""

    line_no = line_no(required=True)
    artno = artno(required=True)
    quantity = quantity(required=True)


class _UniquePackages:
    """A dispatch names each package once (``package_id``): a repeat would replace itself at Trademax."""

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _packages_unique(self, data, original, **kwargs):
        require_unique(original, "packages", "package_id")


class DispatchCreateSchema(_UniquePackages, EventSchema):
    """``dispatch.create`` -> ``POST dispatch``; keyed by ``transaction_id`` (a repeat gets error 452)."""

    warehouse_id = warehouse_id(required=True)
    order_no = order_no(required=True)
    order_type = Choice(ORDER_TYPES, required=True)
    draft = Flag()
    transaction_id = transaction_id(required=True)
    external_reference = Text(255, min_length=0, identifier=False, allow_none=True)
    packages = Listing(Nested(PackageSchema), max_items=MAX_PACKAGES, required=True)
    products = Listing(Nested(DispatchProductSchema), max_items=MAX_PRODUCTS, required=True)


class DispatchChangeSchema(_UniquePackages, EventSchema):
    """What an update and a publish may carry: any dispatch field, the shipment named by ``transaction_id``.

    ``PATCH dispatch/{dispatch_id}`` adds packages (a new ``package_id``), replaces packages with a
    known one and changes header values; previous packages need not be sent again.  ``draft``: an update
    sends the event's own value or ``true`` (:class:`DispatchUpdateSchema`); a publish sends ``false``.
    """

    event_id = required_event_id()
    transaction_id = transaction_id(required=True)
    dispatch_id = Forbidden(NAME_BY_TRANSACTION_ID)
    warehouse_id = warehouse_id()
    order_no = order_no()
    order_type = Choice(ORDER_TYPES)
    draft = Flag()
    external_reference = Text(255, min_length=0, identifier=False, allow_none=True)
    packages = Listing(Nested(PackageSchema), max_items=MAX_PACKAGES)
    products = Listing(Nested(DispatchProductSchema), max_items=MAX_PRODUCTS)


UPDATE_KEEPS_DRAFT = (
    "Left out, dispatch.update sends draft=true (the dispatch stays a draft; Trademax would read a missing "
    "draft as false and publish it). draft=false publishes the dispatch with this update, which is one-way."
)


class DispatchUpdateSchema(DispatchChangeSchema):
    """``dispatch.update`` -> ``PATCH dispatch/{dispatch_id}``; keyed by ``event_id``.

    ``draft`` is always sent (``TrademaxClient.update_dispatch``): the event's own value, else ``true``.  The
    default is not written into the validated event, so an event accepted before keeps its fingerprint.
    """

    draft = Flag(metadata={"description": UPDATE_KEEPS_DRAFT})

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _changes_something(self, data, original, **kwargs):
        # Schema validators also run when the input was no object at all (that error is already reported).
        if not isinstance(original, dict):
            return
        named = set(original) - set(self.ENVELOPE) - {"transaction_id"}
        if not named:
            raise ValidationError("An update must carry at least one dispatch field besides transaction_id.")


class DispatchPublishSchema(DispatchChangeSchema):
    """``dispatch.publish`` -> ``PATCH dispatch/{dispatch_id}`` with ``draft=false``; keyed by ``event_id``.

    May carry whatever the draft still lacks; with nothing else it just publishes the draft.
    """

    draft = Forbidden(PUBLISH_SETS_DRAFT)


class DispatchDeleteSchema(EventSchema):
    """``dispatch.delete`` -> ``DELETE dispatch/{dispatch_id}`` (drafts only); keyed by ``event_id``."""

    event_id = required_event_id()
    transaction_id = transaction_id(required=True)
    dispatch_id = Forbidden(NAME_BY_TRANSACTION_ID)
    warehouse_id = warehouse_id()


class VendorDispatchCreateSchema(EventSchema):
    """``vendor_dispatch.create`` -> ``POST vendor/dispatch``: Trademax packs and labels the order.

    The request has no transaction_id, so Trademax cannot spot a repeat: ``event_id`` is the key.
    """

    event_id = required_event_id()
    order_no = order_no(required=True)
    labels_quantity = Integer(minimum=1, maximum=MAX_PACKAGES, required=True)
