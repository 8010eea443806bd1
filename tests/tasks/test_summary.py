"""What Flower shows of a task: operation, key, order_no/artno — never the payload — whoever published it.

``SummarizedRequest`` is the Request class of every delivery task: Celery's worker builds it from each
received message and sends ``task-received`` events (what Flower displays) with its ``argsrepr``."""
from __future__ import annotations

import json
import types
import uuid
from pathlib import Path

from celery import Celery
from celery.signals import before_task_publish
from kombu.message import Message
from kombu.serialization import dumps

from tasks.base import DeliveryTask, SummarizedRequest
from tasks.summary import argument_summary, task_argument_summary

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def test_the_summary_names_operation_key_and_what_it_is_about():
    assert argument_summary("receipt.create", example("receipt.create")) == \
        "(receipt.create key=8723GYSFD52F32T123 order_no=IO12345 warehouse_id=nw)"
    assert argument_summary("stock.adjust", example("stock.adjust")) == \
        "(stock.adjust key=nw-stock-count-123-20240514-0600 artno=123 warehouse_id=nw type=absolute)"
    update = argument_summary("dispatch.update", example("dispatch.update"))
    assert update.startswith("(dispatch.update key=nw-dispatch-8723GYSFD52F32T-0002 "
                             "transaction_id=8723GYSFD52F32T")
    assert "packages" not in update and "123-45" not in update
    assert argument_summary("receipt.create", {"order_no": "x" * 90}).endswith("x" * 40 + "…)")
    assert argument_summary("receipt.create", {"order_no": "a\nb c"}) == \
        "(receipt.create key=(no transaction_id) order_no=a?b?c)"
    assert argument_summary("receipt.create", [1, 2]) == "(receipt.create: not a JSON object)"
    assert task_argument_summary("trademax.stock.adjust", [{}, {}], {}).startswith(
        "(trademax stock.adjust: 2 positional and 0 keyword arguments")
    # Each destination's task names its destination (what Flower's args column shows).
    assert task_argument_summary("kaching.stock.adjust", [example("stock.adjust")], {}) == \
        "(kaching stock.adjust key=nw-stock-count-123-20240514-0600 artno=123 warehouse_id=nw type=absolute)"


def received(task_name: str, args: list, argsrepr: str | None = None) -> SummarizedRequest:
    """The worker's request for a message as plain Celery publishes it (its own argsrepr: the repr of all)."""
    app = Celery("publisher", set_as_current=False)
    message = app.amqp.as_task_v2(str(uuid.uuid4()), task_name, args=args, kwargs={}, argsrepr=argsrepr)
    content_type, encoding, body = dumps(message.body, serializer="json")
    kombu_message = Message(body=body, content_type=content_type, content_encoding=encoding,
                            headers=message.headers, properties=message.properties, delivery_info={})
    task = types.SimpleNamespace(name=task_name, ignore_result=True)
    return SummarizedRequest(kombu_message, app=app, task=task, hostname="test@host")


def test_a_message_from_any_publisher_is_shown_by_its_summary_not_its_payload():
    receipt = example("receipt.create")
    request = received("trademax.receipt.create", [receipt])
    assert "order_type" in request.message.headers["argsrepr"]  # what plain Celery put there: the event
    summary = "(trademax receipt.create key=8723GYSFD52F32T123 order_no=IO12345 warehouse_id=nw)"
    assert request.argsrepr == summary and request.kwargsrepr == "{}"
    assert request.info(safe=True)["args"] == summary
    assert request.request_dict["argsrepr"] == summary
    assert request.args == [receipt]  # the task itself still gets the whole event
    assert "order_type" not in repr(request)
    lying = received("trademax.receipt.create", [receipt], argsrepr="({'secret': 'x'})")
    assert lying.argsrepr == summary
    assert DeliveryTask.Request is SummarizedRequest


def test_messages_published_through_the_app_carry_the_summary_in_their_headers():
    headers = {"argsrepr": "[{'everything': 1}]", "kwargsrepr": "{}"}
    event = example("stock.adjust")
    before_task_publish.send(sender="trademax.stock.adjust", headers=headers, body=([event], {}, {}))
    assert headers["argsrepr"] == argument_summary("stock.adjust", event, "trademax")
    other = {"argsrepr": "[1]"}
    before_task_publish.send(sender="celery.ping", headers=other, body=([1], {}, {}))
    assert other == {"argsrepr": "[1]"}  # not ours: untouched
