"""Redis memory per delivered event, measured two ways on a real valkey-server (the embedded wheel's).

N events (a third each: stock adjustments, receipts of three lines, dispatch creates with a package and its
label URL) go through the real delivery pipeline in this process — validation, the ledger's accept and
claim, the per-attempt log, the transition to ``delivered`` with Trademax's answer, the per-minute
delivery counts — against a scripted Trademax that answers at once.  Then:

- ``MEMORY USAGE`` of every ledger record, and with the ledger's indexes added (what the throughput
  benchmark reports), per event;
- the server's ``used_memory`` after minus before, per event: everything the events left, allocator
  overhead included (no other writer: the heartbeat and metrics keys are not there) — once with the
  store-call replies (``wms:request:*``, kept 10 minutes) and once after they are gone.

Delivered records expire DELIVERED_RETENTION_DAYS after delivery (a TTL on each record), so the store
holds at most that many days of deliveries: memory is per event times events per retention period.

    .venv/bin/python benchmarks/memory.py [--events 3000]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worker.delivery.pipeline import deliver  # noqa: E402
from worker.delivery.relay import build_relay  # noqa: E402
from worker.destinations.trademax.client import TrademaxReply  # noqa: E402
from worker.settings import Settings  # noqa: E402
from worker.store.embedded import (  # noqa: E402
    direct_client, free_port, new_password, server_config, start_server_process, store_url)

EXAMPLES = ROOT / "examples"


class AnswersAtOnce:
    """Trademax as the sandbox answers a success, without the network."""

    def _reply(self, name: str, data: dict) -> TrademaxReply:
        return TrademaxReply(operation=name, status=200, error_code=0, data=data, latency_seconds=0.05)

    def create_receipt(self, fields):
        return self._reply("create_receipt", {"receipt_id": 7001})

    def create_dispatch(self, fields):
        return self._reply("create_dispatch", {"dispatch_id": 4711, "tracking_code": "TC-1",
                                               "packages": [{"label_url": "https://labels.example/1.pdf"}]})

    def adjust_stock(self, artno, fields):
        return self._reply("adjust_stock", {"old_quantity": 5, "new_quantity": 9})


def events(count: int):
    samples = {name: json.loads((EXAMPLES / f"{name}.json").read_text())
               for name in ("stock.adjust", "receipt.create", "dispatch.create")}
    for n in range(count):
        operation = ("stock.adjust", "receipt.create", "dispatch.create")[n % 3]
        event = dict(samples[operation])
        if operation == "stock.adjust":
            event["event_id"] = f"mem-adj-{n}"
        else:
            event["transaction_id"] = f"MEM-{n}"
            event["event_id"] = f"mem-{n}"
        yield operation, event


def measure(count: int) -> dict:
    with tempfile.TemporaryDirectory() as workdir:
        port = free_port()
        conf = Path(workdir) / "valkey.conf"
        password = new_password()  # as every test and benchmark server
        conf.write_text(server_config(port=port, data_dir=Path(workdir), pidfile=None,
                                      logfile=Path(workdir) / "valkey.log", password=password))
        server = start_server_process(conf, detach=False)
        try:
            probe = direct_client(port, password=password)
            for _ in range(200):
                try:
                    probe.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            client = redis.Redis(host="127.0.0.1", port=port, password=password, decode_responses=True)
            relay = build_relay(Settings(redis_url=store_url(port, password)), redis_client=client,
                                client=AnswersAtOnce())
            deliver(relay, "stock.adjust", next(events(1))[1] | {"event_id": "warm-up"}, owner="bench")
            before = int(client.info("memory")["used_memory"])
            states = {}
            for operation, event in events(count):
                state = deliver(relay, operation, event, owner="bench")
                states[state] = states.get(state, 0) + 1
            after = int(client.info("memory")["used_memory"])
            records = [k for k in client.scan_iter("wms:event:*", count=1000) if "warm-up" not in k]
            record_bytes = sum(client.memory_usage(k, samples=0) or 0 for k in records)
            indexes = client.scan_iter("wms:ledger:*")
            index_bytes = sum(client.memory_usage(k, samples=0) or 0 for k in indexes)
            # The store-call rule's replies (wms:request:<id>, worker.store.requests) expire after 10 min:
            # measured, then removed as their expiry would, and used_memory read again.
            replies = list(client.scan_iter("wms:request:*", count=1000))
            reply_bytes = sum(client.memory_usage(k, samples=0) or 0 for k in replies)
            for start in range(0, len(replies), 1000):
                client.delete(*replies[start:start + 1000])
            settled = int(client.info("memory")["used_memory"])
            return {"events": count, "states": states, "record_bytes": round(record_bytes / len(records)),
                    "record_and_index_bytes": round((record_bytes + index_bytes) / len(records)),
                    "used_memory_bytes": round((after - before) / count),
                    "request_replies_per_event": round(len(replies) / count, 2),
                    "request_reply_bytes": round(reply_bytes / count),
                    "used_memory_after_replies_expire_bytes": round((settled - before) / count),
                    "server": client.info("server").get("valkey_version")}
        finally:
            server.terminate()
            server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    result = measure(parser.parse_args().events)
    print(json.dumps(result, indent=2))
    ok = result["record_and_index_bytes"] <= 1024 and result["used_memory_after_replies_expire_bytes"] <= 1024
    print("Target <= 1 KiB per delivered event: " + ("met" if ok else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
