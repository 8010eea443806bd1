"""Raw broker messages, good and malformed, as a WMS that is not written in Python pushes them
(docs/events.md, "From any language"): the chaos run's "poison" action and the malformed-message tests
push these onto the queues' Redis lists.

    celery_message(task, event, queue, **headers) -> bytes   the documented layout (good)
    POISON: dict[name, (queue, now) -> bytes]                 one malformed shape each
    push_poison(client) -> int                                 every shape onto every queue (every
                                                               destination's: kaching.stock too)
"""
from __future__ import annotations

import base64
import json
import uuid
from typing import Any, Callable

NEUTRAL_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def envelope(task: str | None, body: str, queue: str, *, content_type: str = "application/json",
             **headers: Any) -> dict:
    """A Celery protocol-2 envelope as kombu's Redis transport stores it (``body``: already encoded)."""
    task_id = str(uuid.uuid4())
    head = {"lang": "py", "task": task, "id": task_id, "root_id": task_id, "parent_id": None, "group": None,
            "shadow": None, "eta": None, "expires": None, "retries": 0, "timelimit": [None, None],
            "argsrepr": "", "kwargsrepr": "{}", "origin": "wms@test"}
    head.update(headers)
    if task is None:
        del head["task"]
    return {"body": body, "content-encoding": "utf-8", "content-type": content_type, "headers": head,
            "properties": {"correlation_id": task_id, "reply_to": "", "delivery_mode": 2, "priority": 0,
                           "body_encoding": "base64", "delivery_tag": task_id,
                           "delivery_info": {"exchange": "", "routing_key": queue}}}


def encoded(body_text: str | bytes) -> str:
    raw = body_text.encode("utf-8") if isinstance(body_text, str) else body_text
    return base64.b64encode(raw).decode("ascii")


def celery_message(task: str, event: Any, queue: str, **headers: Any) -> bytes:
    """One good message: task ``task`` with the one JSON object ``event``."""
    body = encoded(json.dumps([[event], {}, NEUTRAL_EMBED]))
    return json.dumps(envelope(task, body, queue, **headers)).encode("utf-8")


def _iso(moment: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(moment, timezone.utc).isoformat()


_RECEIPT = "trademax.receipt.create"
_EVENT = {"transaction_id": "POISON-1", "warehouse_id": "nw", "order_no": "PO1", "order_type": "PO",
          "received_date": "2024-05-14", "products": [{"artno": "A-1", "quantity": 1}],
          "occurred_at": "2024-05-14T10:00:00Z"}


def own_task(queue: str) -> str:
    """A task of ours whose queue is ``queue``: the receipt on trademax.receipt, on any other queue the
    first task routed there (``kaching.stock`` → kaching.stock.adjust: what the fan-out publishes there)."""
    from worker.destinations.table import TASKS

    return next(name for name, row in TASKS.items() if row.queue == queue)


def foreign_task(queue: str) -> str:
    """A task of ours whose queue is NOT ``queue``: ka-ching's on a Trademax queue, Trademax's receipt on
    any other (the screen turns it away: "task X on queue Y")."""
    return "kaching.stock.adjust" if queue.startswith("trademax.") else _RECEIPT


def _with(queue: str, *, task: str | None = "", body: str | None = None, **kw: Any) -> bytes:
    body = encoded(json.dumps([[_EVENT], {}, NEUTRAL_EMBED])) if body is None else body
    task = own_task(queue) if task == "" else task
    return json.dumps(envelope(task, body, queue, **kw)).encode("utf-8")


POISON: dict[str, Callable[[str, float], bytes]] = {
    "not_json": lambda q, now: b"this is not json {{{",
    "not_utf8": lambda q, now: b"\xff\xfe\x00garbage",
    "json_list": lambda q, now: b"[1,2,3]",
    "json_not_envelope": lambda q, now: b'{"a": 1}',
    "body_not_a_string": lambda q, now: json.dumps(
        {**envelope(own_task(q), "", q), "body": {"a": 1}}).encode(),
    "body_not_base64": lambda q, now: _with(q, body="%%% not base64 %%%"),
    "body_not_json": lambda q, now: _with(q, body=encoded("this is not json {{{")),
    "body_an_object": lambda q, now: _with(q, body=encoded('{"a": 1}')),
    "body_a_list_of_two": lambda q, now: _with(q, body=encoded('[[{"a": 1}], {}]')),
    "huge_integer": lambda q, now: _with(q, body=encoded('[[{"quantity": ' + "9" * 5000 + "}], {}, null]")),
    "duplicate_keys": lambda q, now: _with(q, body=encoded(
        '[[{"transaction_id": "D-1", "transaction_id": "D-2"}], {}, null]')),
    "no_task_header": lambda q, now: _with(q, task=None),
    "unknown_task": lambda q, now: _with(q, task="celery.backend_cleanup"),
    "foreign_queue": lambda q, now: _with(q, task=foreign_task(q)),
    "pickle_content_type": lambda q, now: _with(q, content_type="application/x-python-serialize",
                                                body=encoded(b"\x80\x04K\x01.")),
    "expired": lambda q, now: _with(q, expires=_iso(now - 3600)),
    "eta_in_2099": lambda q, now: _with(q, eta="2099-01-01T00:00:00+00:00"),
    "countdown": lambda q, now: _with(q, countdown=3600),
    "secret_in_body": lambda q, now: _with(q, body=encoded(
        '[[{"api_key": "leaked-key", "secret": "leaked-secret"}], {}, {"callbacks": 1}]x')),
}


def push_poison(client) -> int:
    """LPUSH every malformed shape onto every queue, every destination's (one pipeline); how many were
    pushed."""
    import time

    from worker.destinations.table import QUEUES

    pipe = client.pipeline(transaction=False)
    pushed = 0
    for queue in QUEUES:
        for make in POISON.values():
            pipe.lpush(queue, make(queue, time.time()))
            pushed += 1
    pipe.execute()
    return pushed
