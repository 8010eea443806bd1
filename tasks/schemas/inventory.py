"""Package data events: a product's packages were measured (Trademax ``PATCH inventory/{artno}``).

Trademax only lets package data be clarified (values may change a little).  Unlike a dispatch
package, an inventory package may give its volume directly or as height, width and length.
"""
from __future__ import annotations

from marshmallow import ValidationError, validates_schema

from tasks.schemas.common import (
    EventSchema,
    Integer,
    Listing,
    Measure,
    Nested,
    StrictSchema,
    artno,
    require_unique,
    required_event_id,
    warehouse_id,
)

MAX_PACKAGES = 1000
DIMENSIONS = ("height", "width", "length")


class InventoryPackageSchema(StrictSchema):
    """One package of a product: how many alike, their weight, and a volume or all three dimensions."""

    number = Integer(minimum=1, required=True)
    # A package that occurs zero times is no package: at least one.
    quantity = Integer(minimum=1, digit_string=True, required=True)
    weight = Measure(required=True)
    volume = Measure()
    height = Measure()
    width = Measure()
    length = Measure()

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _volume_or_dimensions(self, data, original, **kwargs):
        # Schema validators also run when the package was no object at all (that error is already reported).
        if not isinstance(original, dict) or "volume" in original:
            return
        missing = [name for name in DIMENSIONS if name not in original]
        if missing:
            raise ValidationError({"volume": [
                f"Required unless height, width and length are all given (missing: {', '.join(missing)})."]})


class PackageDataSchema(EventSchema):
    """``inventory.update_packages``; keyed by ``event_id``.  ``artno`` goes into the path."""

    event_id = required_event_id()
    artno = artno(required=True)
    warehouse_id = warehouse_id(required=True)
    packages = Listing(Nested(InventoryPackageSchema), max_items=MAX_PACKAGES, required=True)

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _numbers_unique(self, data, original, **kwargs):
        require_unique(original, "packages", "number")
