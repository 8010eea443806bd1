"""Reading a Trademax answer body: strict JSON first, then the quirks the API document shows.

Quirks tolerated (all from the document's examples):

- single-quoted strings and trailing commas (``{'artno': 2145, 'quantity': 542,}``);
- ``"code"`` instead of ``"error_code"`` in the envelope (the vendor-dispatch example);
- no ``error`` envelope at all (the order-lines example): the whole body is the data.

A body that is still not JSON raises :class:`UnreadableBody` carrying a short printable excerpt, so the
error a person reads shows what came back instead of "invalid JSON".
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from worker.encoding import utf8_safe

EXCERPT_LIMIT = 200


class UnreadableBody(ValueError):
    """The body is neither JSON nor the document's relaxed JSON."""

    def __init__(self, excerpt: str) -> None:
        super().__init__(excerpt)
        self.excerpt = excerpt


@dataclass(frozen=True)
class Envelope:
    """The parts of an answer the client uses.  ``error_code`` is None when there was no envelope."""

    error_code: int | None
    error_messages: list[str] = field(default_factory=list)
    data: Any = None


def excerpt(raw: bytes, limit: int = EXCERPT_LIMIT) -> str:
    """The first ``limit`` characters of a body, decoded leniently, with unprintable characters as '?'."""
    text = raw[: limit * 4].decode("utf-8", errors="replace")[:limit]
    return "".join(c if c.isprintable() else ("?" if c not in "\r\n\t" else " ") for c in text)


# A JSON escape of a surrogate (\ud800-\udfff): the only way a body can carry a lone one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def parse_body(raw: bytes) -> Any:
    """Parse an answer body: strict JSON, else relaxed JSON (single quotes, trailing commas).  A lone
    surrogate in it becomes its escape as text (``utf8_safe``): the ledger stores Trademax's text."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnreadableBody(excerpt(raw)) from None
    try:
        parsed = json.loads(text)
    except ValueError:
        try:
            parsed = json.loads(relaxed_to_strict(text))
        except ValueError:
            raise UnreadableBody(excerpt(raw)) from None
    return utf8_safe(parsed) if _SURROGATE_ESCAPE.search(text) else parsed


def relaxed_to_strict(text: str) -> str:
    """Rewrite single-quoted strings as JSON strings and drop trailing commas; leave the rest alone."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif c == "'":
            j = i + 1
            chars: list[str] = []
            while j < n and text[j] != "'":
                if text[j] == "\\" and j + 1 < n:
                    chars.append("'" if text[j + 1] == "'" else text[j:j + 2])
                    j += 2
                    continue
                chars.append('\\"' if text[j] == '"' else text[j])
                j += 1
            if j >= n:
                raise ValueError("unterminated single-quoted string")
            out.append('"' + "".join(chars) + '"')
            i = j + 1
        elif c == ",":
            k = i + 1
            while k < n and text[k].isspace():
                k += 1
            if k >= n or text[k] not in "}]":
                out.append(c)
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def read_envelope(body: Any) -> Envelope:
    """Split a parsed body into error code, messages and data.

    An ``error`` object whose code is missing or unreadable counts as success (0) when it carries no
    messages, and as Trademax's "general error" (1) when it does — never as silently delivered.
    """
    if not isinstance(body, dict) or body.get("error") is None:
        return Envelope(error_code=None, data=body)
    error = body["error"]
    if not isinstance(error, dict):
        return Envelope(error_code=1, error_messages=_messages(error), data=body.get("data"))
    messages = _messages(error.get("error_messages"))
    code = _code(error.get("error_code", error.get("code")))
    if code is None:
        code = 1 if messages else 0
    return Envelope(error_code=code, error_messages=messages, data=body.get("data"))


def _code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _messages(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        return [f"{key}: {'; '.join(_messages(item)) or item}" for key, item in value.items()]
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in _messages(item)]
    return [str(value)]
