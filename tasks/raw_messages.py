"""The door every broker message passes before kombu or Celery reads it: :func:`screen`.

A WMS that is not written in Python pushes Celery's message layout onto a Redis list by hand
(docs/events.md), so anything may arrive there.  Left to kombu and Celery, a malformed message either
stopped the worker ("Unrecoverable error": not JSON, a JSON array, a body that is not base64 or not
``[args, kwargs, embed]``) — and was restored and stopped the next worker too — or was dropped with a log
line and nothing else (no ``headers.task``, an unknown task, a pickle content type, a 5,000-digit number,
an ``expires`` in the past), or was held by the worker for good (an ``eta`` in 2099).

So the Redis channel (``worker.broker.celery_config``) hands every popped message to :func:`screen` first:

- **Passed**: a message of one of our tasks in the documented layout — a delivery task on a destination's
  queue, or the desk's bulk job (``tasks.support_jobs``: on ``support.jobs`` only, its one argument a job
  id; nothing else is taken there).  It goes on *rebuilt on our terms*:
  a fresh delivery tag, ``delivery_info`` naming the queue it came from (so a restore after a crash puts it
  back where it was), no ``eta``/``expires``/time limits/links/chain/callbacks, ``shadow`` and ``group``
  cleared, the body's embed without links, chain or chord (a body already so is handed on as it came: no
  re-encoding on the consumer loop, issue 21).  Nothing downstream can then fail on its shape; the event
  inside is judged by its schema as usual (invalid → a dead letter naming the fields).
- **Malformed**: anything else — with one sentence saying what is wrong and the evidence (the message,
  size-capped, its base64 body decoded so that secret-looking keys can be blanked).  A task on a queue
  that is not its own is malformed too ("task X on queue Y"): ``kaching.stock.adjust`` pushed onto
  ``trademax.stock`` would run there, outside the fan-out and the flow control of its destination.
  The channel writes it
  as a dead letter with reason ``malformed_message`` (``tasks.malformed_messages``).

On ``eta``/``countdown`` and ``expires`` (wms-relay never holds a message for later: a held message is
invisible and, on Redis, redelivered and run twice): an ``eta`` or ``countdown`` still in the future →
malformed (publish the event when it is due); one already passed is dropped.  An ``expires`` already
passed → malformed (the publisher said not to run it after then; a person decides); one in the future is
dropped — once taken, the event is the ledger's and is delivered whatever the time.

Pure: no I/O; the clock is passed in.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from kombu.utils.json import loads as kombu_loads

from tasks import support_jobs
from tasks.summary import task_argument_summary
from worker.destinations.table import ROWS, TASKS, WMS_DESTINATION
from worker.store.broker_queues import PUBLISHED_AT
from worker.store.requests import fresh_id

REASON = "malformed_message"
# Every destination's (the WMS publishes trademax.*, fan-out the others) and the desk's bulk job's.
TASK_NAMES = frozenset(TASKS) | {support_jobs.TASK}
# The queues the screen judges: every destination's, and the support queue (tasks.support_jobs).
SCREENED_QUEUES = frozenset(row.queue for row in ROWS.values()) | {support_jobs.QUEUE}
# Queue -> the destination whose queue it is (a malformed message's dead letter is that destination's).
QUEUE_DESTINATIONS = {row.queue: row.destination for row in ROWS.values()}
KEPT_CHARS = 8_192  # of each piece of evidence (the raw message, the decoded body) kept in the letter
_MAX_ID = 255
NEUTRAL_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


@dataclass(frozen=True)
class Passed:
    """A message fit for Celery: the rebuilt envelope (a dict, as kombu's ``loads`` would give it)."""

    envelope: dict


@dataclass(frozen=True)
class Malformed:
    """A message no task can take: ``problem`` says why in one sentence; ``evidence`` is what the dead
    letter keeps (queue, size, the message cut to :data:`KEPT_CHARS`); ``operation``: the task's, if it
    named one of ours; ``fingerprint``: sha256 of the raw bytes (the same message twice, the same key);
    ``destination``: the one whose queue it came from (``kaching.stock`` → ka-ching), the first one for
    a queue that is no destination's."""

    problem: str
    evidence: dict
    operation: str | None = None
    fingerprint: str = ""
    destination: str = WMS_DESTINATION.name

    @property
    def key(self) -> str:
        """The dead letter's key: in brackets, so nothing takes it for an event key."""
        return f"(raw message {self.fingerprint[:12]})"


class _Refused(Exception):
    def __init__(self, problem: str, operation: str | None = None) -> None:
        super().__init__(problem)
        self.problem, self.operation = problem, operation


class DuplicateKey(ValueError):
    """A JSON object names a key twice (the last would silently win)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    found = dict(pairs)
    if len(found) < len(pairs):  # a key repeats (the common case, every key once, is one C call)
        seen: set = set()
        repeated = next(name for name, _ in pairs if name in seen or seen.add(name))
        raise DuplicateKey(f"duplicate key {repeated!r} in one JSON object")
    return found


def strict_json(text: str) -> Any:
    """``json.loads`` that refuses a key given twice in one object (:class:`DuplicateKey`) — and, as
    ``json.loads`` does, NaN-free numbers only up to 4,300 digits (ValueError).  One decoder for every
    call (``json.loads`` with hooks builds a new one each time: ~3 µs, twice per message)."""
    if isinstance(text, str) and text.startswith("\ufeff"):  # as json.loads refuses it
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    if not isinstance(text, str):
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_not_json)
    return _STRICT_DECODER.decode(text)


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_STRICT_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_not_json)


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null", dict: "an object"}.get(
        type(value), "a number")


def _json_problem(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if "digits" in str(exc):
        return "a number has more than 4300 digits"
    if exc.args and exc.args[0] == "Unsupported type":
        return "an object of only __type__ and __value__ names no type kombu knows"
    return str(exc).splitlines()[0][:200]


def _when(value: Any, name: str, now: float) -> float | None:
    """``eta``/``expires``/``countdown`` as Unix seconds (None: absent)."""
    if value is None:
        return None
    if name == "countdown":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Refused(f"headers.countdown must be a number of seconds, not {_kind(value)}")
        return now + float(value)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _Refused(f"headers.{name} must be an ISO-8601 time, not {_kind(value)}")
    if isinstance(value, (int, float)):
        return now + float(value) if name == "expires" else float(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _Refused(f"headers.{name} is not an ISO-8601 time: {value[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _id(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= _MAX_ID and value.isprintable() else None


def _body(envelope: dict, operation: str | None) -> list:
    body = envelope.get("body")
    if not isinstance(body, str):
        raise _Refused(f"body must be base64 text, not {_kind(body)}", operation)
    try:
        decoded = base64.b64decode(body, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise _Refused("body is not base64 of UTF-8 text", operation) from None
    try:
        strict = strict_json(decoded)
        if _kombu_may_differ(decoded):
            kombu_loads(decoded)  # only asked whether kombu can decode it: Celery will read the same text
    except (ValueError, RecursionError) as exc:
        raise _Refused(f"body is not JSON: {_json_problem(exc)}", operation) from None
    if not (isinstance(strict, list) and len(strict) == 3):
        raise _Refused("body must be a JSON array [args, kwargs, embed] (Celery protocol 2), "
                       f"not {_kind(strict) if not isinstance(strict, list) else f'{len(strict)} items'}",
                       operation)
    args, kwargs, embed = strict
    if not (isinstance(args, list) and isinstance(kwargs, dict) and isinstance(embed, (dict, type(None)))):
        raise _Refused("body must be [args (an array), kwargs (an object), embed (an object or null)]",
                       operation)
    # The body as it came, where it is already on our terms (no links, chain or chord: what our publishers
    # and Celery's plain apply_async write): kombu then decodes the same values from it as from a rebuilt
    # one, and the JSON encoding and base64 of a rebuilt body are spared (issue 21).
    return [args, kwargs, body if embed == NEUTRAL_EMBED else None]


def _kombu_may_differ(text: str) -> bool:
    """Whether kombu's decoder could refuse JSON text that :func:`strict_json` took: only through an
    object of exactly ``__type__`` and ``__value__`` (its typed values: an unknown type or a bad value
    raises).  Without ``__value__`` in the text — nor a ``\\u`` escape, which could spell it — there is
    none, and the second decoding (about a sixth of the door's time, issue 21) is spared."""
    return "__value__" in text or "\\u" in text


def _check(envelope: Any, queue: str, now: float) -> tuple[str, list]:
    """(task name, [args, kwargs, the base64 body to keep or None]) of a message fit to pass; raises
    _Refused."""
    if not isinstance(envelope, dict):
        raise _Refused(f"not a Celery message: the JSON is {_kind(envelope)}, not an object")
    headers, properties = envelope.get("headers"), envelope.get("properties")
    if not isinstance(headers, dict) or not isinstance(properties, dict):
        raise _Refused("not a Celery message: 'headers' and 'properties' must be JSON objects")
    task = headers.get("task")
    if task is None:
        raise _Refused("headers.task is missing: which task should run it?")
    if not isinstance(task, str) or task not in TASK_NAMES:
        shown = task[:80] if isinstance(task, str) else f"<{_kind(task)}>"
        raise _Refused(f"unknown task name {shown!r}: the WMS's tasks are trademax.<operation> "
                       "(docs/events.md); the relay's own are <destination>.<operation>")
    if task == support_jobs.TASK:
        if queue != support_jobs.QUEUE:
            raise _Refused(f"task {task} on queue {queue}: the desk's bulk jobs travel on "
                           f"{support_jobs.QUEUE} only")
        operation = None
    else:
        operation = TASKS[task].name
        if TASKS[task].queue != queue:
            raise _Refused(f"task {task} on queue {queue}: it runs on {TASKS[task].queue} only (a task on a "
                           "queue not its own would bypass its destination's flow control and the fan-out)",
                           operation)
    for name, wanted in (("content-type", "application/json"), ("content-encoding", "utf-8")):
        if envelope.get(name) != wanted:
            raise _Refused(f"{name} must be {wanted!r}, not {str(envelope.get(name))[:60]!r}", operation)
    if properties.get("body_encoding") != "base64":
        raise _Refused("properties.body_encoding must be 'base64'", operation)
    if _id(headers.get("id")) is None:
        raise _Refused("headers.id (the task id) must be printable text of 1-255 characters", operation)
    try:
        for name in ("eta", "countdown"):
            due = _when(headers.get(name), name, now)
            if due is not None and due > now + 1:
                raise _Refused(f"headers.{name} asks to run it later: wms-relay does not hold messages "
                               "for later (publish the event when it is due)", operation)
        expires = _when(headers.get("expires"), "expires", now)
    except _Refused as exc:
        raise _Refused(exc.problem, operation) from None
    if expires is not None and expires <= now:
        raise _Refused("headers.expires has passed: the publisher said not to run it after then", operation)
    args_kwargs = _body(envelope, operation)
    if task == support_jobs.TASK and (problem := support_jobs.argument_problem(*args_kwargs[:2])) is not None:
        raise _Refused(problem)
    return task, args_kwargs


def _rebuilt(envelope: dict, task: str, args_kwargs: list, queue: str) -> dict:
    headers = envelope["headers"]
    task_id = headers["id"]
    origin = headers.get("origin")
    return _envelope(task, args_kwargs, queue, task_id=task_id,
                     root_id=_id(headers.get("root_id")) or task_id,
                     parent_id=_id(headers.get("parent_id")),
                     origin=origin[:120] if isinstance(origin, str) and origin.isprintable() else "unknown")


def task_envelope(task: str, event: Any, queue: str, *, origin: str = "wms-relay",
                  published_at: float | None = None) -> str:
    """A new message of ``task`` with the one argument ``event``, on ``queue``, as kombu's Redis transport
    stores it (JSON text: what a WMS pushes by hand, docs/events.md) — in the layout :func:`screen` passes,
    so the door can put it on the queue's list itself, in the same store call as its ledger record
    (``worker.delivery.admission``) — with the secret-free argument summary our publishers give Flower and,
    given, its publish time (``worker.store.broker_queues.PUBLISHED_AT``)."""
    task_id = str(uuid.uuid4())
    envelope = _envelope(task, [[event], {}], queue, task_id=task_id, root_id=task_id, parent_id=None,
                         origin=origin)
    envelope["headers"]["argsrepr"] = task_argument_summary(task, [event], {})
    if published_at is not None:
        envelope["headers"][PUBLISHED_AT] = round(published_at, 3)
    return json.dumps(envelope)


def _envelope(task: str, args_kwargs: list, queue: str, *, task_id: str, root_id: str, parent_id: str | None,
              origin: str) -> dict:
    """``args_kwargs``: [args, kwargs], or [args, kwargs, body] with the base64 body to carry as it is (None:
    built from args and kwargs)."""
    kept = args_kwargs[2] if len(args_kwargs) > 2 else None
    if kept is None:
        body = json.dumps([*args_kwargs[:2], NEUTRAL_EMBED])  # ASCII: a lone surrogate stays a JSON escape
        kept = base64.b64encode(body.encode("utf-8")).decode("ascii")
    return {
        "body": kept,
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py", "task": task, "id": task_id, "root_id": root_id, "parent_id": parent_id,
            "group": None, "shadow": None, "eta": None, "expires": None, "retries": 0,
            "timelimit": [None, None], "argsrepr": "", "kwargsrepr": "{}", "origin": origin,
        },
        "properties": {
            "correlation_id": task_id, "reply_to": "", "delivery_mode": 2, "priority": 0,
            "body_encoding": "base64", "delivery_tag": fresh_id(),  # no system call per message
            "delivery_info": {"exchange": "", "routing_key": queue},
        },
    }


def _cut(text: str) -> str:
    if len(text) <= KEPT_CHARS:
        return text
    return text[:KEPT_CHARS] + f"… ({len(text) - KEPT_CHARS} more characters)"


def evidence(raw: bytes, queue: str) -> dict:
    """What a dead letter keeps of a raw message: its queue, size and content cut to KEPT_CHARS.  A JSON
    envelope of modest size is kept as JSON (so the store blanks secret-looking keys) with its base64 body
    decoded beside it (base64 would hide a secret from that); anything else as text."""
    kept: dict[str, Any] = {"queue": queue, "size_bytes": len(raw)}
    text = raw.decode("utf-8", "replace")
    envelope = None
    if len(text) <= 4 * KEPT_CHARS:
        try:
            envelope = json.loads(text)
        except (ValueError, RecursionError):
            envelope = None
    if not isinstance(envelope, dict):
        kept["raw_text"] = _cut(text)
        return kept
    body = envelope.get("body")
    decoded = None
    if isinstance(body, str):
        try:
            decoded = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            decoded = None
    if decoded is not None:
        envelope = {**envelope, "body": f"(base64, {len(body)} characters: decoded in body_decoded)"}
        try:
            kept["body_decoded"] = json.loads(decoded)
        except (ValueError, RecursionError):
            kept["body_decoded"] = _cut(decoded)
    kept["envelope"] = envelope
    return kept


def screen(raw: bytes | str, queue: str, *, now: float) -> Passed | Malformed:
    """Judge one raw message popped from ``queue`` (see the module docstring).  Never raises."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    operation = None
    try:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Refused("not UTF-8 text") from None
        try:
            envelope = strict_json(text)
        except (ValueError, RecursionError) as exc:
            raise _Refused(f"not JSON: {_json_problem(exc)}") from None
        task, args_kwargs = _check(envelope, queue, now)
        return Passed(_rebuilt(envelope, task, args_kwargs, queue))
    except _Refused as refused:
        problem, operation = refused.problem, refused.operation
    except Exception as exc:  # noqa: BLE001 — the door never fails: whatever slipped through is malformed
        problem = f"could not be read ({type(exc).__name__})"
    try:
        kept = evidence(raw, queue)
    except Exception:  # noqa: BLE001
        kept = {"queue": queue, "size_bytes": len(raw), "raw_text": _cut(raw.decode("utf-8", "replace"))}
    # The fingerprint only for a message turned away (its dead letter's key): a passing one needs none.
    return Malformed(problem=problem, evidence=kept, operation=operation,
                     fingerprint=hashlib.sha256(raw).hexdigest(),
                     destination=QUEUE_DESTINATIONS.get(queue, WMS_DESTINATION.name))
