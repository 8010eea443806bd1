"""Process-wide logging for wms-relay's processes: plain text, or one JSON object a line (LOG_FORMAT=json).

Only the entry points call ``configure``; libraries just use ``logging.getLogger``.  JSON lines come from
python-json-logger (a maintained formatter, not ours): ``time`` (UTC, ISO-8601 with its offset:
``2024-05-01T08:00:00.123456+00:00``), ``level``, ``logger``, ``msg``, every ``extra=`` field at the top
level (``Observer.attempt``'s operation, key, attempt, outcome, status, error_code, latency_ms) and
``exc_info`` for a traceback.  Text lines carry the time in UTC with its offset too.  Every line — each
field, then the finished line, traceback included — passes the secret scrubber last: the secret is kept
out of log calls by construction, this catches what a library might add."""
from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

from worker.redaction import Scrubber
from worker.store.connection import store_password
from worker.settings import LOG_LEVELS, Settings, SettingsError, valid_log_level

# The record attributes every JSON line carries, and the names they carry them under.
JSON_FIELDS = "%(levelname)s %(name)s %(message)s"
JSON_NAMES = {"levelname": "level", "name": "logger", "message": "msg"}


class _JsonFormatter(JsonFormatter):
    """python-json-logger's formatter, with each field scrubbed before it is serialised (so a secret that
    JSON would escape is still found)."""

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__(JSON_FIELDS, rename_fields=JSON_NAMES, timestamp="time")
        self._scrubber = scrubber

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return self._scrubber.scrub(super().process_log_record(log_data))


class _UtcFormatter(logging.Formatter):
    """Text lines: ``2024-05-01T08:00:00.123+00:00 INFO logger: message``."""

    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created)) + \
            f".{int(record.msecs):03d}+00:00"


class _ScrubbingFormatter(logging.Formatter):
    """Formats with ``inner``, then removes secrets from the finished line."""

    def __init__(self, inner: logging.Formatter, scrubber: Scrubber) -> None:
        super().__init__()
        self._inner = inner
        self._scrubber = scrubber

    def format(self, record: logging.LogRecord) -> str:
        return self._scrubber.text(self._inner.format(record))


def formatter_for(settings: Settings) -> logging.Formatter:
    """The formatter of LOG_FORMAT, with secret scrubbing."""
    scrubber = Scrubber.from_settings(settings, store_password=store_password(settings))
    if settings.log_format == "json":
        inner: logging.Formatter = _JsonFormatter(scrubber)
    else:
        inner = _UtcFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    return _ScrubbingFormatter(inner, scrubber)


CELERY_PER_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


def configure(settings: Settings, stream: TextIO | None = None) -> None:
    """Send every log record of this process to ``stream`` (default stderr) in LOG_FORMAT at LOG_LEVEL."""
    if not valid_log_level(settings.log_level):
        raise SettingsError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {settings.log_level!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter_for(settings))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # urllib3 logs request lines at DEBUG; they carry no secret (bodies are not logged), but keep it quiet.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    # Celery logs two INFO lines per task ("Task ... received", "Task ... succeeded"); the pipeline's own
    # line per attempt (worker.observe.observer: operation, key, outcome, status, latency) says more, and a
    # parked event gets its own ERROR line.  Celery's two cost ~6% of a busy worker's CPU (py-spy, 200 ms
    # benchmark), so they are shown at LOG_LEVEL=DEBUG only.  Task errors (ERROR) always show.
    per_task = logging.NOTSET if settings.log_level == "DEBUG" else logging.WARNING
    for name in CELERY_PER_TASK_LOGGERS:
        logging.getLogger(name).setLevel(per_task)
