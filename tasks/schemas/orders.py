"""Order line lock events: the warehouse started (or stopped) processing outgoing order lines
(Trademax ``PATCH order/outgoing/{order_no}``), so the retailer no longer changes them."""
from __future__ import annotations

from marshmallow import validates_schema

from tasks.schemas.common import (
    EventSchema,
    Integer,
    Listing,
    Nested,
    StrictSchema,
    order_no,
    require_unique,
    required_event_id,
    warehouse_id,
)

MAX_LINES = 5000


class LineLockSchema(StrictSchema):
    """One order line: ``processing`` 1 locks it ("processing"), 0 releases it."""

    line_no = Integer(required=True)
    processing = Integer(minimum=0, maximum=1, required=True)


class LineLocksSchema(EventSchema):
    """``order.lock_lines``; keyed by ``event_id``.  ``order_no`` goes into the path."""

    event_id = required_event_id()
    order_no = order_no(required=True)
    warehouse_id = warehouse_id(required=True)
    lines = Listing(Nested(LineLockSchema), max_items=MAX_LINES, required=True)

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _lines_unique(self, data, original, **kwargs):
        # Two entries for one line would lock and release it in an order Trademax does not promise.
        require_unique(original, "lines", "line_no")
