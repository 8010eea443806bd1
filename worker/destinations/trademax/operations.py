"""The Trademax operations: one row per documented call (HTTP method and path template).

The client has one method per row; this table is what tests and the sandbox's documentation are checked
against.  Path parameters (artno, order_no, ids) are URL-quoted with nothing left safe, so an artno such
as ``12/3`` stays one path segment; the quoted form is both sent and signed.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    path: str  # relative to the base URL, with {placeholders} for path parameters

    @property
    def params_in_query(self) -> bool:
        """Params go in the query string (GET/DELETE) or in a JSON body (POST/PATCH)."""
        return self.method in ("GET", "DELETE")

    @property
    def path_parameters(self) -> tuple[str, ...]:
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.path) if name)

    def render_path(self, **values: Any) -> str:
        """The path with every parameter quoted as one segment (``quote(str(x), safe="")``)."""
        missing = set(self.path_parameters) - values.keys()
        if missing:
            raise KeyError(f"{self.name} needs {', '.join(sorted(missing))}")
        return self.path.format(**{name: quote(str(values[name]), safe="") for name in self.path_parameters})


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("create_dispatch", "POST", "dispatch"),
        Operation("update_dispatch", "PATCH", "dispatch/{dispatch_id}"),
        Operation("publish_dispatch", "PATCH", "dispatch/{dispatch_id}"),
        Operation("delete_dispatch", "DELETE", "dispatch/{dispatch_id}"),
        Operation("get_dispatch", "GET", "dispatch/{dispatch_id}"),
        Operation("create_vendor_dispatch", "POST", "vendor/dispatch"),
        Operation("create_receipt", "POST", "receipt"),
        Operation("get_receipt", "GET", "receipt/{receipt_id}"),
        Operation("adjust_stock", "PATCH", "inventory/{artno}/stock-adjustment"),
        Operation("get_stock", "GET", "inventory/{artno}/stock-adjustment"),
        Operation("get_package_data", "GET", "inventory/{artno}"),
        Operation("update_package_data", "PATCH", "inventory/{artno}"),
        Operation("lock_order_lines", "PATCH", "order/outgoing/{order_no}"),
        Operation("get_order_lines", "GET", "order/outgoing/{order_no}"),
    )
}

# The authentication params the client adds to every request; an operation's own fields may not use them.
AUTH_PARAMS = ("api_key", "timestamp", "method", "url", "signature")
