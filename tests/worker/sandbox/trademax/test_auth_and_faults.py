"""The sandbox's request authentication (document error codes) and its seeded fault draws."""
from __future__ import annotations

import pytest

import signing
from worker.sandbox.trademax.auth import authenticate
from worker.sandbox.faults import STALL, SERVER_ERROR, THROTTLE, FaultInjector, FaultPlan

URL = "http://127.0.0.1:8765/api/inventory/123/stock-adjustment"
NOW = 1_700_000_000
KEYS = {"public": "secret"}


def signed(secret="secret", **changes):
    params = {"warehouse_id": "nw", "api_key": "public", "timestamp": str(NOW), "method": "GET", "url": URL}
    params.update(changes)
    params = {k: v for k, v in params.items() if v is not None}
    return {**params, "signature": signing.sign(params, secret)}


def check(params, method="GET", url=URL, now=NOW, keys=KEYS):
    answer = authenticate(params, method=method, url=url, now=now, keys=keys)
    return None if answer is None else (answer.status, answer.error_code)


def test_authentic_request_passes():
    assert check(signed()) is None


def test_several_secrets_allow_rotation():
    assert check(signed(secret="new"), keys={"public": ["old", "new"]}) is None


@pytest.mark.parametrize("missing", ["api_key", "timestamp", "signature", "method", "url"])
def test_missing_auth_param_is_401(missing):
    params = signed()
    params[missing] = ""
    assert check(params) == (401, 401)


@pytest.mark.parametrize(
    "params, kwargs, expected",
    [
        (signed(api_key="stranger"), {}, (401, 404)),
        (signed(secret="wrong"), {}, (401, 405)),
        ({**signed(), "warehouse_id": "se"}, {}, (401, 405)),  # tampered after signing
        (signed(), {"method": "DELETE"}, (401, 405)),  # signed for GET, sent as DELETE
        (signed(), {"url": "http://127.0.0.1:9999/api/inventory/123/stock-adjustment"}, (401, 405)),
        (signed(timestamp=str(NOW - 301)), {}, (401, 402)),
        (signed(timestamp=str(NOW + 301)), {}, (401, 402)),
        (signed(timestamp="yesterday"), {}, (401, 402)),
    ],
    ids=["unknown-key", "bad-secret", "tampered", "wrong-method", "wrong-url", "stale", "future",
         "not-a-number"],
)
def test_rejections(params, kwargs, expected):
    assert check(params, **kwargs) == expected


def test_timestamp_within_300_seconds_passes():
    assert check(signed(timestamp=str(NOW - 300))) is None
    assert check(signed(timestamp=str(NOW + 300))) is None


# -- faults ------------------------------------------------------------------------------------------
def kinds(injector, n=1000):
    return [injector.draw().kind for _ in range(n)]


def test_same_seed_same_faults():
    plan = FaultPlan(fail_rate=0.2, throttle_rate=0.2, timeout_after_apply_rate=0.1)
    assert kinds(FaultInjector(plan, seed=7)) == kinds(FaultInjector(plan, seed=7))
    assert kinds(FaultInjector(plan, seed=7)) != kinds(FaultInjector(plan, seed=8))


def test_rates_are_fractions_of_requests():
    plan = FaultPlan(fail_rate=0.2, throttle_rate=0.3, timeout_after_apply_rate=0.1)
    drawn = kinds(FaultInjector(plan, seed=1), n=10_000)
    for kind, rate in ((SERVER_ERROR, 0.2), (THROTTLE, 0.3), (STALL, 0.1), (None, 0.4)):
        assert drawn.count(kind) / len(drawn) == pytest.approx(rate, abs=0.02)


def test_latency_and_stall_come_with_the_fault():
    fault = FaultInjector(FaultPlan(latency_ms=600, timeout_after_apply_rate=1.0, stall_seconds=2)).draw()
    assert (fault.kind, fault.latency_seconds, fault.stall_seconds) == (STALL, 0.6, 2.0)


def test_plan_changes_at_run_time_and_resets():
    injector = FaultInjector(FaultPlan(), seed=3)
    assert set(kinds(injector, 50)) == {None}
    injector.update({"fail_rate": 1})
    assert set(kinds(injector, 50)) == {SERVER_ERROR}
    injector.reset(FaultPlan(), seed=3)
    assert injector.plan == FaultPlan()


@pytest.mark.parametrize(
    "changes",
    [{"fail_rate": 1.5}, {"fail_rate": 0.6, "throttle_rate": 0.6}, {"latency_ms": -1}, {"typo_rate": 0.1},
     {"fail_rate": "half"}, {"fail_rate": True}, {"duplicate_without_data": 0.5},
     {"duplicate_without_data": 2}],
)
def test_bad_plans_are_refused(changes):
    injector = FaultInjector(FaultPlan())
    with pytest.raises(ValueError):
        injector.update(changes)
    assert injector.plan == FaultPlan()


def test_the_duplicate_without_data_switch_empties_a_452_and_only_a_452():
    """Switched on (``POST /_sandbox/faults {"duplicate_without_data": 1}``), a repeated create is still
    refused with 452 and applies nothing, but its answer carries no original record — so no id; a first
    create still answers its data.  The request log names the switch on the 452 only."""
    from tests.worker.sandbox.loopback import serving
    from worker.destinations.trademax.client import TrademaxClient
    from worker.sandbox.trademax.api import TrademaxApi
    from worker.settings import Settings

    with serving(TrademaxApi(keys={"k": "s"})) as (base_url, control):
        client = TrademaxClient(Settings(trademax_base_url=base_url, trademax_api_key="k",
                                         trademax_secret="s"))
        receipt = {"order_no": "IO1", "transaction_id": "R1", "order_type": "PO", "warehouse_id": "NW",
                   "received_date": "2015-07-26", "products": [{"line_no": 1, "artno": "A", "quantity": 1}]}
        assert client.create_receipt(receipt).data["receipt_id"] == 1
        assert client.create_receipt(receipt).data["receipt_id"] == 1  # off: the original as data
        assert control.set_faults(duplicate_without_data=1)["duplicate_without_data"] == 1
        new = {**receipt, "transaction_id": "R2"}
        assert client.create_receipt(new).data["receipt_id"] == 2   # a first create keeps its answer
        again = client.create_receipt(new)
        assert (again.duplicate, again.status, again.error_code, again.data) == (True, 400, 452, [])
        assert "receipt_id" not in again.ledger_result()
        assert [r["transaction_id"] for r in control.state()["receipts"]] == ["R1", "R2"]
        assert [(r["status"], r["error_code"], r["fault"]) for r in control.requests()] == [
            (200, 0, None), (400, 452, None), (200, 0, None), (400, 452, "duplicate_without_data")]
        control.reset()
        assert control.faults()["duplicate_without_data"] == 0
