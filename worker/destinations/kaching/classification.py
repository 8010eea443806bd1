"""What a ka-ching stock import answer means (docs/destinations.md, "ka-ching").

=================================================  ===============
answer                                             classification
=================================================  ===============
2xx ``{"status": "OK", ...}`` (or no status)       DELIVERED (the import is initiated: asynchronous) —
                                                   unless it initiated fewer values than it was sent
                                                   (the client raises UnconfirmedError: ``uncertain``)
2xx ``{"status": "ERROR", ...}``                   PERMANENT (ka-ching said no)
408, 429, 5xx                                      TRANSIENT
401 (credentials), 400 (malformed import; a        PERMANENT: a person fixes the configuration or the
  stock location refused up front, should ka-ching  data; nothing of a refused import is applied
  answer so), any other status
2xx whose body is not JSON                         OUTCOME_UNKNOWN (json_api.classify_unreadable)
=================================================  ===============

A value ka-ching initiated and then failed to apply (a stock location that does not exist, in our
sandbox's reading) is not in any answer: docs/destinations.md, "ka-ching", says what support can do.
"""
from __future__ import annotations

from typing import Any

from worker.destinations.contract import Classification
from worker.destinations.json_api import classify_status


def classify(status: int, body: Any) -> Classification:
    verdict = classify_status(status)
    if verdict is Classification.DELIVERED and isinstance(body, dict) and body.get("status") == "ERROR":
        return Classification.PERMANENT
    return verdict


def messages(body: Any) -> list[str]:
    """ka-ching's ``message`` (and the unknown ``stock_location_ids``, when it names them)."""
    if not isinstance(body, dict):
        return [str(body)[:300]] if body is not None else []
    found = [str(body["message"])] if body.get("message") else []
    if isinstance(body.get("stock_location_ids"), list):
        found.append("stock_location_ids: " + ", ".join(str(i) for i in body["stock_location_ids"]))
    return found
