"""Text fit for one line of a terminal or a log: control characters escaped.

An event key (or any text from the WMS) printed as it is could hold a newline — splitting a log line or
a CLI row in two, so that one event reads as two — or a terminal escape sequence.  Wherever such text is
printed (the CLI, text log lines) it goes through :func:`one_line`: control characters (and the Unicode
line and paragraph separators) become their backslash escapes, ``\\n``, ``\\x1b``, ``\\u2028``.  JSON
output needs nothing: JSON escapes them itself.  Pure."""
from __future__ import annotations

import re
from typing import Any

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
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


def lines(value: Any) -> str:
    """Like :func:`one_line`, but newlines stay: for text that is several lines on purpose."""
    return "\n".join(one_line(part) for part in str(value).split("\n"))
