"""Process-wide logging for wms-relay's processes: plain text, or one JSON object a line (LOG_FORMAT=json).

Only the entry points call ``configure``; libraries just use ``logging.getLogger``.  A line whose message
is itself a JSON object (``Observer.attempt`` in JSON mode) is merged into the line's object, so each
attempt is one flat JSON object: time, level, logger, msg, operation, key, attempt, outcome, status,
error_code, latency_ms.  Every line — message and traceback — passes the secret scrubber last: the
secret is kept out of log calls by construction, this catches what a library might add."""
from __future__ import annotations

import json
import logging
import sys
from typing import TextIO

from worker.redaction import Scrubber
from worker.store.connection import store_password
from worker.settings import LOG_LEVELS, Settings, SettingsError, valid_log_level


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        try:
            body = json.loads(message) if message.startswith("{") else {"msg": message}
        except ValueError:
            body = {"msg": message}
        if not isinstance(body, dict):
            body = {"msg": message}
        body = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name, **body}
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


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
    if settings.log_format == "json":
        inner: logging.Formatter = _JsonFormatter()
    else:
        inner = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    scrubber = Scrubber.from_settings(settings, store_password=store_password(settings))
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
