"""One fixed story of events through the real delivery pipeline, and a dump of every key it leaves in the
store.  Written to run unchanged on the code before issue 14's new layout (commit 08757d5, which wrote
``old_store/``: ``python tests/worker/store/store_scenario.py DIR`` in a checkout of it) and on today's:
``test_old_store.py`` compares the two stores key by key.

The clock is fixed, retries draw from a seeded random, and delivered records are kept forever
(DELIVERED_RETENTION_DAYS=0): a record with a TTL would carry an absolute expiry in the AOF and vanish
from the fixture a month after it was written.
"""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

try:  # the layout since issue 14
    from worker.delivery.pipeline import deliver
    from worker.delivery.relay import build_relay
    from worker.destinations.trademax.client import TrademaxReply
except ImportError:  # the layout before it, which wrote old_store/
    from worker.delivery import deliver
    from worker.relay import build_relay
    from worker.trademax_client import TrademaxReply
from worker.errors import OutcomeUnknownError, PermanentError, TransientError
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
T0 = 1_714_550_000.0
OWNER = "worker-1"


def example(name: str, **changes) -> dict:
    return {**json.loads((EXAMPLES / f"{name}.json").read_text()), **changes}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class ScriptedTrademax:
    """Each call answers with the next scripted answer: an error to raise, or a delivered reply."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    def _answer(self, name: str, data: dict):
        self.calls.append(name)
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, Exception):
            raise answer
        return TrademaxReply(operation=name, status=200, error_code=0, data=data)

    def create_receipt(self, fields):
        return self._answer("create_receipt", {"receipt_id": 7})

    def create_dispatch(self, fields):
        return self._answer("create_dispatch", {"dispatch_id": 4711, "tracking_code": "TC-1",
                                                "packages": [{"label_url": "http://labels/1.pdf"}]})

    def update_dispatch(self, dispatch_id, fields):
        return self._answer("update_dispatch", {"dispatch_id": dispatch_id})

    def adjust_stock(self, artno, fields):
        return self._answer("adjust_stock", {"old_quantity": 5, "new_quantity": 9})


def relay_for(client, clock: Clock):
    relay = build_relay(Settings(delivered_retention_days=0), redis_client=client, client=ScriptedTrademax(),
                        clock=clock, sends=False)
    relay.rng = random.Random(7)
    return relay


def run(relay, operation: str, event: dict, *answers) -> tuple[str, list[str]]:
    """Deliver ``event`` once; the state it ends in and the Trademax calls made."""
    relay.client = ScriptedTrademax(*answers)
    relay.clock.now += 1.5
    state = deliver(relay, operation, event, owner=OWNER)
    return state, relay.client.calls


def write_story(relay) -> dict[str, str]:
    """The story; returns each step's resulting state (the fixture and today's code must agree)."""
    refused = PermanentError("", operation="create_receipt", status=400, error_code=451,
                             error_messages=["param order_type is invalid"])
    steps = {
        "receipt delivered": run(relay, "receipt.create", example("receipt.create", transaction_id="R-1")),
        "update waits for its create": run(relay, "dispatch.update",
                                           example("dispatch.update", transaction_id="TX-1")),
        "create delivered": run(relay, "dispatch.create", example("dispatch.create", transaction_id="TX-1")),
        "absolute count delivered": run(relay, "stock.adjust", example("stock.adjust")),
        "relative adjustment uncertain": run(
            relay, "stock.adjust", example("stock.adjust", type="relative", quantity="-2", event_id="adj-2"),
            OutcomeUnknownError("ReadTimeout", operation="adjust_stock")),
        "receipt refused": run(relay, "receipt.create", example("receipt.create", transaction_id="R-2"),
                               refused),
        "receipt retrying": run(relay, "receipt.create", example("receipt.create", transaction_id="R-3"),
                                TransientError("", operation="create_receipt", status=503)),
        "invalid receipt": run(relay, "receipt.create", {"transaction_id": "R-4", "order_no": 7}),
        "conflicting receipt": run(relay, "receipt.create",
                                   example("receipt.create", transaction_id="R-1", order_no="OTHER")),
    }
    return {name: state for name, (state, _) in steps.items()}


def dump(client) -> dict[str, list]:
    """Every key with its type and content (hashes as dicts, sorted sets as [member, score] pairs, sets
    sorted), and whether it expires."""
    def text(value):
        return value.decode("utf-8") if isinstance(value, bytes) else value

    found: dict[str, list] = {}
    for raw_key in sorted(client.keys("*"), key=text):
        key, kind = text(raw_key), text(client.type(raw_key))
        if kind == "hash":
            value = {text(k): text(v) for k, v in client.hgetall(raw_key).items()}
        elif kind == "zset":
            value = [[text(m), s] for m, s in client.zrange(raw_key, 0, -1, withscores=True)]
        elif kind == "set":
            value = sorted(text(m) for m in client.smembers(raw_key))
        elif kind == "list":
            value = [text(v) for v in client.lrange(raw_key, 0, -1)]
        else:
            value = text(client.get(raw_key))
        found[key] = [kind, value, client.pttl(raw_key) > 0]
    return found


if __name__ == "__main__":  # write the store into DIR with a real valkey-server (SHUTDOWN flushes the AOF)
    sys.path.insert(0, str(ROOT))
    from tests.fixtures.redis_server import RedisServer

    target = Path(sys.argv[1]).resolve()
    target.mkdir(parents=True, exist_ok=True)
    server = RedisServer(target).start()
    try:
        states = write_story(relay_for(server.client(), Clock()))
        print(json.dumps(states, indent=1))
        server.stop()
    finally:
        server.kill()
