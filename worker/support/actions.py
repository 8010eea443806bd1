"""What support staff do to parked deliveries: retry or discard a dead letter, resolve an uncertain
delivery, run a scheduled retry now.  Each acts on one destination's delivery of an event (a letter names
its destination; an uncertain delivery is named by its destination and ``operation:key``), never on the
event's deliveries to the other destinations.  The ``wms-relay dead|uncertain|retries`` commands and the
tests call these.

Each action is atomic where two people could race, and audited (who, when, why: the dead letter keeps
``closed_by``/``close_reason``, the ledger history keeps ``actor`` and ``reason``; ``wms-relay event``
shows both):

- retry a dead letter: take it (``DeadLetters.take``: off the open list in one Lua step, so of two people
  retrying one letter exactly one gets it), reopen the ledger record from ``dead`` (compare-and-set), then
  publish the task again.  An invalid event never entered the ledger: it is validated again first and, if
  still invalid, stays a dead letter untouched.  A conflict (same key, other payload) is never retried.
- discard a dead letter: take it as ``discarded``; the ledger record (if any) moves ``dead → discarded``.
- resolve an uncertain delivery: ``uncertain → delivered`` (a person saw it at the destination) or
  reopened and published again (a person saw it is not there) — either is one compare-and-set: one
  person wins.
- run a scheduled retry now, or discard it (``retrying|waiting → discarded`` in that destination's
  ledger, one compare-and-set, then off the schedule; a copy already on its way finds it settled).

Every action but a dry run is also written to the audit log (``worker.store.audit_log``: who, what, why,
how it ended, and whether from the CLI or the desk) when the tools have one; its target names the
destination's delivery (``kaching/stock.adjust:E-1``) for any destination but the first.

The entry goes in **with** the action where the action is one store change: retrying or discarding a dead
letter appends it in the letter's own close script (``DeadLetters.take``/``discard``), so no process dying
can leave a letter taken by a person and that person's action missing from the log.  (A retry whose later
steps fail after the take — the ledger moved meanwhile, or Redis went away — adds a second entry saying so.)
The other actions change a destination's ledger or the retry schedule, whose scripts the delivery path
shares; their entry is written after the action, and a bulk job's item (``job_item``: see
``worker.support.bulk_jobs``) hands it to the job, which appends it with the item's progress record in one
step.  A job taken over after its worker died acts on the item that worker was on again: a letter the dead
worker closed (``closed_in`` names the job's item) is reported done — its entry is in already — never
skipped, never logged twice.

Every action returns an :class:`ActionReport` — done, skipped (nothing to do, or not allowed: the message
says why) or failed — with one plain sentence and the next step, and never raises for a person's mistake
(an empty reason is the caller's to refuse: ValueError).
"""
from __future__ import annotations

import functools
import inspect
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Iterable

from tasks.events import Delivery, InvalidEvent, validate_event
from tasks.raw_messages import REASON as MALFORMED
from worker.destinations.table import DESTINATIONS, ROWS, WMS_DESTINATION, split_delivery_ref
from worker.store.dead_letters import DeadLetters
from worker.encoding import iso_time
from worker.store.ledger import Ledger, fingerprint
from worker.store.records import DeadLetter
from worker.store.retry_schedule import RetrySchedule
from worker.scheduling.stranded import message_of

DONE, SKIPPED, FAILED = "done", "skipped", "failed"
# Dead letters whose event has no ledger record of its own: rejected at the door, or someone else's key.
_INVALID, _CONFLICT = "invalid", "conflict"
_NOT_QUEUED = ("is 'accepted' in the ledger but was not queued ({}); the scheduler's stranded-event sweep "
               "sends it once Redis is back (STRANDED_AFTER_SECONDS)")


