"""What a Stock2Shop answer means (docs/destinations.md, "Stock2Shop").

=================================================  ===============
answer                                             classification
=================================================  ===============
2xx                                                DELIVERED (products are queued: processed later)
408, 429 (above the per-client limit), 5xx         TRANSIENT (429's ``Retry-After`` is kept)
401 on any call but authenticate                   PERMANENT as an answer; the client first logs in again
                                                   (once for every worker) and resends once
                                                   (worker.destinations.stock2shop.tokens)
401 on authenticate, 400, any other status         PERMANENT: wrong username/password, a source id that
                                                   is not the client's, a body that is not a queue
2xx whose body is not JSON                         OUTCOME_UNKNOWN (json_api.classify_unreadable)
=================================================  ===============
"""
from __future__ import annotations

from typing import Any

from worker.destinations.contract import Classification
from worker.destinations.json_api import classify_status

REFUSED_TOKEN = 401


def classify(status: int, body: Any) -> Classification:
    return classify_status(status)


def messages(body: Any) -> list[str]:
    """Stock2Shop's ``errors`` list."""
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [str(m) for m in body["errors"]]
    return [str(body)[:300]] if body is not None else []
