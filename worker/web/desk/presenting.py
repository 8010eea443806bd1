"""How the desk's templates show things: ages, times, numbers, JSON, and page links.  (Jinja escapes
every value; nothing here marks text safe.)"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from flask import Flask, g, request, url_for

PER_PAGE = 50


def ago(seconds: float | None) -> str:
    """``42 s``, ``5 min``, ``3 h 12 min``, ``2 d 4 h``; ``-`` for None (as the CLI says it)."""
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{minutes} min"
    if seconds < 86400:
        return f"{hours} h {minutes % 60} min" if minutes % 60 else f"{hours} h"
    return f"{days} d {hours % 24} h" if hours % 24 else f"{days} d"


def utc(moment: float | str | None) -> str:
    """A time as people read it: ``2024-05-01 07:53:20 UTC``."""
    if moment is None or moment == "":
        return "-"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


@dataclass(frozen=True)
class Pager:
    """Page ``page`` (from 1) of ``total`` items, ``per_page`` a page; links keep the other query args."""

    page: int
    total: int | None
    per_page: int = PER_PAGE

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def pages(self) -> int | None:
        return None if self.total is None else max(1, math.ceil(self.total / self.per_page))

    def link(self, page: int) -> str:
        args = request.args.to_dict()
        args["page"] = str(page)
        return url_for(request.endpoint, **(request.view_args or {}), **args)

    @property
    def previous(self) -> str | None:
        return self.link(self.page - 1) if self.page > 1 else None

    @property
    def next(self) -> str | None:
        return self.link(self.page + 1) if self.pages is None or self.page < self.pages else None


def page_number() -> int:
    try:
        return max(1, min(int(request.args.get("page", "1")), 10_000_000))
    except ValueError:
        return 1


def install(app: Flask) -> None:
    app.jinja_env.filters.update(ago=ago, utc=utc, pretty_json=pretty_json, number=number)
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    @app.context_processor
    def everywhere() -> dict:
        return {"user": g.get("user")}
