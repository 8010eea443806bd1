"""Field types shared by every Trademax resource, and the event envelope.

The fields are strict on purpose: an event that reaches Trademax must be exactly what the WMS meant,
so nothing is coerced that could change meaning (``1.5`` is not the integer ``1``, ``"true"`` is not
a boolean).  The few tolerances are the ones Trademax's own document shows: a quantity may come as a
string of digits (``"quantity": "-7"``), and where the document types a field as a string but its
examples send numbers (dispatch ``line_no``, ``external_package_id``) both are accepted.

Every field returns exact builtin types (``int``, ``float``, ``str``, ``bool``), so the loaded data is
JSON-able and loading it again gives the same data.  Messages never quote the input value: it may be
huge, and the dead letter keeps it anyway.
"""
from __future__ import annotations

import math
import re
from datetime import date, datetime, timezone

from marshmallow import RAISE, Schema, ValidationError, fields

# Upper bound of a 32-bit signed integer: what Trademax's (PHP/MySQL) integer columns hold.
MAX_INT = 2**31 - 1
# No package weighs a thousand tonnes or measures a million units of volume; beyond that is a unit error.
MAX_MEASURE = 1_000_000.0
# A string of digits longer than this cannot be a valid integer here; checked before int() parses it.
_MAX_DIGITS = 20

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SIGNED_DIGITS = re.compile(r"[+-]?[0-9]+", re.ASCII)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:?[0-9]{2})",
    re.ASCII,
)
# occurred_at orders absolute stock values: a far-future time would supersede every later value.
_EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
_LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)


class StrictSchema(Schema):
    """A schema that rejects unknown fields (at every nesting level) and non-object input."""

    class Meta:
        unknown = RAISE

    error_messages = {"unknown": "Unknown field.", "type": "Must be a JSON object."}


class Checked:
    """A field that checks its value in ``_deserialize`` and takes no ``validate=`` validators (none of
    ours does): marshmallow's ``_validate`` would build an empty ``And`` of them for every value loaded —
    a tenth of an event's validation (issue 21).  With validators given, marshmallow runs them as ever."""

    def _validate(self, value) -> None:
        if self.validators:
            super()._validate(value)


class Nested(Checked, fields.Nested):
    """``fields.Nested`` (an object inside an event: a package, a product line) as a :class:`Checked`
    field: its schema validates it."""


