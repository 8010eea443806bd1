"""The Trademax calls: one row per documented request (HTTP method and path template), as Trademax's API
documentation lists them under "Resourses".

The client has one method per row (``TrademaxClient.call(name, ...)`` takes the row); a WMS operation is
delivered by one of them (its sender in ``operations``).  Path parameters (artno, order_no, ids) are
URL-quoted with nothing left safe, so an artno such
as ``12/3`` stays one path segment; the quoted form is both sent and signed.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote


@dataclass(frozen=True)
class Call:
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


CALLS: dict[str, Call] = {
    op.name: op
    for op in (
        Call("create_dispatch", "POST", "dispatch"),
        Call("update_dispatch", "PATCH", "dispatch/{dispatch_id}"),
        Call("publish_dispatch", "PATCH", "dispatch/{dispatch_id}"),
        Call("delete_dispatch", "DELETE", "dispatch/{dispatch_id}"),
        Call("get_dispatch", "GET", "dispatch/{dispatch_id}"),
        Call("create_vendor_dispatch", "POST", "vendor/dispatch"),
        Call("create_receipt", "POST", "receipt"),
        Call("get_receipt", "GET", "receipt/{receipt_id}"),
        Call("adjust_stock", "PATCH", "inventory/{artno}/stock-adjustment"),
        Call("get_stock", "GET", "inventory/{artno}/stock-adjustment"),
        Call("get_package_data", "GET", "inventory/{artno}"),
        Call("update_package_data", "PATCH", "inventory/{artno}"),
        Call("lock_order_lines", "PATCH", "order/outgoing/{order_no}"),
        Call("get_order_lines", "GET", "order/outgoing/{order_no}"),
    )
}

# The authentication params the client adds to every request; an operation's own fields may not use them.
AUTH_PARAMS = ("api_key", "timestamp", "method", "url", "signature")
