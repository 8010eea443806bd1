"""worker.observe.logs.configure: one handler on the root, LOG_LEVEL applied, and Celery's two per-task
INFO lines (received, succeeded) left to DEBUG while the pipeline's own attempt line stays at INFO."""
from __future__ import annotations

import io
import logging

import pytest

from worker.observe.logs import CELERY_PER_TASK_LOGGERS, configure
from worker.settings import Settings


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in CELERY_PER_TASK_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


def test_celery_per_task_lines_are_quiet_at_info_and_the_attempt_line_is_not(restore_logging):
    out = io.StringIO()
    configure(Settings(log_level="INFO"), stream=out)
    logging.getLogger("celery.worker.strategy").info("Task trademax.stock.adjust[1] received")
    logging.getLogger("celery.app.trace").info("Task trademax.stock.adjust[1] succeeded in 0.01s")
    logging.getLogger("celery.app.trace").error("Task trademax.stock.adjust[2] raised unexpected: X")
    logging.getLogger("wms_relay.attempts").info("attempt operation=stock.adjust key=k outcome=delivered")
    text = out.getvalue()
    assert "received" not in text and "succeeded" not in text
    assert "raised unexpected" in text and "outcome=delivered" in text


def test_at_debug_celery_per_task_lines_show(restore_logging):
    out = io.StringIO()
    configure(Settings(log_level="DEBUG"), stream=out)
    logging.getLogger("celery.worker.strategy").info("Task trademax.stock.adjust[1] received")
    assert "received" in out.getvalue()


def _json_lines(out: io.StringIO) -> list[dict]:
    import json

    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_json_lines_carry_utc_time_with_offset_and_every_extra_field(restore_logging):
    from datetime import datetime, timedelta

    from worker.observe.observer import Observer

    out = io.StringIO()
    settings = Settings(log_format="json", log_level="INFO")
    configure(settings, stream=out)
    event = type("Event", (), {"operation": "stock.adjust", "key": "adj-1"})()
    Observer.from_settings(settings).attempt(event, 2, "transient", status=503, error_code=None, latency=0.25)
    logging.getLogger("wms_relay.other").warning("plain %s", "words", extra={"queue": "trademax.stock"})
    attempt, plain = _json_lines(out)
    assert (attempt["msg"], attempt["level"], attempt["logger"]) == ("attempt", "INFO", "wms_relay.attempts")
    names = ("operation", "key", "attempt", "outcome", "status", "error_code", "latency_ms")
    assert {k: attempt[k] for k in names} == {
        "operation": "stock.adjust", "key": "adj-1", "attempt": 2, "outcome": "transient", "status": 503,
        "error_code": None, "latency_ms": 250.0}
    when = datetime.fromisoformat(attempt["time"])
    assert when.utcoffset() == timedelta(0) and attempt["time"].endswith("+00:00")
    assert abs((datetime.now(when.tzinfo) - when).total_seconds()) < 3600
    assert (plain["msg"], plain["queue"], plain["level"]) == ("plain words", "trademax.stock", "WARNING")


def test_text_lines_carry_utc_time_with_offset(restore_logging):
    import re

    out = io.StringIO()
    configure(Settings(log_level="INFO"), stream=out)
    logging.getLogger("wms_relay.x").info("hello")
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 INFO wms_relay\.x: hello$",
                    out.getvalue().strip())


def test_the_scrubber_still_cleans_json_lines_fields_and_tracebacks(restore_logging):
    secret = 'sec"ret\\with-quotes-0123'  # JSON escapes it: only a field-level scrub finds it
    out = io.StringIO()
    configure(Settings(log_format="json", trademax_secret=secret), stream=out)
    log = logging.getLogger("wms_relay.leaky")
    log.info("sent %s", secret, extra={"url": "https://x/api?signature=abc123&api_key=k1",
                                       "detail": {"secret": "plain", "note": secret}})
    try:
        raise RuntimeError(f"boom {secret}")
    except RuntimeError:
        log.exception("failed")
    text = out.getvalue()
    assert "ret\\\\with" not in text and "sec\\\"ret" not in text and "abc123" not in text
    first, second = _json_lines(out)
    assert first["msg"] == "sent [redacted]"
    assert first["detail"] == {"secret": "[redacted]", "note": "[redacted]"}
    assert "signature=[redacted]" in first["url"]
    assert "boom [redacted]" in second["exc_info"] and second["msg"] == "failed"
