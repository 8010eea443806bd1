"""One API request as a sandbox reads it, and one answer as it sends it — the shapes every fake API
(worker.sandbox.{trademax,kaching,stocktrim,stock2shop}) speaks to the shared HTTP layer
(worker.sandbox.server).  Pure data: no sockets here, so an API's rules are tested without HTTP.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import parse_qsl


@dataclass(frozen=True)
class Request:
    """What arrived: verb, path (no query, still URL-quoted), raw query string, headers (names
    lower-case), body bytes, the ``Host`` header and the caller's address."""

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    host: str = ""
    client: str = ""

    def query_params(self) -> dict[str, str]:
        """The query string as a flat dict (a repeated name keeps its last value; blanks kept)."""
        return dict(parse_qsl(self.query, keep_blank_values=True))

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body parsed as JSON; ValueError if it is empty or not JSON."""
        if not self.body:
            raise ValueError("the body is empty")
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    """One answer: status, a JSON-able body (None: an empty body), extra headers.  ``error_code`` is
    what the request log shows beside the status (None where the API has no error codes)."""

    status: int
    data: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    error_code: int | None = None

    def body(self) -> Any:
        return self.data