class Text(Checked, fields.Field):
    """A string of 1..``max_length`` characters that UTF-8 can encode (signing hashes UTF-8 bytes).

    ``identifier=True`` (the default) also rejects control characters and surrounding whitespace:
    ids, article numbers and warehouse aliases never carry them, so their presence is a WMS bug.
    ``min_length=0`` allows the empty string (free text).  ``path_segment=True``: the value goes into a
    URL path (artno, order_no), where ``.`` and ``..`` are dot-segments that urllib3 removes — the request
    would go to another route than the one signed — so they are refused.
    """

    def __init__(self, max_length: int, *, min_length: int = 1, identifier: bool = True,
                 path_segment: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length
        self.min_length = min_length
        self.identifier = identifier
        self.path_segment = path_segment

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        if not isinstance(value, str):
            raise ValidationError("Not a valid string.")
        if len(value) > self.max_length:
            raise ValidationError(f"Longer than {self.max_length} characters.")
        if len(value) < self.min_length:
            raise ValidationError("Must not be empty.")
        if not value.isascii() and _SURROGATE.search(value):
            raise ValidationError("Not valid Unicode text (lone surrogate).")
        if self.path_segment and value in (".", ".."):
            raise ValidationError(f"Must not be '{value}': it goes into the URL path, where it would name "
                                  "another route.")
        if self.identifier:
            if _CONTROL.search(value):
                raise ValidationError("Must not contain control characters.")
            if value != value.strip():
                raise ValidationError("Must not start or end with whitespace.")
        elif "\x00" in value:
            raise ValidationError("Must not contain NUL characters.")
        return str.__str__(value)


class Integer(Checked, fields.Field):
    """A whole number in ``[minimum, maximum]``: a JSON integer, never a float or a boolean.

    ``digit_string=True`` also accepts a string of an optional sign and ASCII digits (``"-7"``),
    returned as an ``int``.
    """

    def __init__(self, *, minimum: int = 0, maximum: int = MAX_INT, digit_string: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.minimum = minimum
        self.maximum = maximum
        self.digit_string = digit_string

    def _deserialize(self, value, attr, data, **kwargs) -> int:
        if isinstance(value, bool):
            raise ValidationError("Not a valid integer.")
        if isinstance(value, int):
            number = int(value)
        elif (
            self.digit_string
            and isinstance(value, str)
            and len(value) <= _MAX_DIGITS
            and _SIGNED_DIGITS.fullmatch(value)
        ):
            number = int(value)
        else:
            raise ValidationError("Not a valid integer.")
        if not self.minimum <= number <= self.maximum:
            raise ValidationError(f"Must be between {self.minimum} and {self.maximum}.")
        return number


class Measure(Checked, fields.Field):
    """A non-negative finite number (weight, volume, a dimension); an int stays an int, a float a float."""

    def _deserialize(self, value, attr, data, **kwargs) -> int | float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("Not a valid number.")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError("Not a finite number.")
        if not 0 <= value <= MAX_MEASURE:
            raise ValidationError(f"Must be between 0 and {MAX_MEASURE:.0f}.")
        # -0.0 + 0.0 == 0.0: one spelling of zero, so loading twice gives the same data.
        return int(value) if isinstance(value, int) else float(value) + 0.0


class Flag(Checked, fields.Field):
    """A JSON boolean, ``true`` or ``false`` only (no ``"yes"``, no ``1``)."""

    def _deserialize(self, value, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean (true or false).")
        return value


class Choice(Checked, fields.Field):
    """One of a fixed set of strings (an enum in Trademax's document)."""

    def __init__(self, choices: tuple[str, ...], **kwargs):
        super().__init__(**kwargs)
        self.choices = choices

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise ValidationError(f"Must be one of: {', '.join(self.choices)}.")
        return str.__str__(value)


class CalendarDate(Checked, fields.Field):
    """A real calendar date written ``YYYY-MM-DD`` (kept as that string: it is what Trademax takes)."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            raise ValidationError("Must be YYYY-MM-DD.")
        try:
            date.fromisoformat(value)
        except ValueError:
            raise ValidationError("Not a real date (YYYY-MM-DD).") from None
        return str.__str__(value)


class Timestamp(Checked, fields.Field):
    """An ISO-8601 time with a timezone offset or ``Z``, normalized to UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.

    The normalized form has a fixed width, so it sorts as text in time order (the ledger relies on
    that to supersede older absolute stock values).
    """

    message = "Must be an ISO-8601 time with a timezone offset or Z, e.g. 2024-05-01T12:30:00+02:00."

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        if not isinstance(value, str) or len(value) > 40 or not _TIMESTAMP.fullmatch(value):
            raise ValidationError(self.message)
        try:
            moment = datetime.fromisoformat(value).astimezone(timezone.utc)
        except (ValueError, OverflowError):
            raise ValidationError(self.message) from None
        if not _EARLIEST <= moment < _LATEST:
            raise ValidationError("Must be between the years 2000 and 2099.")
        return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class ExternalId(Checked, fields.Field):
    """An identifier the document types as a string but sends as a number (``external_package_id``).

    Both are accepted and the value is sent as a string; a number becomes its decimal digits.  Digit
    strings are kept as given: leading zeros matter in identifiers such as SSCCs.
    """

    def __init__(self, max_length: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.text = Text(max_length)

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value <= 10**18:
                raise ValidationError("Must be a string, or a whole number between 0 and 10^18.")
            return str(int(value))
        return self.text._deserialize(value, attr, data)


class Forbidden(Checked, fields.Field):
    """A field the event must not carry, rejected with a message saying what to do instead."""

    def __init__(self, message: str, **kwargs):
        super().__init__(**kwargs)
        self.message = message

    def deserialize(self, value, attr=None, data=None, **kwargs):
        if value is fields.missing_:
            return value
        raise ValidationError(self.message)


class Listing(Checked, fields.List):
    """A JSON array of ``min_items``..``max_items`` entries.

    The length is checked before the entries, so an oversized array costs one message, not one per entry.
    """

    def __init__(self, inner, *, max_items: int, min_items: int = 1, **kwargs):
        super().__init__(inner, **kwargs)
        self.min_items = min_items
        self.max_items = max_items

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list):
            raise ValidationError("Not a valid list.")
        if not self.min_items <= len(value) <= self.max_items:
            raise ValidationError(f"Must hold between {self.min_items} and {self.max_items} entries.")
        return super()._deserialize(value, attr, data, **kwargs)


def warehouse_id(**kwargs) -> Text:
    """A Trademax warehouse alias (``"nw"``)."""
    return Text(64, **kwargs)


def order_no(**kwargs) -> Text:
    """A Trademax order number (``"FO123456"``); a URL path segment of ``order.lock_lines``."""
    return Text(64, path_segment=True, **kwargs)


def artno(**kwargs) -> Text:
    """A Trademax article number (``"123-45"``); a URL path segment of the inventory calls."""
    return Text(64, path_segment=True, **kwargs)


def transaction_id(**kwargs) -> Text:
    """The WMS's unique reference of a shipment or receipt; Trademax answers 452 to a repeat."""
    return Text(128, **kwargs)


def quantity(*, minimum: int = 0, **kwargs) -> Integer:
    """A quantity of goods: an integer, or a string of digits as Trademax's own example sends."""
    return Integer(minimum=minimum, digit_string=True, **kwargs)


def require_unique(original: object, list_name: str, name: str) -> None:
    """Reject entries of ``original[list_name]`` whose integer ``name`` repeats an earlier entry's.

    Reads the input as given, not the loaded data: marshmallow leaves failed entries out of a loaded
    list, which would shift the indexes the messages name.
    """
    entries = original.get(list_name) if isinstance(original, dict) else None
    if not isinstance(entries, list):
        return
    first: dict[int, int] = {}
    found: dict[int, dict[str, list[str]]] = {}
    for index, entry in enumerate(entries):
        value = entry.get(name) if isinstance(entry, dict) else None
        if not isinstance(value, int) or isinstance(value, bool):
            continue  # a missing or malformed value has its own message
        if value in first:
            found[index] = {name: [f"Repeats the {name} of entry {first[value]}; each must be unique."]}
        else:
            first[value] = index
    if found:
        raise ValidationError({list_name: found})


class EventSchema(StrictSchema):
    """The envelope every event carries around its Trademax fields.

    ``event_id`` names one occurrence; it is optional here and required by the operations that can
    repeat for one shipment (their schemas redeclare it).  ``occurred_at`` is when the WMS saw it.
    """

    ENVELOPE = ("event_id", "occurred_at")

    event_id = Text(128, allow_none=True)
    occurred_at = Timestamp(required=True)


def required_event_id() -> Text:
    """``event_id`` for operations that can repeat for one shipment: the idempotency key."""
    return Text(128, required=True)
