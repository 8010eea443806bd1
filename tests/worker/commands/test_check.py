"""``wms-relay check``: names a bad setting, pings Redis, and tells accepted from refused credentials with
one signed read-only request — against the sandbox Trademax, which authenticates like Trademax."""
from __future__ import annotations

import json

import pytest

from worker.cli import main
from worker.commands.check import judge_trademax
from worker.errors import OutcomeUnknownError, PermanentError, TransientError

SECRET = "check-canary-3f9a1c0d5e7b2a48"


@pytest.fixture(scope="module")
def trademax():
    from tests.fixtures.sandbox import start_sandbox

    running = start_sandbox(secret=SECRET, api_key="check-key")
    yield running
    running.stop()


@pytest.fixture
def check(shared_redis_server, trademax, cli, monkeypatch, tmp_path):
    monkeypatch.setenv("REDIS_URL", shared_redis_server.url)
    monkeypatch.setenv("WMS_RELAY_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("TRADEMAX_BASE_URL", trademax.base_url)
    monkeypatch.setenv("TRADEMAX_API_KEY", "check-key")
    monkeypatch.setenv("TRADEMAX_SECRET", SECRET)

    def run(**env: str) -> tuple[int, str]:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code, out, err = cli("check")
        assert SECRET not in out + err
        return code, out + err
    return run


def test_everything_set_up_passes_and_one_signed_request_reached_trademax(check, trademax):
    before = len(trademax.requests())
    code, out = check()
    assert code == 0, out
    assert "OK    Trademax: credentials accepted (HTTP 200)" in out
    assert "OK    Redis:" in out and "All checks passed." in out
    sent = trademax.requests()[before:]
    assert [(r["method"], r["status"]) for r in sent] == [("GET", 200)]
    assert sent[0]["path"].startswith("/api/order/outgoing/")


def test_a_wrong_secret_is_named(check):
    code, out = check(TRADEMAX_SECRET="not-the-secret")
    assert code == 1
    assert "FAIL  Trademax: the signature was refused (401, error_code 405)" in out
    assert "check TRADEMAX_SECRET" in out and "not-the-secret" not in out


def test_an_unknown_api_key_is_named(check):
    code, out = check(TRADEMAX_API_KEY="someone-elses-key")
    assert code == 1 and "api key is not known" in out and "check TRADEMAX_API_KEY" in out


def test_missing_and_malformed_settings_are_named(check, monkeypatch):
    monkeypatch.delenv("TRADEMAX_SECRET")
    code, out = check(LOG_LEVEL="LOUD", FLOWER_BASIC_AUTH="admin")
    assert code == 1
    for name in ("TRADEMAX_SECRET: is not set", "LOG_LEVEL:", "FLOWER_BASIC_AUTH:"):
        assert name in out
    code, out = check(RETRY_MAX_ATTEMPTS="many")
    assert code == 1 and "RETRY_MAX_ATTEMPTS must be a whole number" in out


def test_the_ingest_tokens_file_is_read_and_named(check, tmp_path):
    tokens = tmp_path / "tokens"
    code, out = check(INGEST_TOKENS_FILE=str(tokens))
    assert code == 1 and f"FAIL  INGEST_TOKENS_FILE: {tokens} cannot be read" in out
    tokens.write_text("nw-wms not-a-hash\n")
    code, out = check()
    assert code == 1 and "line 1: expected `CLIENT sha256:HEX [OPERATIONS]`" in out
    tokens.write_text("# no tokens yet\n")
    code, out = check()
    assert code == 0 and "WARN  INGEST_TOKENS_FILE:" in out and "holds no token" in out
    tokens.write_text("nw-wms sha256:" + "ab" * 32 + " stock.adjust\n")
    code, out = check()
    assert code == 0 and "OK    INGEST_TOKENS_FILE: 1 token for nw-wms" in out


def test_check_json_lists_each_check(check, monkeypatch, capsys):
    code = main(["check", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"] is True
    checks = [(c["level"], c["what"]) for c in report["checks"]]
    assert checks == [("OK", "settings"), ("OK", "Redis"), ("OK", "Trademax")]


def test_an_unreachable_redis_fails_its_check(check):
    code, out = check(REDIS_URL="redis://127.0.0.1:1/0")
    assert code == 1 and "FAIL  Redis: redis://127.0.0.1:1/0 (REDIS_URL) does not answer" in out


def test_what_each_trademax_answer_means():
    assert judge_trademax(None, 200).level == "OK"
    not_found = PermanentError("", operation="get_order_lines", status=404, error_code=1,
                               error_messages=["order not found"])
    assert judge_trademax(not_found).level == "OK"  # past authentication: the credentials work
    assert judge_trademax(PermanentError("", status=403, error_code=406)).level == "OK"
    clock = judge_trademax(PermanentError("", status=401, error_code=402))
    assert clock.level == "FAIL" and "clock" in clock.message
    assert judge_trademax(TransientError("refused", status=None)).level == "FAIL"
    assert judge_trademax(OutcomeUnknownError("read timeout")).level == "FAIL"


def test_every_other_destination_that_is_on_gets_one_harmless_request(check):
    """ka-ching: an empty import; StockTrim: ProcessingStatus; Stock2Shop: login + sources — each against
    its sandbox over loopback; a wrong Stock2Shop password fails naming Stock2Shop, and never shows."""
    from tests.worker.sandbox.loopback import serving
    from worker.sandbox.kaching.api import KachingApi
    from worker.sandbox.stock2shop.api import Stock2ShopApi
    from worker.sandbox.stocktrim.api import StockTrimApi

    kaching = KachingApi(account="acme", integration="wms", api_key="kaching-key-77")
    stocktrim = StockTrimApi(auth_id="tenant", auth_signature="stocktrim-sig-88")
    stock2shop = Stock2ShopApi(username="relay", password="s2s-pass-99", source_id="57", max_rps=0)
    with serving(kaching) as (k_url, k_control), serving(stocktrim) as (st_url, st_control), \
            serving(stock2shop) as (s_url, s_control):
        env = {"KACHING_BASE_URL": k_url, "KACHING_ACCOUNT": "acme", "KACHING_INTEGRATION": "wms",
               "KACHING_API_KEY": "kaching-key-77", "KACHING_LOCATIONS": "nw=shop-1",
               "STOCKTRIM_BASE_URL": st_url, "STOCKTRIM_AUTH_ID": "tenant",
               "STOCKTRIM_AUTH_SIGNATURE": "stocktrim-sig-88", "STOCKTRIM_LOCATIONS": "nw=NW",
               "STOCK2SHOP_BASE_URL": s_url, "STOCK2SHOP_USERNAME": "relay",
               "STOCK2SHOP_PASSWORD": "s2s-pass-99",
               "STOCK2SHOP_SOURCE_ID": "57", "STOCK2SHOP_LOCATIONS": ""}
        code, out = check(**env)
        assert code == 0, out
        assert "OK    ka-ching: credentials accepted" in out
        assert "OK    StockTrim: credentials accepted" in out
        assert "OK    Stock2Shop: credentials accepted; source 57 listed" in out
        assert "WARN  Stock2Shop: STOCK2SHOP_LOCATIONS lists no warehouse" in out
        assert [r["path"] for r in k_control.requests()] == ["/imports/stock"]
        assert k_control.state()["stock"] == {}
        assert [r["path"] for r in st_control.requests()] == ["/api/ProcessingStatus"]
        code, out = check(**{**env, "STOCK2SHOP_PASSWORD": "wrong-password-1"})
        assert code == 1 and "FAIL  Stock2Shop: refused the check" in out and "check its credentials" in out
        assert "wrong-password-1" not in out and "s2s-pass-99" not in out and "kaching-key-77" not in out
