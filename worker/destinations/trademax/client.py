"""The Trademax HTTP client: build, sign, send, and turn the answer into a reply or one of our errors.

One method per documented call (see worker.destinations.trademax.calls).  Each call:

1. takes the operation's own fields and adds ``api_key``, ``timestamp`` (Unix seconds from the injected
   clock, fresh on every call, so a retry carries a new one), ``method`` and ``url``
   (``{protocol}://{host}/{path}``, no query, path parameters in their quoted form);
2. signs exactly those params with :func:`signing.sign` and sends exactly them plus ``signature``: in the
   query string for GET/DELETE, as a JSON body for POST/PATCH;
3. classifies the answer with worker.destinations.trademax.classification and returns a
:class:`TrademaxReply` (delivered, or
   duplicate 452) or raises TransientError / OutcomeUnknownError / PermanentError.

requests/urllib3 exceptions are translated in one place (:meth:`TrademaxClient._send`).  One pooled
session serves a whole threads pool.  urllib3 retries only connection attempts — failures before
anything was sent — so transport retries never resend a request and never multiply with task retries.
The secret and the signature are redacted from anything that could reach a message or a log.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import requests

import signing
from worker.destinations.trademax import clock_skew
from worker.errors import ClockSkewError, OutcomeUnknownError, PermanentError, TrademaxError, TransientError
from worker.destinations.trademax.classification import (
    Classification,
    classify_reply,
    classify_unreadable_reply,
)
from worker.destinations.transport import (  # noqa: F401 (CONNECT_RETRIES, build_session: re-exported)
    CONNECT_RETRIES,
    USER_AGENT,
    build_session,
    classify_transport_failure,
    describe,
    parse_retry_after,
)
from worker.redaction import Scrubber
from worker.settings import Settings
from worker.destinations.trademax.calls import AUTH_PARAMS, CALLS, Call
from worker.destinations.trademax.responses import UnreadableBody, excerpt, parse_body, read_envelope


_KEPT = ("dispatch_id", "receipt_id", "tracking_code", "labels_url_pdf", "labels_url_web",
         "shipping_agent_code", "dispatch_date", "draft", "old_quantity", "new_quantity", "quantity")
_ERRORS: dict[Classification, type[TrademaxError]] = {
    Classification.TRANSIENT: TransientError,
    Classification.OUTCOME_UNKNOWN: OutcomeUnknownError,
    Classification.PERMANENT: PermanentError,
}


@dataclass(frozen=True)
class TrademaxReply:
    """A delivered call: the parsed ``data`` (dict or list) and whether Trademax called it a duplicate."""

    operation: str
    status: int
    error_code: int | None
    data: Any
    duplicate: bool = False
    latency_seconds: float = 0.0

    def ledger_result(self) -> dict:
        """What the ledger keeps of this reply: the identifiers and links support staff and later events
        need (never the whole body: the ledger stays small)."""
        data = self.data if isinstance(self.data, dict) else {}
        result = {name: data[name] for name in _KEPT if name in data}
        packages = data.get("packages") or []
        labels = [p["label_url"] for p in packages if isinstance(p, dict) and p.get("label_url")]
        if labels:
            result["package_labels"] = labels
        if self.duplicate:
            result["duplicate"] = True
        result["status"] = self.status
        return result


class TrademaxClient:
    """Calls Trademax on behalf of the pipeline.  Thread-safe: share one per process."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time,
                 session: requests.Session | None = None) -> None:
        settings.require_credentials("trademax")
        parts = urlsplit(settings.trademax_base_url)
        self._base_url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/"
        self._api_key = settings.trademax_api_key
        self._secret = settings.trademax_secret
        self._timeout = (settings.connect_timeout, settings.read_timeout)
        self._clock = clock
        self._session = session if session is not None else build_session()

    def __repr__(self) -> str:
        return f"TrademaxClient(base_url={self._base_url!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "TrademaxClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- dispatch ---------------------------------------------------------------------------------
    def create_dispatch(self, fields: Mapping[str, Any]) -> TrademaxReply:
        """POST dispatch (``draft`` may be among the fields)."""
        return self.call("create_dispatch", fields)

    def update_dispatch(self, dispatch_id: Any, fields: Mapping[str, Any]) -> TrademaxReply:
        """PATCH dispatch/{dispatch_id}: add or replace packages, change header values.

        ``draft`` is always sent: the fields' own value, else ``true``.  The document reads a PATCH without
        it as a publish ("By sending draft = false or ignoring this property will make dispatch route work
        as previously"), and a published dispatch refuses every later update; an update keeps a draft a
        draft, publishing is :meth:`publish_dispatch`'s job."""
        return self.call("update_dispatch", {"draft": True, **fields}, dispatch_id=dispatch_id)

    def publish_dispatch(self, dispatch_id: Any, fields: Mapping[str, Any]) -> TrademaxReply:
        """PATCH dispatch/{dispatch_id} with ``draft=false`` (one-way) and whatever data is still missing."""
        return self.call("publish_dispatch", {**fields, "draft": False}, dispatch_id=dispatch_id)

    def delete_dispatch(self, dispatch_id: Any) -> TrademaxReply:
        """DELETE dispatch/{dispatch_id} (drafts only)."""
        return self.call("delete_dispatch", {}, dispatch_id=dispatch_id)

    def get_dispatch(self, dispatch_id: Any) -> TrademaxReply:
        return self.call("get_dispatch", {}, dispatch_id=dispatch_id)

    def create_vendor_dispatch(self, fields: Mapping[str, Any]) -> TrademaxReply:
        """POST vendor/dispatch (order_no, labels_quantity)."""
        return self.call("create_vendor_dispatch", fields)

    # -- receipt ----------------------------------------------------------------------------------
    def create_receipt(self, fields: Mapping[str, Any]) -> TrademaxReply:
        return self.call("create_receipt", fields)

    def get_receipt(self, receipt_id: Any) -> TrademaxReply:
        return self.call("get_receipt", {}, receipt_id=receipt_id)

    # -- inventory --------------------------------------------------------------------------------
    def adjust_stock(self, artno: Any, fields: Mapping[str, Any]) -> TrademaxReply:
        """PATCH inventory/{artno}/stock-adjustment; ``type`` absolute or relative is in the fields."""
        return self.call("adjust_stock", fields, artno=artno)

    def get_stock(self, artno: Any, warehouse_id: str) -> TrademaxReply:
        return self.call("get_stock", {"warehouse_id": warehouse_id}, artno=artno)

    def get_package_data(self, artno: Any, warehouse_id: str) -> TrademaxReply:
        return self.call("get_package_data", {"warehouse_id": warehouse_id}, artno=artno)

    def update_package_data(self, artno: Any, fields: Mapping[str, Any]) -> TrademaxReply:
        return self.call("update_package_data", fields, artno=artno)

    # -- order ------------------------------------------------------------------------------------
    def lock_order_lines(self, order_no: Any, fields: Mapping[str, Any]) -> TrademaxReply:
        """PATCH order/outgoing/{order_no}: ``processing`` 1 locks a line, 0 releases it."""
        return self.call("lock_order_lines", fields, order_no=order_no)

    def get_order_lines(self, order_no: Any, warehouse_id: str) -> TrademaxReply:
        return self.call("get_order_lines", {"warehouse_id": warehouse_id}, order_no=order_no)

    # -- the one path every operation takes ---------------------------------------------------------
    def call(self, name: str, fields: Mapping[str, Any], **path_values: Any) -> TrademaxReply:
        """Sign and send operation ``name`` with its own ``fields``; classify the answer."""
        operation = CALLS[name]
        reserved = sorted(set(fields) & set(AUTH_PARAMS))
        if reserved:
            raise PermanentError(f"fields may not contain the authentication params {', '.join(reserved)}",
                                 operation=name)
        url = self._base_url + operation.render_path(**path_values)
        params = dict(fields)
        params.update(api_key=self._api_key, timestamp=int(self._clock()), method=operation.method, url=url)
        try:
            signature = signing.sign(params, self._secret)
        except signing.SigningError as exc:
            raise PermanentError(f"the fields cannot be signed: {exc}", operation=name) from None
        return self._send(operation, url, {**params, "signature": signature})

    def _send(self, operation: Call, url: str, signed: dict[str, Any]) -> TrademaxReply:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        request: dict[str, Any] = {"headers": headers, "timeout": self._timeout, "allow_redirects": False}
        if operation.params_in_query:
            request["params"] = signing.flatten(signed)
        else:
            headers["Content-Type"] = "application/json"
            request["data"] = json.dumps(signed, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        started = time.monotonic()
        try:
            response = self._session.request(operation.method, url, **request)
        except requests.RequestException as exc:
            latency = time.monotonic() - started
            classification = classify_transport_failure(exc)
            scrubber = self._scrubber(signed["signature"])
            detail = scrubber.text(describe(exc))
            scrubber.exception(exc)
            raise _ERRORS[classification](detail, operation=operation.name, latency_seconds=latency) from exc
        latency = time.monotonic() - started
        return self._reply(operation, response, latency, signed["signature"])

    def _reply(self, operation: Call, response: requests.Response, latency: float,
               signature: str) -> TrademaxReply:
        status = response.status_code
        context: dict[str, Any] = {"operation": operation.name, "status": status, "latency_seconds": latency}
        try:
            envelope = read_envelope(parse_body(response.content))
        except UnreadableBody:
            classification = classify_unreadable_reply(status)
            # Redact the whole body, then cut: a secret cut in half by the excerpt would escape redaction.
            whole = self._scrubber(signature).text(response.content.decode("utf-8", errors="replace"))
            detail = f"unreadable body: {excerpt(whole.encode('utf-8'))!r}"
            raise self._error(classification, detail, response, context) from None
        classification = classify_reply(status, envelope.error_code)
        if classification.delivered:
            return TrademaxReply(operation=operation.name, status=status, error_code=envelope.error_code,
                                 data=envelope.data, duplicate=classification is Classification.DUPLICATE,
                                 latency_seconds=latency)
        scrubber = self._scrubber(signature)
        context.update(error_code=envelope.error_code,
                       error_messages=[scrubber.text(m) for m in envelope.error_messages])
        raise self._error(classification, "", response, context)

    def _error(self, classification: Classification, detail: str, response: requests.Response,
               context: dict[str, Any]) -> TrademaxError:
        clock_fault, skew = clock_skew.refused_for_clock(
            response.status_code, context.get("error_messages", ()), response.headers.get("Date"),
            self._clock())
        if clock_fault:
            return ClockSkewError(clock_skew.describe(skew), skew_seconds=skew, **context)
        if classification is Classification.TRANSIENT:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
            return TransientError(detail, retry_after=retry_after, **context)
        return _ERRORS[classification](detail, **context)

    def _scrubber(self, signature: str) -> Scrubber:
        """Removes this call's signature and the secret (and signature/api_key params) from text."""
        return Scrubber([signature, self._secret])
