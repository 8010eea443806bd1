"""Text and JSON as wms-relay stores and shows them: one home for each small conversion.

- :func:`stored_json` — compact JSON for Redis, refusing secret-bearing keys (``worker.redaction``);
- :func:`canonical_json` — the one JSON text of a value (what fingerprints are taken of);
- :func:`utf8_safe` — JSON whose every string UTF-8 can encode (a lone surrogate becomes its escape);
- :func:`text` — a Redis reply as text, whichever way the client decodes;
- :func:`iso_time` — Unix seconds as ISO-8601 UTC with milliseconds;
- :func:`age` — a duration in words (``3 h 12 min``), as the CLI and the status report's sentences say it;
- :func:`event_ref` / :func:`split_event_ref` — an event's ``operation:key`` text: the member of the
  ledger's state indexes, the delivery ref of the first destination (the retry schedule's entry, the dead
  letters' per-delivery index), and what support staff type (``wms-relay uncertain resolve
  receipt.create:R-1``);
- :func:`one_line` / :func:`lines` — text fit for a terminal or a log line: control characters escaped.
  An event key (or any text from the WMS) printed as it is could hold a newline — splitting a log line or
  a CLI row in two, so that one event reads as two — or a terminal escape sequence.  Wherever such text
  is printed (the CLI, text log lines) it goes through :func:`one_line`: control characters, the
  Unicode line and paragraph separators, and the bidirectional controls (U+202A–202E embeddings and
  overrides, U+2066–2069 isolates, the marks U+200E, U+200F, U+061C — which reorder what a terminal
  shows, so that ``K-1\\u202e`` followed by text reads backwards) become their backslash escapes,
  ``\\n``, ``\\x1b``, ``\\u2028``, ``\\u202e``.  JSON output escapes control characters itself;
  :func:`json_text` escapes the bidirectional ones too (``--json`` is read in terminals as well).

Pure: no I/O.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

from worker.redaction import screened


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):  # datetime, date, time
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)  # Decimal, UUID: their canonical text


def stored_json(value: Any, *, where: str = "a stored record", redact: bool = False) -> str:
    """Compact JSON for Redis (UTF-8 kept as is: fewer bytes than ``\\u`` escapes).

    Datetimes become ISO-8601, Decimals and UUIDs their text.  Secret-bearing keys
    (``worker.redaction.SECRET_KEYS``) are refused — so the ledger and the retry schedule can never be
    made to store a secret — or, with ``redact`` (raw input kept as evidence, e.g. an invalid event in a
    dead letter), blanked."""
    try:
        kept = screened(value, where=where, redact=redact)
    except RecursionError:
        if not redact:
            raise
        # Evidence nested deeper than the screening can walk (JSON's C encoder goes deeper than Python's
        # recursion): kept as a note, so the dead letter is still written (the fuzz run found an
        # invalid event ~500 lists deep failing its own dead letter).
        kept = f"(a {type(value).__name__} nested too deeply to keep)"
    return json.dumps(kept, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def canonical_json(value: Any) -> str:
    """The one JSON text of a value: keys sorted, compact, UTF-8 (what fingerprints are taken of)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True, default=_json_default)


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def utf8_safe(value: Any) -> Any:
    """``value`` (JSON) with every string and key UTF-8 can encode: a lone surrogate, which JSON's
    ``\\udc80`` escape can carry, becomes that escape as text.  The store takes UTF-8 only: an invalid event
    holding one made its own dead letter fail (the fuzz run found it), and Trademax text holding one
    (an error message, a tracking code) would fail every ledger write of its event.  Done on the JSON text,
    so any nesting depth the JSON decoder took is fine here too."""
    text = json.dumps(value, ensure_ascii=False)
    if not _SURROGATE.search(text):
        return value
    return json.loads(_SURROGATE.sub(lambda m: f"\\\\u{ord(m.group()):04x}", text))


def text(value: Any) -> str:
    """A Redis reply as text, whichever way the client decodes (``None`` becomes "")."""
    if value is None:
        return ""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def iso_time(moment: float | None) -> str | None:
    """Unix seconds as ISO-8601 UTC with milliseconds (``2024-05-01T08:11:12.123Z``); None (and NaN) stay
    None.  A moment beyond the calendar (year 1 to 9999: a far-future pause stored by an earlier version)
    is shown as its end, so a report that holds one still prints."""
    if moment is None or moment != moment:
        return None
    try:
        when = datetime.fromtimestamp(moment, timezone.utc)
    except (OverflowError, ValueError, OSError):
        when = (datetime.max if moment > 0 else datetime.min).replace(tzinfo=timezone.utc)
    stamp = when.isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def age(seconds: float | None) -> str:
    """``42 s``, ``5 min``, ``3 h 12 min``, ``2 d 4 h``; ``-`` for None."""
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 3600:
        return f"{minutes} min"
    if seconds < 86400:
        return f"{hours} h {minutes % 60} min" if minutes % 60 else f"{hours} h"
    return f"{days} d {hours % 24} h" if hours % 24 else f"{days} d"


def event_ref(operation: str, key: str) -> str:
    """``receipt.create:R-1``: one event, as the stores index it and people name it."""
    return f"{operation}:{key}"


def split_event_ref(ref: str) -> tuple[str, str] | None:
    """``receipt.create:R-1`` → (operation, key); None for anything else (e.g. a letter id ``dl-3``).
    Operation names have no colon, so a key may."""
    operation, colon, key = ref.partition(":")
    return (operation, key) if colon and operation and key else None


# Bidirectional controls: they change the order a terminal or a log viewer shows the text around them in.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNPRINTABLE = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029{_BIDI}]")
_BIDI_ONLY = re.compile(f"[{_BIDI}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def one_line(value: Any) -> str:
    """``str(value)`` with every control character escaped (a newline too)."""
    text = "" if value is None else str(value)
    return _UNPRINTABLE.sub(_escape, text) if _UNPRINTABLE.search(text) else text


def shorten(value: Any, width: int) -> str:
    """``value`` as one line of at most ``width`` characters (``…`` where it was cut)."""
    text = " ".join(one_line(value).split())
    return text if len(text) <= width else text[: max(width - 1, 1)] + "…"


def json_text(value: Any, **options) -> str:
    """``json.dumps(value, ensure_ascii=False, **options)`` with the bidirectional controls escaped
    (``\\u202e``: the same string to a JSON reader, inert in a terminal).  Control characters JSON
    escapes itself."""
    dumped = json.dumps(value, ensure_ascii=False, **options)
    if not _BIDI_ONLY.search(dumped):
        return dumped
    return _BIDI_ONLY.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped)


def lines(value: Any) -> str:
    """Like :func:`one_line`, but newlines stay: for text that is several lines on purpose."""
    return "\n".join(one_line(part) for part in str(value).split("\n"))
