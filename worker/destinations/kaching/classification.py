"""What a ka-ching stock import answer means (docs/destinations.md, "ka-ching").

=================================================  ===============
answer                                             classification
=================================================  ===============
2xx ``{"status": "OK", ...}`` (or no status)       DELIVERED (the import is initiated: asynchronous)
2xx ``{"status": "ERROR", ...}``                   PERMANENT (ka-ching said no)
408, 429, 5xx                                      TRANSIENT
401 (credentials), 400 (unknown stock location,    PERMANENT: a person fixes the configuration or the
  malformed import), any other status               data; nothing of a refused import is applied
2xx whose body is not JSON                         OUTCOME_UNKNOWN (json_api.classify_unreadable)
=================================================  ===============
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
