"""A worker clock 600 s behind the scheduler's (issue 23, item 5): Trademax answers 401 for the request's
timestamp.  On main every such event was "retried in a minute" by the worker's clock — already due by the
scheduler's — and went round as fast as the scheduler ticked (726 signed requests in 90 s).  Now the 401
opens Trademax's circuit as a configuration fault (one Sentry report), the events wait parked, a probe goes
out once a minute by the scheduler's clock, and ``wms-relay status`` flags ``clock_skew`` (and
``--fail-on-attention`` exits 1).  Once the clock is right, a probe is answered and the events are sent.

Real store (valkey), the real pipeline, scheduler, flow keeper and Trademax client; the one fake is
Trademax's HTTP answer (``responses``), dated by the scheduler's (the right) clock."""
from __future__ import annotations

import email.utils
import json
import re

import pytest
import responses

from tests.worker.commands.conftest import cleared, cli, env  # noqa: F401 — fixtures
from tests.worker.observe.test_sentry import KeptEnvelopes
from tests.worker.support.test_actions import example
from worker.delivery.flow_keeper import DestinationKeeper
from worker.delivery.pipeline import deliver
from worker.delivery.relay import build_relay
from worker.destinations.trademax.client import TrademaxClient
from worker.observe import sentry as sentry_setup
from worker.scheduling.fault_probes import fault_probe_grants
from worker.scheduling.scheduler import Scheduler
from worker.settings import Settings

BASE = "http://trademax.test/api/"
START = 1_714_550_000.0
SKEW = 600.0
MINUTES = 10


class SimulatedTime:
    """The scheduler's clock (right) and the worker's (``SKEW`` behind), moved by hand."""

    def __init__(self) -> None:
        self.now = START

    def scheduler(self) -> float:
        return self.now

    def worker(self) -> float:
        return self.now - self.skew

    skew = SKEW


class Trademax:
    """Trademax's answers: 401 "param timestamp has an invalid value" while the request's timestamp is more
    than 300 s from Trademax's clock (the scheduler's), else delivered; every request counted."""

    def __init__(self, time: SimulatedTime) -> None:
        self.time = time
        self.requests: list[str] = []

    def __call__(self, request):
        self.requests.append(request.url)
        params = json.loads(request.body) if request.body else dict(
            pair.split("=", 1) for pair in request.url.partition("?")[2].split("&") if "=" in pair)
        date = {"Date": email.utils.formatdate(self.time.now, usegmt=True)}
        if abs(float(params["timestamp"]) - self.time.now) > 300:
            body = {"error": {"error_code": 402, "error_messages": ["param timestamp has an invalid value"]}}
            return 401, date, json.dumps(body)
        return 200, date, json.dumps({"error": {"error_code": 0, "error_messages": []},
                                      "data": {"receipt_id": 7}})


@pytest.fixture
def sentry():
    KeptEnvelopes.envelopes = []
    assert sentry_setup.start(Settings(sentry_dsn="http://public@127.0.0.1:9/1"), transport=KeptEnvelopes)
    yield KeptEnvelopes
    sentry_setup.stop()


@responses.activate
def test_a_worker_clock_behind_the_schedulers_costs_one_request_a_minute(env, cli, sentry):  # noqa: F811
    time = SimulatedTime()
    trademax = Trademax(time)
    for method in ("GET", "POST", "PATCH"):
        responses.add_callback(method, re.compile(re.escape(BASE) + ".*"), callback=trademax)
    settings = Settings(redis_url=env.url, trademax_base_url=BASE, trademax_api_key="public-key",
                        trademax_secret="s3cret-for-tests")
    worker = build_relay(settings, redis_client=env.client(), clock=time.worker,
                         client=TrademaxClient(settings, clock=time.worker))
    scheduling = build_relay(settings, redis_client=env.client(), clock=time.scheduler, sends=False)
    published: list[dict] = []
    scheduler = Scheduler(scheduling.schedule, published.append, clock=time.scheduler,
                          housekeeping=[fault_probe_grants(scheduling, "scheduler-1@test")])
    keeper = DestinationKeeper(worker, "trademax")

    def run(seconds: int) -> None:
        for _ in range(seconds):
            scheduler.tick()
            while published:
                message = published.pop(0)
                operation = message["task"].split(".", 1)[1]  # trademax.receipt.create
                deliver(worker, operation, message["event"], owner="w-1")
            keeper.step()
            time.now += 1.0

    for n in range(3):
        event = example("receipt.create", transaction_id=f"R-SKEW-{n}")
        assert deliver(worker, "receipt.create", event, owner="w-1") == "retrying"
    run(MINUTES * 60)

    # One request opened the circuit (the other two events were parked by the gate without a send), then
    # one probe a minute: at most one request per minute of the scheduler's clock.
    assert len(trademax.requests) <= MINUTES + 1, len(trademax.requests)
    assert len(trademax.requests) >= MINUTES - 1  # and it does keep looking
    circuit = worker.flow.gate("trademax").circuit.state()
    assert circuit["state"] == "open" and circuit["fault"] == "clock_skew"
    assert [worker.ledger.get("receipt.create", f"R-SKEW-{n}").state for n in range(3)] == ["retrying"] * 3
    assert worker.dead_letters.count() == 0

    report = cli.json("status")
    flags = [item for item in report["attention"] if item.get("destination") == "trademax"]
    assert [item["flag"] for item in flags] == ["clock_skew"]
    assert "clock" in flags[0]["message"] and "NTP" in flags[0]["message"]
    code, out, _ = cli("status", "--fail-on-attention")
    assert code == 1 and "refuses our requests' timestamps" in out
    faults = [event for event in sentry.events() if event.get("tags", {}).get("fault") == "clock_skew"]
    assert len(faults) == 1  # one report for the fault, not one per request or probe

    time.skew = 0.0  # the clock is fixed (NTP): the next probe is answered, the parked events are sent
    run(90)
    assert worker.flow.gate("trademax").circuit.state()["state"] == "closed"
    assert [worker.ledger.get("receipt.create", f"R-SKEW-{n}").state for n in range(3)] == ["delivered"] * 3