@dataclass
class SupportTools:
    """The stores a support action touches and how it publishes a task (``celery_publisher(app)``).
    ``ledger`` is the first destination's; :meth:`ledger_of` gives any destination's."""

    ledger: Ledger
    dead_letters: DeadLetters
    schedule: RetrySchedule
    publish: Callable[[dict], None]
    dispatch_waiters: Any = None  # worker.store.dispatch_waiters.DispatchWaiters, when available
    clock: Callable[[], float] = field(default=time.time)
    audit: Any = None  # worker.store.audit_log.AuditLog: every action is recorded there too
    via: str = "cli"  # where people act from: cli or desk (kept in the audit log)

    def ledger_of(self, destination: str) -> Ledger:
        return self.ledger.sibling(DESTINATIONS[destination].namespace)


@dataclass(frozen=True)
class ActionReport:
    """What one action did to one target (a dead letter id or a delivery ref)."""

    target: str
    status: str  # done | skipped | failed
    message: str
    next_step: str = ""
    operation: str | None = None
    key: str | None = None
    dry_run: bool = False
    destination: str | None = None
    # Its audit entry went in with the action's own store change (nothing more to write).
    audited: bool = field(default=False, compare=False)
    # A bulk job item's entry, still to be written: the job appends it with the item's progress.
    unwritten: Any = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        return {name: value for name, value in asdict(self).items() if name not in ("audited", "unwritten")}


def _audited(action: str | Callable[[dict], str]):
    """Record the report of a person's action in the tools' audit log (dry runs are not actions): unless
    the action wrote it with its own store change; for a bulk job's item (``job_item``, passed on to an
    action that takes it) handed back as ``report.unwritten`` for the job to append with its progress."""

    def wrap(act: Callable[..., ActionReport]) -> Callable[..., ActionReport]:
        takes_item = "job_item" in inspect.signature(act).parameters

        @functools.wraps(act)
        def audited(tools: SupportTools, *args: Any, job_item: str = "", **kwargs: Any) -> ActionReport:
            report = act(tools, *args, **({"job_item": job_item} if takes_item else {}), **kwargs)
            if tools.audit is None or report.dry_run or report.audited:
                return report
            try:
                name = action if isinstance(action, str) else action(kwargs)
                entry = tools.audit.pending(actor=kwargs["actor"], action=name, target=report.target,
                                            operation=report.operation, key=report.key,
                                            reason=kwargs.get("reason") or "", status=report.status,
                                            message=report.message, via=tools.via)
                if job_item:
                    return replace(report, unwritten=entry)
                tools.audit.append(entry)
            except Exception:  # noqa: BLE001 — the action is done; say so rather than fail it now
                logging.getLogger("wms_relay.audit").exception("could not write the audit entry")
            return report

        return audited

    return wrap


def _with_close(tools: SupportTools, action: str, letter: DeadLetter, actor: str, reason: str,
                message: str):
    """The audit entry a letter's close appends in its own script (None: the tools keep no audit log)."""
    if tools.audit is None:
        return None
    return tools.audit.pending(actor=actor, action=action, target=letter.letter_id,
                               operation=letter.operation, key=letter.key, reason=reason, status=DONE,
                               message=message, via=tools.via)


def _closed_by_this_item(tools: SupportTools, letter: DeadLetter, job_item: str) -> bool:
    """The letter was closed by this very bulk job item — by a worker that died before recording it."""
    return bool(job_item) and tools.dead_letters.closed_in(letter.letter_id) == job_item


def tally(reports: Iterable[ActionReport]) -> dict[str, int]:
    counts = {DONE: 0, SKIPPED: 0, FAILED: 0}
    for report in reports:
        counts[report.status] += 1
    return counts


def find_letter(tools: SupportTools, ident: str, destination: str | None = None) -> DeadLetter | None:
    """A dead letter by id (``dl-3``) or by delivery (``OPERATION:KEY`` with ``destination``, or
    ``DESTINATION/OPERATION:KEY``: its newest letter)."""
    found = split_delivery_ref(ident)
    if found is not None:
        named, operation, key = found
        if destination is not None and "/" not in ident.partition(":")[0]:
            named = DESTINATIONS.get(destination, named)
        return tools.dead_letters.latest_for(operation, key, named.name)
    return tools.dead_letters.get(ident)


