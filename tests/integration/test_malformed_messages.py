"""Every message a worker takes ends somewhere a person can see, and none stops it (issue 9): each
malformed shape a non-Python WMS could push (not JSON, not UTF-8, a JSON array, JSON that is not Celery's
envelope, a body that is not base64 / not JSON / not ``[args, kwargs, embed]``, a 5,000-digit number,
duplicate keys, no ``headers.task``, an unknown task, pickle, an ``expires`` passed, an ``eta`` in 2099, a
countdown), LPUSHed raw onto every queue of a real valkey-server, becomes a dead letter with reason
``malformed_message`` naming the queue — with the same worker process still running (pid unchanged) and
the next good event on that queue delivered; ``dead retry`` refuses such a letter, saying why; and 1,000
random raw messages (Hypothesis, pinned seed) leave the worker alive and delivering.  Every queue means
every destination's too (``kaching.stock``, ``stocktrim.stock``, ``stock2shop.stock``, where the fan-out
publishes): a malformed message there is that destination's dead letter, and the destination's next good
delivery on it is delivered.

One worker for the whole module (all four destinations on, each sandbox a process); messages are pushed in
batches."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.poison import POISON, celery_message, encoded, envelope
from tests.fixtures.pipeline import FAST_SETTINGS, ROOT, Pipeline, wait_until
from tests.fixtures.redis_server import RedisServer
from tasks.raw_messages import QUEUE_DESTINATIONS
from tests.fixtures.sandbox import relay_environment, start_destination_sandbox, start_sandbox
from worker.destinations.table import QUEUES, delivery_ref
from worker.store.dead_letters import DeadLetters

pytestmark = pytest.mark.integration

EXAMPLES = ROOT / "examples"
GOOD = {  # one good event per queue: (operation = example file, key field)
    "trademax.dispatch": ("dispatch.create", "transaction_id"),
    "trademax.receipt": ("receipt.create", "transaction_id"),
    "trademax.stock": ("stock.adjust", "event_id"),
    "trademax.inventory": ("inventory.update_packages", "event_id"),
    "trademax.orders": ("order.lock_lines", "event_id"),
    "kaching.stock": ("stock.adjust", "event_id"),
    "stocktrim.stock": ("stock.adjust", "event_id"),
    "stocktrim.dispatch": ("dispatch.create", "transaction_id"),  # a sales order
    "stock2shop.stock": ("stock.adjust", "event_id"),
}
OTHERS = {"kaching": (), "stocktrim": (), "stock2shop": ("--max-rps", "0")}


@pytest.fixture(scope="module")
def relay(tmp_path_factory):
    directory = tmp_path_factory.mktemp("malformed")
    (directory / "valkey").mkdir()
    server = RedisServer(directory / "valkey").start()
    sandbox = start_sandbox()
    others = [start_destination_sandbox(api, *args) for api, args in OTHERS.items()]
    env = {**os.environ, **FAST_SETTINGS, "REDIS_URL": server.url, "TRADEMAX_BASE_URL": sandbox.base_url,
           "TRADEMAX_API_KEY": sandbox.api_key, "TRADEMAX_SECRET": sandbox.secret,
           "WMS_RELAY_VAR_DIR": str(directory / "var"), "KACHING_LOCATIONS": "nw=shop-nw",
           "STOCKTRIM_LOCATIONS": "nw=NW", "STOCK2SHOP_LOCATIONS": "nw=Main"}
    for other in others:
        env.update(relay_environment(other))
    env.pop("SENTRY_DSN", None)
    pipeline = Pipeline(env=env, redis_server=server, sandbox=sandbox, log_dir=directory)
    try:
        # Stock2Shop's catalog is required: rows for its good count's artno and the example's (123).
        catalog = ("artno,product_code,variant_code,title,active\n"
                   "GOOD-stock2shop,GOOD,,Good,true\n123,P-123,,Chair,\n")
        done = subprocess.run([sys.executable, "-m", "worker.cli", "catalog", "import", "stock2shop", "-"],
                              cwd=ROOT, env=env, input=catalog, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        pipeline.start_worker()
        yield pipeline
    finally:
        pipeline.stop()
        sandbox.stop()
        for other in others:
            other.stop()
        server.kill()


_serial = iter(range(10**9))


def push_good(relay, queue: str) -> tuple[str, str, str]:
    """Push one good event onto ``queue`` — the WMS's task on Trademax's queues, the destination's own
    task (an absolute count of a warehouse it lists) on another's; (operation, key, destination)."""
    operation, key_field = GOOD[queue]
    destination = QUEUE_DESTINATIONS[queue]
    event = json.loads((EXAMPLES / f"{operation}.json").read_text())
    key = f"GOOD-{next(_serial)}-{time.monotonic_ns()}"
    event[key_field] = key
    if destination != "trademax" and operation == "dispatch.create":
        event["draft"] = False  # a final dispatch: StockTrim's sales order
    elif destination != "trademax":
        # Its own product: the good Trademax count (artno 123) fans out to this destination too, and two
        # counts of one SKU at once would wait for each other's turn (retried by a scheduler, none here).
        event.update(warehouse_id="nw", type="absolute", artno=f"GOOD-{destination}")
    relay.redis().lpush(queue, celery_message(f"{destination}.{operation}", event, queue))
    return operation, key, destination


