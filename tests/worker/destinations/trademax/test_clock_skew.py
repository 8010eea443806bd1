"""A worker clock beyond the allowed skew is a configuration error, not the event's failure: a 401 that
names the timestamp, or whose Date header is more than 300 s from our clock, is a ClockSkewError — the
event waits in the retry schedule (never a dead letter, never exhausted) and the worker alerts at ERROR.
Any other 401 (a bad signature, an unknown key) stays a permanent refusal."""
from __future__ import annotations

import email.utils
import logging

import fakeredis
import pytest
import responses

from tests.fixtures.clock import Clock
from tests.worker.support.test_actions import ScriptedTrademax, example
from tests.worker.destinations.trademax.test_client import BASE, NOW, make_client
from worker.delivery.pipeline import deliver
from worker.errors import ClockSkewError, PermanentError
from worker.delivery.relay import build_relay
from worker.settings import Settings

AUTH_FAIL = {"error": {"error_code": 405, "error_messages": ["Authentication failed"]}}
TIMESTAMP = {"error": {"error_code": 402, "error_messages": ["param timestamp has an invalid value"]}}


def date(moment: float) -> str:
    return email.utils.formatdate(moment, usegmt=True)


@responses.activate
def test_a_401_dated_far_from_our_clock_is_clock_skew():
    responses.add("GET", BASE + "dispatch/1", json=AUTH_FAIL, status=401, headers={"Date": date(NOW - 900)})
    with pytest.raises(ClockSkewError) as caught:
        make_client().get_dispatch(1)
    assert 890 < caught.value.skew_seconds < 910 and "configuration error" in str(caught.value)


@responses.activate
def test_a_401_naming_the_timestamp_is_clock_skew_without_a_date():
    responses.add("GET", BASE + "dispatch/1", json=TIMESTAMP, status=401)
    with pytest.raises(ClockSkewError):
        make_client().get_dispatch(1)


@responses.activate
def test_a_bad_signature_with_our_clock_right_stays_permanent():
    responses.add("GET", BASE + "dispatch/1", json=AUTH_FAIL, status=401, headers={"Date": date(NOW + 3)})
    with pytest.raises(PermanentError):
        make_client().get_dispatch(1)


def test_a_clock_skew_refusal_waits_in_the_retry_schedule_and_alerts(caplog):
    relay = build_relay(Settings(), redis_client=fakeredis.FakeRedis(), client=ScriptedTrademax(),
                        clock=Clock())
    skew = ClockSkewError("configuration error: clock", skew_seconds=900.0, operation="adjust_stock",
                          status=401)
    relay.client = ScriptedTrademax(*[skew] * 3)
    event = example("stock.adjust", event_id="skew-1")
    with caplog.at_level(logging.ERROR, logger="wms_relay.configuration"):
        state = deliver(relay, "stock.adjust", event, owner="w")
    assert state == "retrying"
    assert relay.dead_letters.count() == 0
    assert [e.ref for e in relay.schedule.list()] == ["stock.adjust:skew-1"]
    assert any("clock" in r.getMessage() for r in caplog.records)