def follow(operation: str, key: str) -> str:
    """The command that shows an event's story — every destination's delivery of it (none for an event
    without a key)."""
    return "" if key.startswith("(") else f"wms-relay event {operation} {key}"


def _queue(tools: SupportTools, delivery: Delivery) -> str:
    """Publish the task; if the broker refuses, leave it in the durable retry schedule, due now (the
    scheduler publishes it).  Raises only when both fail."""
    message = delivery.task_message()
    try:
        tools.publish(message)
        return "queued for delivery"
    except Exception as exc:  # noqa: BLE001 — any broker failure: fall back to the durable schedule
        tools.schedule.schedule(delivery.ref, message, tools.clock())
        return f"handed to the scheduler (publishing failed: {type(exc).__name__})"


def _closed_note(letter: DeadLetter | None) -> str:
    if letter is None:
        return "it is gone"
    who = f" by {letter.closed_by}" if letter.closed_by else ""
    when = f" at {iso_time(letter.closed_at)}" if letter.closed_at else ""
    why = f" ({letter.close_reason})" if letter.close_reason else ""
    return f"already {letter.status}{who}{when}{why}"


# -- retry a dead letter ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Plan:
    event: Delivery | None = None
    in_ledger: bool = True
    refusal: str = ""
    next_step: str = ""


def _plan_retry(tools: SupportTools, letter: DeadLetter) -> _Plan:
    """Decide, without changing anything, whether and how ``letter`` can be retried."""
    discard = f'wms-relay dead discard {letter.letter_id} --reason "..."'
    taken_key = (f"cannot be retried: key {letter.key} already belongs to a different {letter.operation} "
                 "event (same key, other content)")
    if letter.reason == _CONFLICT:
        return _Plan(refusal=taken_key, next_step=f"have the WMS send it with a new key, then: {discard}")
    if letter.reason == MALFORMED:
        return _Plan(refusal="cannot be retried: it is a malformed raw message, not an event wms-relay can "
                             f"send ({letter.detail or 'see dead show'}); nothing in it was validated or "
                             "recorded",
                     next_step=f"fix the publisher and have the WMS send the event again, then: {discard}")
    try:
        validated = validate_event(letter.operation, letter.event)
        event = Delivery(ROWS[letter.destination, letter.operation], validated)
    except InvalidEvent as exc:
        return _Plan(refusal=f"still invalid, kept as a dead letter: {exc.summary}",
                     next_step=f"fix the event in the WMS and send it again, then: {discard}")
    except KeyError:
        return _Plan(refusal=f"{letter.destination} takes no {letter.operation} events (any more)",
                     next_step=discard)
    record = tools.ledger_of(event.destination).get(event.operation, event.key)
    look = f"{follow(event.operation, event.key)}; then: {discard}"
    if record is not None and not record.same_fingerprint(fingerprint(event.fields)):
        return _Plan(refusal=taken_key, next_step=discard)
    if record is None:  # rejected at the door (now valid: e.g. after a schema fix), or never recorded
        return _Plan(event=event, in_ledger=False)
    if record.state != "dead":
        return _Plan(refusal=f"nothing to retry: the event is {record.state} in the ledger, not dead",
                     next_step=look)
    if (letter.reason == "dependency_timeout" and event.row.needs_dispatch_id
            and tools.dispatch_waiters is not None
            and tools.dispatch_waiters.dispatch_id_for(event.fields["transaction_id"]) is None
            # (a create delivered without its id: the retried event waits for a person, without a limit)
            and not tools.dispatch_waiters.id_unknown(event.fields["transaction_id"])):
        txid = event.fields["transaction_id"]
        return _Plan(refusal=f"not retried: its dispatch.create (transaction_id {txid}) is still not "
                             "delivered, so it would wait and fail again",
                     next_step=f"wms-relay event dispatch.create {txid} (deliver or retry that first), "
                               f"then: wms-relay dead retry {letter.letter_id}")
    return _Plan(event=event)