def wait_delivered(relay, goods, timeout: float) -> None:
    for operation, key, destination in goods:
        relay.wait_for_state(operation, key, "delivered", timeout=timeout, destination=destination)


def malformed_letters(relay) -> list:
    letters = DeadLetters(relay.redis(), delivery_ref=delivery_ref)
    return [letter for letter in letters.list() if letter.reason == "malformed_message"]


def assert_worker_is_the_same(relay, pid: int) -> None:
    worker = relay.workers[0]
    assert worker.pid == pid and worker.poll() is None, f"the worker exited:\n{relay.logs()}"


@pytest.mark.parametrize("shape", sorted(POISON))
def test_a_malformed_message_on_any_queue_is_a_dead_letter_and_the_worker_carries_on(relay, shape):
    pid = relay.workers[0].pid
    before = {letter.letter_id for letter in malformed_letters(relay)}
    client = relay.redis()
    for queue in QUEUES:
        client.lpush(queue, POISON[shape](queue, time.time()))
    goods = [push_good(relay, queue) for queue in QUEUES]
    wait_delivered(relay, goods, 90)

    new = wait_until(lambda: (found := [letter for letter in malformed_letters(relay)
                                        if letter.letter_id not in before]) and len(found) >= len(QUEUES)
                     and found, 60, f"{len(QUEUES)} dead letters for {shape}")
    assert sorted(letter.event["queue"] for letter in new) == sorted(QUEUES)
    for letter in new:
        assert letter.key.startswith("(raw message ") and letter.detail.startswith("from queue ")
        assert letter.messages and letter.event["size_bytes"] > 0
        assert letter.destination == QUEUE_DESTINATIONS[letter.event["queue"]]
    assert_worker_is_the_same(relay, pid)
    # (the good Trademax count fans out to the other three queues: those copies may still be on their way)
    wait_until(lambda: all(client.llen(queue) == 0 for queue in QUEUES), 60, "every queue to empty")


def test_secrets_in_a_malformed_message_are_not_kept(relay):
    client = relay.redis()
    client.lpush("trademax.stock", POISON["secret_in_body"]("trademax.stock", time.time()))
    wait_delivered(relay, [push_good(relay, "trademax.stock")], 90)
    # each letter's event is in its body
    stored = b"".join(client.get(k) or b"" for k in client.scan_iter("wms:dead:body:*"))
    assert b"size_bytes" in stored  # the letter is there: its event is read
    assert b"leaked-key" not in stored and b"leaked-secret" not in stored


def test_dead_retry_of_a_malformed_letter_says_it_cannot_be_retried(relay):
    client = relay.redis()
    client.lpush("trademax.receipt", b"[1,2,3]")
    letter = wait_until(lambda: next(
        (x for x in malformed_letters(relay) if "[1,2,3]" in json.dumps(x.event)), None), 60, "the letter")
    out = subprocess.run([sys.executable, "-m", "worker.cli", "dead", "retry", letter.letter_id, "--json"],
                         cwd=ROOT, env=relay.env, capture_output=True, timeout=120)
    reply = json.loads(out.stdout)
    outcome = reply["outcomes"][0] if "outcomes" in reply else reply
    assert "cannot be retried" in json.dumps(reply) and "malformed raw message" in json.dumps(reply), reply
    assert DeadLetters(client, delivery_ref=delivery_ref).get(letter.letter_id).status == "open", outcome


_text = st.text(max_size=40)
_json = st.recursive(st.none() | st.booleans() | st.integers() | _text,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
                     max_leaves=8)


@st.composite
def raw_messages(draw):
    """Raw bytes; envelopes with random parts; good-looking envelopes around random bodies."""
    queue = draw(st.sampled_from(QUEUES))
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return queue, draw(st.binary(max_size=200))
    if kind == 1:
        return queue, json.dumps(draw(_json)).encode()
    task = draw(st.sampled_from(["trademax.receipt.create", "trademax.stock.adjust", "kaching.stock.adjust",
                                 "nope", None]))
    body = draw(st.one_of(st.binary(max_size=120).map(lambda b: encoded(b)), _json.map(
        lambda v: encoded(json.dumps(v))), st.text(max_size=40)))
    message = envelope(task, body, queue)
    if kind == 3:
        for part in draw(st.lists(st.sampled_from(["headers", "properties", "content-type", "body"]),
                                  max_size=2)):
            message[part] = draw(_json)
    return queue, json.dumps(message).encode()


def test_a_thousand_random_raw_messages_leave_the_worker_alive_and_delivering(relay):
    pid = relay.workers[0].pid
    batch: list = []

    @settings(max_examples=1000, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(raw_messages())
    def collect(item):
        batch.append(item)

    collect()
    client = relay.redis()
    pipe = client.pipeline(transaction=False)
    for queue, raw in batch:
        pipe.lpush(queue, raw)
    pipe.execute()
    goods = [push_good(relay, queue) for queue in QUEUES]
    wait_delivered(relay, goods, 300)
    assert len(batch) == 1000
    assert_worker_is_the_same(relay, pid)
    # (the good Trademax count fans out to the other three queues: those copies may still be on their way)
    wait_until(lambda: all(client.llen(queue) == 0 for queue in QUEUES), 60, "every queue to empty")
