"""What a StockTrim answer means (docs/destinations.md, "StockTrim").

=================================================  ===============
answer                                             classification
=================================================  ===============
2xx (Inventory 200, RunForecastCalculations 201,   DELIVERED
SalesOrdersBulk 201, Products 200/201)
408, 429, 5xx                                      TRANSIENT (StockTrim says it does not rate-limit; a 429
                                                   would still mean "later")
401 "Invalid auth Id or signature", 400            PERMANENT: wrong credentials, or a ProblemDetails naming
  ValidationProblemDetails, any other status       the bad field (the whole request is refused)
2xx whose body is not JSON                         OUTCOME_UNKNOWN (json_api.classify_unreadable)
=================================================  ===============
"""
from __future__ import annotations

from typing import Any

from worker.destinations.contract import Classification
from worker.destinations.json_api import classify_status


def classify(status: int, body: Any) -> Classification:
    return classify_status(status)


def messages(body: Any) -> list[str]:
    """A ProblemDetails' ``title`` and ``detail``, then each ``errors`` field with its messages."""
    if not isinstance(body, dict):
        return [str(body)[:300]] if body is not None else []
    found = [str(body[name]) for name in ("title", "detail") if body.get(name)]
    errors = body.get("errors")
    if isinstance(errors, dict):
        for field, problems in errors.items():
            shown = "; ".join(str(p) for p in problems) if isinstance(problems, list) else str(problems)
            found.append(f"{field}: {shown}")
    return found
