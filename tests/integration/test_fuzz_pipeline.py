"""Fuzzing the real pipeline: Hypothesis-generated events — wrong types, missing and extra fields, huge and
unicode strings (lone surrogates included), negative and enormous numbers, deep nesting, non-objects —
through the real ``wms-relay enqueue`` (JSON lines, one call per operation) and, bypassing enqueue's
validation, published straight to the queues as Celery tasks for a real worker to validate.

``tests/tasks/test_schema_fuzz.py`` fuzzes ``validate_event`` in-process; this asks what the processes
do with the same kind of input: the worker never crashes (it is alive and still delivers afterwards, and
no task raised), nothing invalid reaches Trademax (every request the sandbox saw re-validates as an
event of its operation), and every invalid event is a dead letter whose messages are the schema's —
naming the field."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections import Counter
from itertools import groupby
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from benchmarks.chaos_checks import request_operation
from tasks.events import OPERATIONS, InvalidEvent, validate_event
from tests.fixtures.pipeline import ROOT, wait_until

pytestmark = pytest.mark.integration

EXAMPLES = ROOT / "examples"
BASE = {op: json.loads((EXAMPLES / f"{op}.json").read_text()) for op in OPERATIONS}
EVENTS = 1200  # generated; a few odd task calls are added
AUTH_PARAMS = ("api_key", "timestamp", "method", "url", "signature")

text = st.text(alphabet=st.characters(exclude_categories=()), max_size=60) | st.sampled_from(
    ["", " ", "\x00", "\ud800", "a\udfffb", "line\nbreak", "Åsa Öberg", "😀" * 70, "٣", "-7", "1e3", "null",
     "2024-02-30", "2024-05-14T09:12:45", "absolute", "relative", "SO", "PO"])
huge_text = st.builds(lambda char, n: char * n, st.sampled_from(["x", "9", "é", "😀"]),
                      st.integers(129, 120_000))
numbers = (st.integers(-(2**31) - 2, 2**31 + 2)
           | st.sampled_from([0, -1, -(10**40), 10**40, 10**300, 2**63, 0.5, -0.0, 1e308, -1e308, 1e6 + 1])
           | st.floats(allow_nan=False, allow_infinity=False))
leaves = st.none() | st.booleans() | numbers | text | huge_text


def _nested(depth: int, key: str):
    value: object = []
    for level in range(depth):
        value = [value] if level % 2 else {key: value}
    return value


nested = st.builds(_nested, st.integers(2, 400), st.sampled_from(["a", "products"]))
values = st.recursive(leaves | nested, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(text, inner, max_size=4), max_leaves=10)
field_names = text | st.sampled_from(["event_id", "occurred_at", "dispatch_id", "draft", "quantity", "reason",
                                      "line_no", "packages", "products", "signature", "api_key"])


def _places(node):
    """Every object and array of a payload: where a mutation can happen."""
    if isinstance(node, (dict, list)):
        yield node
        for value in node.values() if isinstance(node, dict) else node:
            yield from _places(value)


@st.composite
def fuzzed_events(draw, serial=iter(range(10**9))):
    operation = draw(st.sampled_from(sorted(OPERATIONS)))
    if draw(st.integers(0, 19)) == 0:  # now and then no object at all
        return operation, draw(values)
    payload = copy.deepcopy(BASE[operation])
    n = next(serial)
    key = OPERATIONS[operation].key_field
    payload[key] = f"FZ-{n}"
    if "transaction_id" in payload and key != "transaction_id":
        payload["transaction_id"] = f"FZT-{n}"  # a shipment never created: follow-ups wait, never sent
    for _ in range(draw(st.integers(0, 3))):
        node = draw(st.sampled_from(list(_places(payload))))
        kind = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if isinstance(node, dict):
            if kind == "add" or not node:
                node[draw(field_names)] = draw(values)
            else:
                name = draw(st.sampled_from(sorted(node)))
                if kind == "delete":
                    del node[name]
                else:
                    node[name] = draw(values)
        elif kind == "add" or not node:
            node.append(draw(values))
        else:
            node[draw(st.integers(0, len(node) - 1))] = draw(values)
    return operation, payload


def generate(count: int) -> list[tuple[str, object]]:
    """``count`` events, as JSON would carry them (dumped and loaded), the same on every run."""
    found: list[tuple[str, object]] = []

    @settings(max_examples=count, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(fuzzed_events())
    def collect(case):
        found.append((case[0], json.loads(json.dumps(case[1]))))

    collect()
    return found


def verdict(operation: str, payload: object) -> dict | None:
    """None for a valid event, else the schema's messages (what the dead letter must say)."""
    try:
        validate_event(operation, payload)
    except InvalidEvent as exc:
        return exc.messages
    return None


def as_stored(messages: dict) -> str:
    """The schema's messages as a dead letter keeps them: lone surrogates as their escape text, the
    messages of secret-looking fields (``signature``, ``api_key``...) redacted; as canonical JSON."""
    from worker.encoding import stored_json

    def utf8_safe(value):
        if isinstance(value, str):
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        if isinstance(value, dict):
            return {utf8_safe(k): utf8_safe(v) for k, v in value.items()}
        if isinstance(value, list):
            return [utf8_safe(v) for v in value]
        return value

    return json.dumps(json.loads(stored_json(utf8_safe(messages), redact=True)), sort_keys=True)


