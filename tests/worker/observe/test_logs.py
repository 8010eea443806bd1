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