@_audited("retry")
def retry_letter(tools: SupportTools, ident: str, *, actor: str, reason: str = "",
                 dry_run: bool = False, destination: str | None = None, job_item: str = "") -> ActionReport:
    """Retry one dead letter (id, or a delivery: ``OPERATION:KEY`` of ``destination``): the module
    docstring says how.  Only that letter's destination is sent to again."""
    letter = find_letter(tools, ident, destination)
    if letter is None:
        return ActionReport(ident, FAILED, "no such dead letter", "wms-relay dead list")

    def report(status: str, message: str, next_step: str = "", audited: bool = False) -> ActionReport:
        return ActionReport(letter.letter_id, status, message, next_step, letter.operation, letter.key,
                            dry_run, letter.destination, audited)

    taken = False  # by this job item, whose worker died before the ledger heard of it: go on from there
    if letter.status != "open":
        if letter.status != "retried" or not _closed_by_this_item(tools, letter, job_item):
            return report(SKIPPED, _closed_note(letter), follow(letter.operation, letter.key))
        taken = _stopped_after_the_take(tools, letter)
    earlier = report(DONE, "retried by this job before its worker stopped (its audit entry is in)",
                     follow(letter.operation, letter.key), audited=True)
    if letter.status != "open" and not taken:
        return earlier
    plan = _plan_retry(tools, letter)
    if plan.event is None:
        return earlier if taken else report(SKIPPED, plan.refusal, plan.next_step)
    event = plan.event
    if dry_run:
        return report(DONE, "would be retried (dry run: nothing changed)")
    why = reason or "retried by a person"
    entry = None if taken else _with_close(tools, "retry", letter, actor, reason,
                                           "retried: taken off the dead letters to be sent again")
    if not taken and tools.dead_letters.take(letter.letter_id, actor=actor, reason=why, audit=entry,
                                             job_item=job_item) is None:
        now = tools.dead_letters.get(letter.letter_id)
        return report(SKIPPED, f"someone else acted first: {_closed_note(now)}",
                      follow(event.operation, event.key))
    history_reason = f"dead letter {letter.letter_id} retried: {why}"
    ledger = tools.ledger_of(event.destination)
    if plan.in_ledger:
        if not ledger.reopen(event.operation, event.key, actor=actor, reason=history_reason,
                             from_states=("dead",)):
            record = ledger.get(event.operation, event.key)
            state = record.state if record else "gone"
            return report(FAILED, f"the letter was taken but the event is {state} in the ledger, not "
                          "dead, so nothing was queued", follow(event.operation, event.key))
    else:
        if ledger.accept(event).conflict:
            return report(FAILED, "the letter was taken but its key now belongs to a different event; "
                          "nothing was queued", follow(event.operation, event.key))
        # Record who let it in, as a reopen records who retried it.
        ledger.transition(event.operation, event.key, "accepted", actor=actor, reason=history_reason,
                          expected_states=("accepted",))
    try:
        how = _queue(tools, event)
    except Exception as exc:  # noqa: BLE001 — Redis is gone: say exactly where the event stands
        return report(FAILED, "it " + _NOT_QUEUED.format(f"{type(exc).__name__}: {exc}"), "wms-relay check")
    return report(DONE, f"retried: {how}", follow(event.operation, event.key),
                  audited=taken or entry is not None)


def _stopped_after_the_take(tools: SupportTools, letter: DeadLetter) -> bool:
    """A letter this job item took to retry: did its worker die before the ledger heard of the retry?  Yes
    when the event is still dead there and this letter is its newest (a retry that went on and failed
    again has a newer letter), or — a letter of an event the door refused — the event is still not in the
    ledger."""
    if letter.destination not in DESTINATIONS:
        return False
    record = tools.ledger_of(letter.destination).get(letter.operation, letter.key)
    if record is None:
        return True
    newest = tools.dead_letters.latest_for(letter.operation, letter.key, letter.destination)
    return record.state == "dead" and newest is not None and newest.letter_id == letter.letter_id


