"""Process-wide logging for wms-relay's processes: plain text, or one JSON object a line (LOG_FORMAT=json).

Only the entry points call ``configure``; libraries just use ``logging.getLogger``."""
from __future__ import annotations

import json
import logging
import sys

from worker.settings import Settings


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        try:
            body = json.loads(message) if message.startswith("{") else {"msg": message}
        except ValueError:
            body = {"msg": message}
        body = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name, **body}
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


def configure(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # urllib3 logs request lines at DEBUG; they carry no secret (bodies are not logged), but keep it quiet.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
