"""How the support commands talk to people: ages, tables, ``--json``, progress lines and summaries.

The readers are support staff, not developers: every command says in plain words what it did and what to
do next.  Scripts use ``--json`` instead (one JSON document on stdout, nothing else)."""
from __future__ import annotations

import functools
import logging
import math
import os
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Sequence

from worker.encoding import (  # noqa: F401 — age, shorten: the commands say durations, cut cells
    age, json_text, lines, one_line, shorten)
from worker.support.actions import DONE, FAILED, SKIPPED, ActionReport, tally


class Refused(ValueError):
    """A person's input the command cannot use (a bad --since): said in one sentence, exit code 2."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def plain(doc: str | None) -> str:
    """A module docstring made fit for ``--help``: reST's double backticks and roles become plain text."""
    return _ROLE.sub(r"\1", doc or "").replace("``", "")


def described(doc: str | None) -> dict:
    """The ``add_parser`` keywords that show a module docstring as a command's ``--help`` text."""
    import argparse

    return {"description": plain(doc), "formatter_class": argparse.RawDescriptionHelpFormatter}


# What a duration or a date may be (issue 23.6): a person's typo (99999999999999999999d, year 0001) is
# refused here with a sentence, never carried on into the store as a moment no calendar can print.
LONGEST_DURATION_SECONDS = 100 * 365 * 86400
EARLIEST_MOMENT = datetime(1970, 1, 1, tzinfo=timezone.utc).timestamp()
LATEST_MOMENT = datetime(2100, 1, 1, tzinfo=timezone.utc).timestamp()


def parse_since(text: str, now: float, option: str = "--since") -> float:
    """``--since`` (or ``option``: ``--older-than``): a duration back from now (``30m``, ``2h``, ``3d``) or
    a date/time (``2024-05-01``, ``2024-05-01T08:00``, UTC unless it says otherwise) → Unix seconds."""
    return _moment(text, now, -1, option, "a date like 2024-05-01")


def parse_until(text: str, now: float, *, longest: float | None = None) -> float:
    """``--until``: a duration from now (``30m``, ``2h``) or a date/time (``2024-05-01T22:00``, UTC unless
    it says otherwise) → Unix seconds, which must lie ahead — and at most ``longest`` seconds ahead."""
    moment = _moment(text, now, 1, "--until", "a time like 2024-05-01T22:00")
    if moment <= now:
        raise Refused(f"--until {text!r} has passed already")
    if longest is not None and moment - now > longest:
        raise Refused(f"--until {text!r} is more than {age(longest)} ahead: say a nearer time, or leave "
                      "--until out (then it lasts until someone ends it)")
    return moment