# -- discard a dead letter ----------------------------------------------------------------------------

@_audited("discard")
def discard_letter(tools: SupportTools, ident: str, *, actor: str, reason: str,
                   destination: str | None = None, dry_run: bool = False, job_item: str = "") -> ActionReport:
    """Give up on one dead letter (kept, marked discarded, with who and why); ``dry_run``: only say
    whether it would be."""
    if not reason or not reason.strip():
        raise ValueError("discarding needs a reason")
    letter = find_letter(tools, ident, destination)
    if letter is None:
        return ActionReport(ident, FAILED, "no such dead letter", "wms-relay dead list")

    def report(status: str, message: str, next_step: str = "", audited: bool = False) -> ActionReport:
        return ActionReport(letter.letter_id, status, message, next_step, letter.operation, letter.key,
                            dry_run, letter.destination, audited)

    done = "discarded (kept for the record; it will not be sent)"
    if letter.status != "open":
        if letter.status == "discarded" and _closed_by_this_item(tools, letter, job_item):
            _discard_in_ledger(tools, letter, actor, reason)  # in case its worker stopped before this too
            return report(DONE, f"{done}; by this job before its worker stopped (its audit entry is in)",
                          audited=True)
        return report(SKIPPED, _closed_note(letter), follow(letter.operation, letter.key))
    if dry_run:
        return report(DONE, "would be discarded (dry run: nothing changed)")
    entry = _with_close(tools, "discard", letter, actor, reason, done)
    if tools.dead_letters.discard(letter.letter_id, actor=actor, reason=reason, audit=entry,
                                  job_item=job_item) is None:
        now = tools.dead_letters.get(letter.letter_id)
        return report(SKIPPED, f"someone else acted first: {_closed_note(now)}",
                      follow(letter.operation, letter.key))
    _discard_in_ledger(tools, letter, actor, reason)
    return report(DONE, done, audited=entry is not None)


def _discard_in_ledger(tools: SupportTools, letter: DeadLetter, actor: str, reason: str) -> None:
    """The discarded letter's delivery: ``dead → discarded`` in its ledger (a compare-and-set: a second
    call changes nothing)."""
    if letter.reason not in (_INVALID, _CONFLICT):  # those have no ledger record of their own
        tools.ledger_of(letter.destination).transition(
            letter.operation, letter.key, "discarded", actor=actor,
            reason=f"dead letter {letter.letter_id} discarded: {reason}", expected_states=("dead",))


# -- uncertain events ---------------------------------------------------------------------------------

@_audited(lambda kwargs: "resolve-delivered" if kwargs["delivered"] else "resolve-resend")
def resolve_uncertain(tools: SupportTools, operation: str, key: str, *, delivered: bool, actor: str,
                      reason: str, destination: str = WMS_DESTINATION.name) -> ActionReport:
    """A person checked the destination: it has the event (``delivered``) or it does not (resend it
    once, to that destination only)."""
    if not reason or not reason.strip():
        raise ValueError("resolving needs a reason (what you saw at the destination)")
    target = DESTINATIONS[destination]

    def report(status: str, message: str, next_step: str = "") -> ActionReport:
        return ActionReport(target.delivery_ref(operation, key), status, message, next_step, operation, key,
                            destination=destination)

    story = follow(operation, key)
    raced = "someone else resolved it a moment ago"
    ledger = tools.ledger_of(destination)
    row = ROWS.get((destination, operation))
    record = ledger.get(operation, key) if row is not None else None
    if record is None:
        return report(FAILED, "no such event in the ledger", "wms-relay uncertain list")
    if record.state != "uncertain":
        return report(SKIPPED, f"it is {record.state}, not uncertain (resolved already?)", story)
    if delivered:
        if not ledger.transition(operation, key, "delivered", actor=actor,
                                 reason=f"confirmed in {target.title} by a person: {reason}",
                                 result={"confirmed_manually": True}, expected_states=("uncertain",)):
            return report(SKIPPED, raced, story)
        return report(DONE, "marked delivered; it will not be sent again", story)
    try:
        event = Delivery(row, validate_event(operation, message_of(record, destination)["event"]))
    except InvalidEvent as exc:
        return report(FAILED, f"the stored event no longer validates: {exc.summary}", story)
    if not ledger.reopen(operation, key, actor=actor, from_states=("uncertain",),
                         reason=f"not found in {target.title} by a person; resend: {reason}"):
        return report(SKIPPED, raced, story)
    try:
        how = _queue(tools, event)
    except Exception as exc:  # noqa: BLE001
        return report(FAILED, "it " + _NOT_QUEUED.format(f"{type(exc).__name__}: {exc}"), "wms-relay check")
    return report(DONE, f"will be sent once more: {how}", story)