def names_fields(payload: object, messages: dict) -> bool:
    """Each message is about the whole event (``_schema``), a field the input has, or a missing field under
    an object the input has."""
    paths = set()

    def walk(node, prefix):
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for name, inner in items:
            paths.add(prefix + str(name))
            if len(prefix) < 400:
                walk(inner, prefix + str(name) + ".")

    walk(payload, "")
    parents = paths | {""}
    return all(path == "_schema" or path in paths or path.rpartition(".")[0] in parents for path in messages)


def enqueue_lines(pipeline, operation: str, payloads: list) -> list[dict]:
    """``wms-relay enqueue OPERATION -`` fed JSON lines; its JSON output lines."""
    lines = "\n".join(json.dumps(p) for p in payloads).encode()
    out = subprocess.run([sys.executable, "-m", "worker.cli", "enqueue", operation, "-", "--json"], cwd=ROOT,
                         env=pipeline.env, input=lines, capture_output=True, timeout=300)
    printed = [json.loads(line) for line in out.stdout.decode().splitlines() if line.startswith("{")]
    assert len(printed) == len(payloads), out.stderr.decode(errors="replace")[-3000:]
    return printed


def publisher(pipeline):
    """A plain Celery client on the pipeline's broker: the WMS publishing tasks itself."""
    from celery import Celery

    from worker.broker.celery_config import celery_config
    from worker.settings import Settings

    app = Celery("fuzz-wms", set_as_current=False)
    app.conf.update(celery_config(Settings(), broker_url=pipeline.redis_server.url))
    return app


def request_is_valid(entry: dict) -> bool:
    """The request, read back as the event it came from, passes that operation's schema."""
    operation, path_fields = request_operation(entry["method"], entry["path"])
    fields = {k: v for k, v in entry["params"].items() if k not in AUTH_PARAMS} | path_fields
    if operation == "dispatch.delete":
        return path_fields["dispatch_id"].isdigit()
    if operation == "dispatch.update":
        if fields.pop("dispatch_id", None) is None:
            return False
        operation = "dispatch.publish" if fields.get("draft") is False else operation
        if operation == "dispatch.publish":
            del fields["draft"]
    fields |= {"occurred_at": "2024-05-14T10:00:00Z", "event_id": "re-read"}
    if operation in ("dispatch.create", "receipt.create"):
        fields.pop("event_id")
    return operation is not None and verdict(operation, fields) is None


def test_fuzzed_events_through_enqueue_and_the_tasks(pipeline):
    events = generate(EVENTS)
    assert len(events) >= 1000
    worker = pipeline.start_worker()
    through_cli, published = events[: EVENTS * 3 // 5], events[EVENTS * 3 // 5:]

    expected = Counter()  # (operation, messages) of every invalid event
    for operation, group in groupby(sorted(through_cli, key=lambda e: e[0]), key=lambda e: e[0]):
        payloads = [payload for _, payload in group]
        printed = enqueue_lines(pipeline, operation, payloads)
        for payload, line in zip(payloads, printed):
            messages = verdict(operation, payload)
            if messages is not None:
                assert line["state"] == "dead", line
                expected[(operation, as_stored(messages))] += 1

    app = publisher(pipeline)
    odd_calls = [("receipt.create", [BASE["receipt.create"], "extra"], {}), ("stock.adjust", [], {}),
                 ("order.lock_lines", [], {"lines": []})]
    for operation, payload in published:
        app.send_task(f"trademax.{operation}", args=[payload])
    for operation, args, kwargs in odd_calls:
        app.send_task(f"trademax.{operation}", args=args, kwargs=kwargs)
    for operation, payload in published:
        if (messages := verdict(operation, payload)) is not None:
            expected[(operation, as_stored(messages))] += 1
    for operation, args, kwargs in odd_calls:
        received = args[0] if len(args) == 1 and not kwargs else (
            None if not (args or kwargs) else {"_arguments": "a task takes exactly one JSON object"})
        expected[(operation, as_stored(verdict(operation, received)))] += 1

    # Still alive and still delivering: a good event published after all of them is delivered.
    sentinel = {**BASE["receipt.create"], "transaction_id": "FZ-SENTINEL"}
    app.send_task("trademax.receipt.create", args=[sentinel])
    pipeline.wait_for_state("receipt.create", "FZ-SENTINEL", "delivered", timeout=180)

    from worker.destinations.table import delivery_ref
    from worker.store.dead_letters import DeadLetters

    letters = DeadLetters(pipeline.redis(), delivery_ref=delivery_ref)

    def invalid_letters() -> Counter:
        return Counter((letter.operation, json.dumps(letter.messages, sort_keys=True))
                       for letter in letters.list() if letter.reason == "invalid")

    wait_until(lambda: sum(invalid_letters().values()) >= sum(expected.values()), 120,
               "a dead letter for every invalid event")
    assert invalid_letters() == expected
    for operation, payload in events:
        messages = verdict(operation, payload)
        assert messages is None or names_fields(payload, messages), (operation, messages)

    assert worker.poll() is None, "the worker exited"
    worker_logs = "".join(p.read_text(errors="replace") for p in Path(pipeline.log_dir).glob("worker*.log"))
    assert "raised unexpected" not in worker_logs and "Traceback" not in worker_logs, worker_logs[-3000:]
    sent = [r for r in pipeline.sandbox.requests() if r["path"].startswith("/api/")]
    assert sent, "some valid events were sent"
    assert all(r["status"] != 401 for r in sent)
    assert [r for r in sent if not request_is_valid(r)] == []
    print(f"fuzz: {len(events)} events + {len(odd_calls)} odd calls, {sum(expected.values())} invalid "
          f"(dead-lettered), {len(sent)} requests sent")