def _moment(text: str, now: float, direction: int, option: str, example: str) -> float:
    match = _DURATION.match(text)
    if match:
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        if not math.isfinite(seconds) or seconds > LONGEST_DURATION_SECONDS:
            raise Refused(f"{option} {text!r} is longer than 100 years: "
                          f"use a duration like 30m, 2h, 3d or {example}")
        return now + direction * seconds
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Refused(f"{option} {text!r}: use a duration like 30m, 2h, 3d or {example}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    moment = when.timestamp()
    if not EARLIEST_MOMENT <= moment < LATEST_MOMENT:
        raise Refused(f"{option} {text!r} lies outside 1970-2099: use a duration like 30m, 2h, 3d or "
                      f"{example}")
    return moment


def default_actor() -> str:
    """The person acting: the OS account running the command (``--actor`` overrides)."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        import getpass

        try:
            return getpass.getuser()
        except Exception:  # noqa: BLE001 — no account name at all: still audit something
            return f"uid-{os.getuid()}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
          widths: dict[int, int] | None = None) -> str:
    """A plain text table: left-aligned columns, long cells shortened (``widths``: column → max width)."""
    widths = widths or {}
    cells = [[shorten(cell, widths.get(i, 60)) for i, cell in enumerate(row)] for row in rows]
    sizes = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(sizes[i]) for i, h in enumerate(headers)).rstrip()]
    lines += ["  ".join(c.ljust(sizes[i]) for i, c in enumerate(row)).rstrip() for row in cells]
    return "\n".join(lines)


def print_json(value: Any) -> None:
    """``--json``: one document, UTF-8 as it is, bidirectional controls escaped (:func:`json_text`)."""
    print(json_text(value, indent=2, default=str))


def print_listing(store: str, name: str, items: list, page: "Page | None" = None) -> None:
    """A listing's ``--json`` (``dead list``, ``retries list``, ``uncertain list``, ``audit``, ``pauses``):
    one object — ``store`` (which store was read, as every command's JSON says it), ``count`` (the items
    in it), the items under ``name``, and for a paged listing ``total`` (every match, null if not
    counted), ``limit`` (null with --all) and ``more`` (whether matches were left out)."""
    print_json({"store": store, "count": len(items), name: items, **(page.to_json() if page else {})})


def say(text: str = "") -> None:
    """Print for a person: control characters escaped (keys are printed through :func:`one_line`, so a
    newline in one cannot split its line either)."""
    print(lines(text))


def complain(text: str) -> None:
    """A problem, on stderr; in a process logging JSON (LOG_FORMAT=json, a web door), an ERROR line."""
    from worker.observe.logs import json_mode

    if json_mode():
        logging.getLogger("wms_relay").error("%s", text)
    else:
        print(f"wms-relay: {lines(text)}", file=sys.stderr)


def progress_line(index: int, total: int, report: ActionReport) -> str:
    about = f" {report.operation} {one_line(report.key)}" if report.operation and report.target != \
        f"{report.operation}:{report.key}" else ""
    mark = {DONE: "ok", SKIPPED: "skipped", FAILED: "FAILED"}[report.status]
    line = f"[{index}/{total}] {one_line(report.target)}{about}: {mark} — {one_line(report.message)}"
    if report.next_step and report.status != DONE:
        line += f"\n        next: {report.next_step}"
    return line


def say_store(store: str) -> None:
    """The first line of every support command's text output: which store it reads."""
    say(f"Store: {store}")


def run_actions(targets: Sequence[str], act: Callable[[str], ActionReport], *, verb: str,
                as_json: bool, store: str, dry_run: bool = False, nothing: str = "Nothing to do.") -> int:
    """Run ``act`` on each target with a progress line each, then a summary.  Exit code 1 if any failed.
    No targets: ``nothing`` is said (the JSON summary keeps its keys, all 0) and the exit code is 0.
    ``store`` (which store was acted on) heads the text and is carried in the JSON."""
    if not as_json:
        say_store(store)
    if not targets and not as_json:
        say(nothing)
        return 0
    reports = []
    for index, target in enumerate(targets, 1):
        report = act(target)
        reports.append(report)
        if not as_json:
            say(progress_line(index, len(targets), report))
    counts = tally(reports)
    if as_json:
        print_json({"summary": {verb if not dry_run else f"would be {verb}": counts[DONE],
                                "skipped": counts[SKIPPED], "failed": counts[FAILED]},
                    "dry_run": dry_run, "store": store, "results": [o.to_dict() for o in reports]})
    else:
        done = f"{counts[DONE]} would be {verb}" if dry_run else f"{counts[DONE]} {verb}"
        say(f"Summary: {done}, {counts[SKIPPED]} skipped, {counts[FAILED]} failed."
            + (" Dry run: nothing was changed." if dry_run else ""))
        if len(reports) == 1 and reports[0].status == DONE and reports[0].next_step and not dry_run:
            say(f"Follow it with: {reports[0].next_step}")
    return 1 if counts[FAILED] else 0


def store_trouble(exc: BaseException) -> str | None:
    """The sentence for "Redis is not there" (or "no store to read here"), or None for any other error."""
    import redis

    from worker.errors import StoreNotFound
    from worker.store.embedded import EmbeddedRedisError

    if isinstance(exc, (StoreNotFound, EmbeddedRedisError)):
        return str(exc)
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return (f"cannot reach Redis ({type(exc).__name__}: {exc}). Is it running, and is REDIS_URL right? "
                "`wms-relay check` tests the settings.")
    return None


def friendly_errors(handler: Callable[[Any], int]) -> Callable[[Any], int]:
    """Turn "Redis is not there" (or "no store to read here") into one plain sentence and exit code 3
    instead of a traceback (:func:`store_trouble`); a :class:`Refused` input into its sentence and 2."""

    @functools.wraps(handler)
    def run(args: Any) -> int:
        try:
            return handler(args)
        except Refused as exc:
            complain(str(exc))
            return 2
        except Exception as exc:
            said = store_trouble(exc)
            if said is None:
                raise
            complain(said)
            return 3

    return run


# A listing shows a page, not a wall (issue 21: 100,000 dead letters): this many unless --limit or --all.
DEFAULT_PAGE = 50


def page_size(value: str, *, has_all: bool = False) -> int:
    """``--limit N``: a whole number of 1 or more, else :class:`Refused` naming the problem (exit 2);
    ``has_all``: the listing has ``--all`` (the refusal says so)."""
    try:
        number = int(value.strip())
    except ValueError:
        raise Refused(f"--limit must be a whole number of 1 or more, got {value!r}") from None
    if number < 1:
        hint = " (`--all` shows every one)" if has_all else ""
        raise Refused(f"--limit must be 1 or more, got {value!r}{hint}")
    return number


def add_page_options(p, what: str = "entries", order: str = "the newest") -> None:
    """``--limit N`` (default :data:`DEFAULT_PAGE`) or ``--all``: how much of a long listing to show.  The
    number is checked by :func:`page_limit` (inside the command: one sentence and exit 2, like --since)."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--limit", default=None, metavar="N",
                       help=f"show at most N {what} ({order}; default {DEFAULT_PAGE})")
    group.add_argument("--all", action="store_true", dest="show_all",
                       help=f"show every one of the {what} (can be long)")


def page_limit(args: Any) -> int | None:
    """How many a listing shows: ``--limit N``, None with ``--all``, else :data:`DEFAULT_PAGE`."""
    if getattr(args, "show_all", False):
        return None
    return page_size(args.limit, has_all=True) if args.limit is not None else DEFAULT_PAGE


def add_list_filters(p, what: str = "entries", order: str = "the first") -> None:
    """``--operation``, ``--grep`` and the page's ``--limit``/``--all`` of a listing."""
    p.add_argument("--operation", help="only this operation, e.g. stock.adjust")
    p.add_argument("--grep", help="only entries whose id, event or error contain this text (any case)")
    add_page_options(p, what, order)


def filtered(items: list, args: Any, *, operation: Callable[[Any], str], text: Callable[[Any], str]) -> list:
    """``items`` kept by ``--operation`` and ``--grep`` (over ``text(item)``); not cut (:func:`paged`)."""
    return [item for item in items if (not args.operation or operation(item) == args.operation)
            and (not args.grep or args.grep.lower() in text(item).lower())]


@dataclass(frozen=True)
class Page:
    """What a listing shows: ``items`` (at most ``limit``: None is every one), of ``total`` matches (None:
    not counted, then ``more`` says whether others match)."""

    items: list
    total: int | None
    limit: int | None
    more: bool

    @property
    def left(self) -> int | None:
        return None if self.total is None else max(0, self.total - len(self.items))

    def to_json(self) -> dict:
        """The page's part of a listing's ``--json`` (beside ``store``, ``count`` and the items)."""
        return {"total": self.total, "limit": self.limit, "more": self.more}


def paged(items: list, args: Any) -> Page:
    """A page of a listing read whole (``--limit``/``--all``)."""
    limit = page_limit(args)
    shown = items if limit is None else items[:limit]
    return Page(shown, len(items), limit, len(shown) < len(items))


def more_line(page: Page) -> str:
    """What a cut listing says of the rest: how many more match and how to see them ('' when none)."""
    if not page.more:
        return ""
    head = f"{page.left:,} more not shown" if page.left is not None else "More match, not shown"
    return f"{head}: add `--limit N` or `--all` to see them, or narrow with the filters (`--help`)."


def add_destination_option(parser, what: str = "only this destination's") -> None:
    """``--destination NAME``: one of the destinations (trademax, kaching, stocktrim, stock2shop)."""
    from worker.destinations.table import DESTINATIONS

    parser.add_argument("--destination", choices=tuple(DESTINATIONS), default=None,
                        help=f"{what} ({', '.join(DESTINATIONS)})")


def destination_title(name: str) -> str:
    """How people write a destination: ``ka-ching``."""
    from worker.destinations.table import DESTINATIONS

    found = DESTINATIONS.get(name)
    return found.title if found is not None else name
