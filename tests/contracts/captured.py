"""What a destination client sends, captured on the wire with ``responses``: each request's JSON body and
query, for the contract tests to check against the field's own schemas."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

import responses

from worker.store.catalog import CatalogRow


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    query: dict
    body: Any


def capture(base_url: str, answers: dict[str, Any], act: Callable[[], Any]) -> list[Sent]:
    """Run ``act`` with every request under ``base_url`` answered 200 with ``answers[path]`` (a path
    relative to the base; any other path: ``{}``; a callable is given the request's JSON body); the
    requests sent, in order."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        def answer(request):
            path = urlsplit(request.url).path[len(urlsplit(base_url).path):]
            found = answers.get(path, {})
            if callable(found):
                found = found(json.loads(request.body) if request.body else None)
            return 200, {"Content-Type": "application/json"}, json.dumps(found)

        for method in ("GET", "POST", "DELETE"):
            mock.add_callback(method, re.compile(re.escape(base_url) + ".*"), callback=answer)
        act()
        return [Sent(call.request.method, urlsplit(call.request.url).path[len(urlsplit(base_url).path):],
                     dict(parse_qsl(urlsplit(call.request.url).query, keep_blank_values=True)),
                     json.loads(call.request.body) if call.request.body else None)
                for call in mock.calls]


def counts(*counted: tuple) -> list[SimpleNamespace]:
    """Pending counts as a batch holds them (worker.flow.batches): (warehouse_id, artno, quantity) or, with
    the artno's catalog row, (warehouse_id, row, quantity) — without one, the artno is its own product."""
    return [SimpleNamespace(warehouse_id=w, artno=getattr(a, "artno", a), quantity=q, kind="level",
                            row=a if isinstance(a, CatalogRow) else CatalogRow.identity(a))
            for w, a, q in counted]


def batch(destination, client, kind: str, items: list) -> Any:
    """Send ``items`` as one batch, as worker.delivery.batch_delivery does: each item's entry with its
    catalog row, one send."""
    sender = destination.batch
    return sender.send(client, kind, [sender.entry(client, item, item.row) for item in items])
