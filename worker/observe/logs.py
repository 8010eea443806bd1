"""Process-wide logging for wms-relay's processes: plain text, or one JSON object a line (LOG_FORMAT=json).

Only the entry points call ``configure``; libraries just use ``logging.getLogger``.  JSON lines come from
python-json-logger (a maintained formatter, not ours): ``time`` (UTC, ISO-8601 with its offset:
``2024-05-01T08:00:00.123456+00:00``), ``level``, ``logger``, ``msg``, every ``extra=`` field at the top
level (``Observer.attempt``'s operation, key, attempt, outcome, status, error_code, latency_ms) and
``exc_info`` for a traceback.  Text lines carry the time in UTC with its offset too.  Every line — each
field, then the finished line, traceback included — passes the secret scrubber last: the secret is kept
out of log calls by construction, this catches what a library might add.

Fields, not strings: :func:`log_fields` hands a line's facts over as ``fields`` (the web doors' request
lines); a JSON line carries each at its top level, a text line appends them as ``key=value``.  A line
logged while a Celery task runs carries ``task_id`` and ``task`` (the task's name), in JSON.

In JSON mode every line a process writes is JSON, not only its log records: ``configure`` sends Python's
warnings and uncaught exceptions (any thread's) through the formatter; :func:`announce` writes a process's
ready line (``... listening on URL``) as a JSON object; :func:`celery_console_to_log` turns the notices
Celery writes past logging (the worker's shutdown words) into log lines; the worker runs without its
banner (``--quiet``) and Flower without Tornado's own log setup (``--logging=none``)."""
from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

from worker.encoding import one_line
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
        fields = log_data.pop(FIELDS, None)
        # log_fields(): each fact at the top level, where it is not taken
        if fields is not None and isinstance(fields, Mapping):
            log_data.update({k: v for k, v in fields.items() if k not in log_data})
        return self._scrubber.scrub(super().process_log_record(log_data))


class _UtcFormatter(logging.Formatter):
    """Text lines: ``2024-05-01T08:00:00.123+00:00 INFO logger: message``."""

    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created)) + \
            f".{int(record.msecs):03d}+00:00"

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802
        line = super().formatMessage(record)
        fields = getattr(record, FIELDS, None)
        if fields and isinstance(fields, Mapping):  # one line per record, whatever a value holds
            line += " " + " ".join(f"{k}={one_line(v)}" for k, v in fields.items())
        return line


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
# The record attribute log_fields() puts a line's facts in.
FIELDS = "fields"


def log_fields(logger: logging.Logger, level: int, message: str, fields: Mapping[str, Any]) -> None:
    """One line whose facts are fields: top-level keys of a JSON line, ``key=value`` after a text one."""
    logger.log(level, message, extra={FIELDS: dict(fields)}, stacklevel=2)


class _TaskContext(logging.Filter):
    """Adds ``task_id`` and ``task`` to a record logged while a Celery task runs in this thread (the
    worker's attempt lines, Celery's own lines about the task).  Celery keeps the running task per thread
    (threads pool included); a process that never imported Celery has none."""

    def filter(self, record: logging.LogRecord) -> bool:
        state = sys.modules.get("celery._state")
        task = state.get_current_task() if state is not None else None
        request = getattr(task, "request", None) if task is not None else None
        task_id = getattr(request, "id", None)
        if task_id and not hasattr(record, "task_id"):
            record.task_id = task_id
            record.task = getattr(task, "name", None)
        return True


def _configured_formatter() -> logging.Formatter | None:
    """The formatter ``configure`` put on the root handler (None before it ran)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, _ScrubbingFormatter):
            return handler.formatter
    return None


def json_mode() -> bool:
    """True once ``configure`` set this process up for LOG_FORMAT=json."""
    found = _configured_formatter()
    return isinstance(found, _ScrubbingFormatter) and isinstance(found._inner, JsonFormatter)


def announce(message: str, stream: TextIO | None = None, *, logger: str = "wms_relay.ready") -> None:
    """A process's one line on stdout saying it is ready (``NAME: listening on URL``: scripts and tests wait
    for it): the words as they are, or — LOG_FORMAT=json — a JSON line like every other, ``msg`` holding
    the same words."""
    formatter = _configured_formatter()
    line = message
    if formatter is not None and json_mode():
        line = formatter.format(logging.LogRecord(logger, logging.INFO, __file__, 0, message, None, None))
    print(line, file=stream or sys.stdout, flush=True)


def json_line(message: str, *, level: int = logging.ERROR, logger: str = "wms_relay") -> str:
    """One JSON log line without ``configure`` (a process stopped by a bad setting never got that far)."""
    record = logging.LogRecord(logger, level, __file__, 0, message, None, None)
    return _JsonFormatter(Scrubber([])).format(record)


def _log_uncaught(kind, value, traceback, thread: str | None = None) -> None:
    where = f" in thread {thread}" if thread else ""
    logging.getLogger("wms_relay").critical("uncaught %s%s", kind.__name__, where,
                                            exc_info=(kind, value, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback,
                  thread=getattr(args.thread, "name", None))


def celery_console_to_log() -> None:
    """Celery's worker writes a few notices (``worker: Warm shutdown (MainProcess)``, the Ctrl-C hints)
    straight to the terminal with ``celery.apps.worker.safe_say``, past logging; in JSON mode they become
    INFO lines of the logger ``celery.apps.worker``.  Celery looks the function up when it calls it, so
    replacing it is enough (tests/integration/test_json_logs.py stops a worker and reads every line)."""
    from celery.apps import worker as celery_worker

    notices = logging.getLogger("celery.apps.worker")

    def say(message: str, *_: object, **__: object) -> None:
        notices.info("%s", str(message).strip())

    celery_worker.safe_say = say


def configure(settings: Settings, stream: TextIO | None = None) -> None:
    """Send every log record of this process to ``stream`` (default stderr) in LOG_FORMAT at LOG_LEVEL."""
    if not valid_log_level(settings.log_level):
        raise SettingsError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {settings.log_level!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter_for(settings))
    handler.addFilter(_TaskContext())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # Python's warnings (a library's DeprecationWarning, Celery's SecurityWarning) as log lines.
    logging.captureWarnings(True)
    if settings.log_format == "json":  # a traceback nobody caught is one JSON line too
        sys.excepthook = _log_uncaught
        threading.excepthook = _log_uncaught_in_thread
    # urllib3 logs request lines at DEBUG; they carry no secret (bodies are not logged), but keep it quiet.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    # Celery logs two INFO lines per task ("Task ... received", "Task ... succeeded"); the pipeline's own
    # line per attempt (worker.observe.observer: operation, key, outcome, status, latency) says more, and a
    # parked event gets its own ERROR line.  Celery's two cost ~6% of a busy worker's CPU (py-spy, 200 ms
    # benchmark), so they are shown at LOG_LEVEL=DEBUG only.  Task errors (ERROR) always show.
    per_task = logging.NOTSET if settings.log_level == "DEBUG" else logging.WARNING
    for name in CELERY_PER_TASK_LOGGERS:
        logging.getLogger(name).setLevel(per_task)
    lean_records()


def lean_records() -> None:
    """Records without their caller, thread and process: our formatters (text and JSON) print none of
    them, and Sentry's breadcrumbs read none; the logging HOWTO's "Optimization" switches spare their
    lookup on every record — a frame walk, two thread lookups and a ``getpid`` system call, ~7 µs of an
    attempt line's ~40 µs (issue 21).  Process-wide, like the handler :func:`configure` installs."""
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
