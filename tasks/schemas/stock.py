"""Stock adjustment events: a product's quantity in a warehouse changed (Trademax
``PATCH inventory/{artno}/stock-adjustment``).

An absolute adjustment states the counted quantity; re-applying it is harmless, and an older one is
superseded by a newer one.  A relative adjustment adds or removes goods; applying it twice is wrong,
so it needs a reason code and must not be zero.
"""
from __future__ import annotations

from marshmallow import ValidationError, validates_schema

from tasks.schemas.common import (
    MAX_INT,
    Choice,
    EventSchema,
    Integer,
    artno,
    quantity,
    required_event_id,
    warehouse_id,
)

ABSOLUTE = "absolute"
RELATIVE = "relative"


class StockAdjustmentSchema(EventSchema):
    """``stock.adjust``; keyed by ``event_id``.  ``artno`` goes into the path, the rest into the body."""

    event_id = required_event_id()
    artno = artno(required=True)
    warehouse_id = warehouse_id(required=True)
    quantity = quantity(minimum=-MAX_INT, required=True)
    type = Choice((ABSOLUTE, RELATIVE), required=True)
    reason = Integer()

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _fits_type(self, data, original, **kwargs):
        if not isinstance(original, dict):  # already reported as "Must be a JSON object."
            return
        errors: dict[str, list[str]] = {}
        amount = data.get("quantity")
        if data.get("type") == RELATIVE:
            if "reason" not in original:
                errors["reason"] = ["Required when type is relative (the change reason code)."]
            if amount == 0:
                errors["quantity"] = ["A relative adjustment must not be zero."]
        elif data.get("type") == ABSOLUTE and amount is not None and amount < 0:
            errors["quantity"] = ["An absolute quantity must not be negative."]
        if errors:
            raise ValidationError(errors)