# -- scheduled retries --------------------------------------------------------------------------------

@_audited("run-now")
def run_retry_now(tools: SupportTools, ref: str, *, actor: str) -> ActionReport:
    """Make one scheduled retry (a delivery ref) due now; the scheduler re-queues it within a second."""
    found = split_delivery_ref(ref)
    destination, operation, key = (found[0].name, found[1], found[2]) if found else (None, None, None)
    story = follow(operation, key) if found else "wms-relay retries list"
    if tools.schedule.run_now([ref]):
        return ActionReport(ref, DONE, "due now: the scheduler puts it back on its queue", story,
                            operation, key, destination=destination)
    entry = tools.schedule.get(ref)
    if entry is not None and entry.in_flight:
        return ActionReport(ref, SKIPPED, "already on its way back to the queue", "", operation, key,
                            destination=destination)
    return ActionReport(ref, SKIPPED, "not in the retry schedule (delivered, parked or never "
                        "scheduled)", story, operation, key, destination=destination)


@_audited("discard-retry")
def discard_retry(tools: SupportTools, ref: str, *, actor: str, reason: str,
                  dry_run: bool = False) -> ActionReport:
    """Give up on a scheduled retry (a delivery ref; or a dispatch update waiting for its create): that
    destination's delivery becomes ``discarded`` in its ledger (kept, never sent) and leaves the schedule.
    The ledger's compare-and-set decides between two people; a copy the scheduler already published finds
    the delivery settled.  ``dry_run``: only say whether it would be."""
    if not reason or not reason.strip():
        raise ValueError("discarding needs a reason")
    found = split_delivery_ref(ref)
    destination, operation, key = (found[0].name, found[1], found[2]) if found else (None, None, None)

    def report(status: str, message: str, next_step: str = "") -> ActionReport:
        return ActionReport(ref, status, message, next_step, operation, key, dry_run, destination)

    if tools.schedule.get(ref) is None:
        return report(SKIPPED, "not in the retry schedule (delivered, parked, discarded or never "
                      "scheduled)", follow(operation, key) if found else "wms-relay retries list")
    if dry_run:
        record = tools.ledger_of(destination).get(operation, key) if found is not None else None
        if record is not None and record.state not in ("retrying", "waiting"):
            return report(SKIPPED, f"it is {record.state} now, not waiting for a retry",
                          follow(operation, key))
        return report(DONE, "would be discarded (dry run: nothing changed)")
    if found is not None:
        ledger = tools.ledger_of(destination)
        if ledger.get(operation, key) is not None and not ledger.transition(
                operation, key, "discarded", actor=actor, reason=f"scheduled retry discarded: {reason}",
                expected_states=("retrying", "waiting")):
            record = ledger.get(operation, key)
            last = record.history[-1] if record and record.history else {}
            who = f" by {last['actor']}" if last.get("actor") else ""
            state = record.state if record else "gone"
            return report(SKIPPED, f"it is {state}{who} now, not waiting for a retry",
                          follow(operation, key))
    tools.schedule.remove(ref)
    return report(DONE, "discarded (kept for the record; it will not be sent)",
                  follow(operation, key) if found else "")
