"""Which state operation answers which Trademax route (paths relative to ``/api/``).

Path segments arrive URL-quoted and are unquoted one by one, so an artno ``12/3`` sent as ``12%2F3``
stays one segment.  An unknown route answers 404 / error_code 1.
"""
from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import unquote

from worker.sandbox.trademax.answers import GENERAL_ERROR, Answer, Rejected, fail
from worker.sandbox.trademax.state import SandboxState


def segments(api_path: str) -> list[str]:
    """``inventory/12%2F3/stock-adjustment`` → ``["inventory", "12/3", "stock-adjustment"]``."""
    return [unquote(part) for part in api_path.strip("/").split("/")]


def answer(state: SandboxState, method: str, api_path: str, fields: Mapping[str, Any]) -> Answer:
    """Apply one authenticated request to the state and return what Trademax would answer."""
    try:
        match (method, segments(api_path)):
            case ("POST", ["dispatch"]):
                return state.create_dispatch(fields)
            case ("PATCH", ["dispatch", dispatch_id]):
                return state.update_dispatch(dispatch_id, fields)
            case ("DELETE", ["dispatch", dispatch_id]):
                return state.delete_dispatch(dispatch_id)
            case ("GET", ["dispatch", dispatch_id]):
                return state.get_dispatch(dispatch_id)
            case ("POST", ["vendor", "dispatch"]):
                return state.create_vendor_dispatch(fields)
            case ("POST", ["receipt"]):
                return state.create_receipt(fields)
            case ("GET", ["receipt", receipt_id]):
                return state.get_receipt(receipt_id)
            case ("GET", ["inventory", artno, "stock-adjustment"]):
                return state.get_stock(artno, fields)
            case ("PATCH", ["inventory", artno, "stock-adjustment"]):
                return state.adjust_stock(artno, fields)
            case ("GET", ["inventory", artno]):
                return state.get_package_data(artno, fields)
            case ("PATCH", ["inventory", artno]):
                return state.update_package_data(artno, fields)
            case ("PATCH", ["order", "outgoing", order_no]):
                return state.lock_order_lines(order_no, fields)
            case ("GET", ["order", "outgoing", order_no]):
                return state.get_order_lines(order_no, fields)
    except Rejected as rejected:
        return rejected.answer
    return fail(404, GENERAL_ERROR, f"no such resource: {method} /api/{api_path}")
