"""worker.observe.logs.configure: one handler on the root, LOG_LEVEL applied, and Celery's two per-task
INFO lines (received, succeeded) left to DEBUG while the pipeline's own attempt line stays at INFO."""
from __future__ import annotations

import io
import json
import logging

import pytest

from worker.observe.logs import CELERY_PER_TASK_LOGGERS, configure
from worker.settings import Settings


@pytest.fixture
def restore_logging():
    import sys
    import threading

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in CELERY_PER_TASK_LOGGERS}
    hooks = sys.excepthook, threading.excepthook
    switches = logging._srcfile, logging.logThreads, logging.logProcesses, logging.logMultiprocessing
    yield
    logging._srcfile, logging.logThreads, logging.logProcesses, logging.logMultiprocessing = switches
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)
    sys.excepthook, threading.excepthook = hooks
    logging.captureWarnings(False)


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


# -- fields, not strings; every line JSON ---------------------------------------------------------------

def test_log_fields_are_top_level_in_json_and_key_value_in_text(restore_logging):
    from worker.observe.logs import log_fields

    facts = {"method": "POST", "status": 415, "first_key": "k\n2", "request_id": "r-1"}
    out = io.StringIO()
    configure(Settings(log_format="json"), stream=out)
    log_fields(logging.getLogger("wms_relay.ingest"), logging.INFO, "request", facts)
    [line] = _json_lines(out)
    assert line["msg"] == "request" and {k: line[k] for k in facts} == facts and "fields" not in line
    text = io.StringIO()
    configure(Settings(), stream=text)
    log_fields(logging.getLogger("wms_relay.ingest"), logging.INFO, "request", facts)
    assert text.getvalue().rstrip().endswith(
        "INFO wms_relay.ingest: request method=POST status=415 first_key=k\\n2 request_id=r-1")


def test_a_line_logged_inside_a_celery_task_carries_its_id(restore_logging):
    from celery import Celery

    out = io.StringIO()
    configure(Settings(log_format="json"), stream=out)
    app = Celery("log-test", set_as_current=False)

    @app.task(name="trademax.stock.adjust")
    def adjust():
        logging.getLogger("wms_relay.attempts").info("attempt")

    adjust.apply(task_id="6ee9bc03-cd6b-4d08-a36c-741d43ce996f")  # runs here, with Celery's task context
    logging.getLogger("wms_relay.attempts").info("outside")
    inside, outside = _json_lines(out)
    assert (inside["task_id"], inside["task"]) == ("6ee9bc03-cd6b-4d08-a36c-741d43ce996f",
                                                   "trademax.stock.adjust")
    assert "task_id" not in outside


def test_warnings_and_uncaught_exceptions_are_json_lines(restore_logging):
    import sys
    import threading
    import warnings

    out = io.StringIO()
    configure(Settings(log_format="json"), stream=out)
    warnings.warn("careful", UserWarning)
    try:
        raise ValueError("nobody caught me")
    except ValueError:
        sys.excepthook(*sys.exc_info())
    thread = threading.Thread(target=lambda: 1 / 0, name="flusher")
    thread.start()
    thread.join()
    warned, uncaught, in_thread = _json_lines(out)
    assert warned["logger"] == "py.warnings" and "careful" in warned["msg"]
    assert uncaught["msg"] == "uncaught ValueError" and "nobody caught me" in uncaught["exc_info"]
    assert in_thread["msg"] == "uncaught ZeroDivisionError in thread flusher"


def test_the_ready_line_is_plain_in_text_and_json_in_json(restore_logging):
    from worker.observe.logs import announce
    from worker.web.serving import listening_url

    said = io.StringIO()
    announce("wms-relay desk: listening on http://127.0.0.1:8080/", said)  # before configure: as it is
    configure(Settings(), stream=io.StringIO())
    announce("wms-relay desk: listening on http://127.0.0.1:8080/", said)
    configure(Settings(log_format="json"), stream=io.StringIO())
    announce("wms-relay desk: listening on http://127.0.0.1:8080/", said)
    plain, text, as_json = said.getvalue().splitlines()
    assert plain == text == "wms-relay desk: listening on http://127.0.0.1:8080/"
    assert json.loads(as_json)["msg"] == plain and json.loads(as_json)["logger"] == "wms_relay.ready"
    assert {listening_url(line) for line in (plain, as_json)} == {"http://127.0.0.1:8080/"}


def test_a_process_stopped_by_a_setting_says_so_in_json(monkeypatch, capsys):
    from worker.cli import main

    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("WORKER_CONCURRENCY", "many")
    assert main(["scheduler"]) == 2
    line = json.loads(capsys.readouterr().err)
    assert (line["level"], line["logger"]) == ("ERROR", "wms_relay")
    assert line["msg"] == "configuration problem: WORKER_CONCURRENCY must be a whole number, got 'many'"
    assert main(["status"]) == 2  # a person's command: plain words
    assert capsys.readouterr().err.startswith("wms-relay: configuration problem: WORKER_CONCURRENCY")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_lean_records_lose_nothing_a_line_shows(restore_logging, log_format):
    """configure() turns off the records' caller, thread and process lookups (logs.lean_records): a line
    — an attempt's, a warning with a traceback, one inside a task — reads the same with them on as off,
    but for its time; a format that came to print one of them would fail here."""
    from worker.observe.observer import Observer

    def lines(lean: bool) -> list[str]:
        out = io.StringIO()
        configure(Settings(log_format=log_format), stream=out)
        if not lean:
            logging._srcfile = logging.__file__
            logging.logThreads = logging.logProcesses = logging.logMultiprocessing = True
        event = type("Event", (), {"operation": "receipt.create", "key": "R-1", "destination": "trademax"})()
        Observer(log_format=log_format).attempt(event, 2, "delivered", status=200, error_code=None,
                                                latency=0.0123)
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("wms_relay.delivery").warning("could not %s", "x", exc_info=True)
        return [_without_time(line, log_format) for line in out.getvalue().splitlines()]

    lean, full = lines(True), lines(False)
    assert logging._srcfile is not None  # the second configure() ran before the switches were put back
    assert lean == full and any("outcome=delivered" in line or '"outcome": "delivered"' in line
                                for line in lean)
    record = logging.getLogger("x").makeRecord("x", logging.INFO, "f", 1, "m", (), None)
    assert record.process is not None  # switched on again above: this process's id
    configure(Settings(log_format=log_format), stream=io.StringIO())
    record = logging.getLogger("x").makeRecord("x", logging.INFO, "f", 1, "m", (), None)
    assert record.process is None and record.thread is None and record.processName is None


def _without_time(line: str, log_format: str) -> str:
    if log_format == "json":
        found = json.loads(line)
        found.pop("time", None)
        found.pop("asctime", None)
        return json.dumps(found, sort_keys=True)
    return line.split(" ", 1)[1]
