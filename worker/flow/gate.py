"""May a request leave for this destination now?  The one question every send asks first — a delivery of
one event (worker.delivery.pipeline) or a batch (worker.delivery.batch_delivery) — answered in one round
trip by one script that reads, in order:

1. the **pause** (worker.flow.pause): paused → *park* (nothing sent, no attempt);
2. the **circuit** (worker.flow.circuit): open or half-open → *park*; not known to be up and as many
   sends out as failures could still open it → wait a little;
3. the **rate limit** (worker.flow.rate_limit): the next slot at most ``max_wait`` (1 s) away → *send*
   after sleeping until it; further → *later* (rescheduled for then, no attempt).

After the send, :meth:`Gate.report` tells the circuit what came back (and a 429/503's ``Retry-After``
holds the destination).  A send that never happened reports nothing but gives its ticket back
(:meth:`Gate.report` with ``error=None, sent=False``).

A delivery of one event asks the gate inside its take script (worker.flow.send_steps: the script's
``gate_admit`` is :data:`GATE_LUA`'s), and only when this process's look (worker.flow.look, at most a second
old) does not already say "go" (:meth:`Gate.clear`); its delivered step tells the circuit it answered.

The keys are those of the three modules (each documents its own); the script's KEYS, in order:

    KEYS[1]  <ns>:flow:pause            KEYS[2]  <ns>:flow:circuit       KEYS[3]  <ns>:flow:circuit:sending
    KEYS[4]  <ns>:flow:rate:next        KEYS[5]  <ns>:flow:rate:sent
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from worker.encoding import text
from worker.flow import policy
from worker.flow.circuit import CIRCUIT_LUA, Circuit, circuit_keys
from worker.flow.look import FlowLook
from worker.flow.pause import PAUSE_LUA, pause_key
from worker.flow.rate_limit import RATE_LUA, RateLimit, rate_keys
from worker.settings import FlowLimits
from worker.store.requests import replaying, reply_key, request_id

log = logging.getLogger("wms_relay.flow")

SEND, LATER, PARK = "send", "later", "park"
# How long a counted send may stay out before its ticket lapses (a worker that died mid-send).
TICKET_SECONDS = 120.0
# While a destination not known to be up has as many sends out as it may, a sender looks again this often.
FULL_POLL_SECONDS = 0.05

# gate_admit(k_pause, k_circuit, k_sending, k_next, k_sent, now, interval, max wait, failure threshold,
#            window, ticket, ticket lease until) -> the verdict:
#   {'paused', until, by, reason} | {'open', probe_at, fault} | {'later', wait} | {'full'} |
#   {'send', wait, counted (0|1)}
# (worker.flow.send_steps asks it in the same script as the claim.)
GATE_LUA = PAUSE_LUA + CIRCUIT_LUA + RATE_LUA + """
local function gate_admit(k_pause, k_circuit, k_sending, k_next, k_sent, now, interval, max_wait, threshold,
                          window, ticket, ticket_until)
  local until_, by, reason = pause_of(k_pause, now)
  if by then return {'paused', string.format('%.3f', until_), by, reason} end
  local verdict, probe_at, fault = circuit_admit(k_circuit, k_sending, now, threshold, window)
  if verdict == 'open' then return {'open', string.format('%.3f', probe_at), fault} end
  local slot = rate_slot(k_next, now)
  if slot - now > max_wait then return {'later', string.format('%.6f', slot - now)} end
  if verdict == 'full' then return {'full'} end
  rate_take(k_next, k_sent, now, slot, interval)
  local counted = 0
  if verdict == 'count' then
    redis.call('ZADD', k_sending, ticket_until, ticket)
    counted = 1
  end
  return {'send', string.format('%.6f', slot - now), counted}
end
"""

# ARGV: now, interval, max wait, failure threshold, window, ticket, ticket lease until.
_ADMIT = GATE_LUA + """
return gate_admit(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], tonumber(ARGV[1]), tonumber(ARGV[2]),
                  tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7])
"""


@dataclass(frozen=True)
class Verdict:
    """What the gate said: ``send`` (after sleeping ``wait`` s; report with ``ticket``), ``later``
    (reschedule ``wait`` s from now) or ``park`` (paused or circuit open: ``wait`` s is when to look again,
    0 when nobody knows).  ``reason`` says why, for the ledger's story."""

    action: str
    wait: float = 0.0
    reason: str = ""
    ticket: str = ""
    at: float = 0.0  # send: the moment its slot comes (Unix seconds)

    @property
    def sends(self) -> bool:
        return self.action == SEND


class Gate:
    """The flow gate of one destination (any redis-py client).  ``sleep`` is injected for tests."""

    def __init__(self, redis_client, destination: str, namespace: str, limits: FlowLimits, *,
                 title: str | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, max_wait: float = 1.0) -> None:
        self.destination = destination
        self.title = title or destination
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._max_wait = float(max_wait)
        self._keys = [pause_key(namespace), *circuit_keys(namespace), *rate_keys(namespace)]
        self._ns = namespace
        # A resend replays the first reply (worker.store.requests).
        self._admit = redis_client.register_script(replaying(_ADMIT))
        self.circuit = Circuit(redis_client, namespace, failures=limits.circuit_failures,
                               window_seconds=limits.circuit_window_seconds,
                               probe_seconds=limits.probe_seconds, clock=clock)
        self.rate = RateLimit(redis_client, namespace, clock=clock)
        self.look = FlowLook(redis_client, [self._keys[0], self._keys[1], *self._keys[3:]], namespace,
                             window_seconds=limits.circuit_window_seconds, clock=clock)

    @property
    def keys(self) -> list[str]:
        """The gate script's KEYS: pause, circuit state, circuit sending, rate next slot, rate sent."""
        return list(self._keys)

    def clear(self) -> bool:
        """May a send go without asking the gate's script?  Only without a rate limit (every send takes a
        slot then), and when this process's look (worker.flow.look) says nothing holds it back."""
        return self.limits.max_rps <= 0 and self.look.clear()

    def admission_args(self, now: float, ticket: str) -> list:
        """``gate_admit``'s arguments after its keys and the time: interval, max wait, failure threshold,
        window, ``ticket`` and the ticket's lease (until when it counts)."""
        return [f"{policy.emission_interval(self.limits.max_rps):.9f}", f"{self._max_wait:.6f}",
                self.limits.circuit_failures, self.limits.circuit_window_seconds, ticket,
                f"{now + TICKET_SECONDS:.3f}"]

    def ask(self) -> Verdict:
        """One look, no sleeping: ``send`` with the wait still to sleep, ``later``, ``park`` — or
        ``later`` with wait 0 and reason ``full`` (the caller may look again shortly)."""
        ticket = uuid.uuid4().hex
        now = self._clock()
        replay = reply_key(self._ns, request_id())
        reply = self._admit(keys=[*self._keys, replay],
                            args=[f"{now:.6f}", *self.admission_args(now, ticket)])
        return self.verdict_of(reply, now, ticket)

    def verdict_of(self, reply: list, now: float, ticket: str) -> Verdict:
        """The Verdict of ``gate_admit``'s reply, asked at ``now`` with ``ticket``."""
        reply = [text(part) for part in reply]
        kind = reply[0]
        if kind == "send":
            return Verdict(SEND, float(reply[1]), ticket=ticket if reply[2] == "1" else "",
                           at=now + float(reply[1]))
        if kind == "paused":
            until = float(reply[1])
            end = f" until {_clock_text(until)}" if until > 0 else " until resumed"
            return Verdict(PARK, max(0.0, until - now) if until > 0 else 0.0,
                           f"{self.title} is paused{end} by {reply[2]}: {reply[3]}")
        if kind == "open" and len(reply) > 2 and reply[2]:
            return Verdict(PARK, 0.0, f"{self.title}'s circuit is open for a configuration fault "
                                      f"({reply[2]}: {policy.FAULT_TEXT.get(reply[2], reply[2])}); one probe "
                                      "a minute")
        if kind == "open":
            probe_at = float(reply[1])
            return Verdict(PARK, max(0.0, probe_at - now),
                           f"{self.title}'s circuit is open (it failed {self.limits.circuit_failures} times "
                           f"in a row); probing it every {self.limits.probe_seconds:g} s")
        if kind == "later":
            return Verdict(LATER, float(reply[1]), f"{self.title}'s rate limit: the next free slot is "
                                                   f"{float(reply[1]):.1f} s away")
        return Verdict(LATER, 0.0, "full")

    def admit(self, *, lead: float = 0.0,
              ask: Callable[[], Verdict | None] | None = None) -> Verdict | None:
        """:meth:`ask`, sleeping for a slot at most ``max_wait`` away and looking again while the circuit's
        count of sends is full, for up to ``max_wait`` in all.  ``lead``: wake this long before the slot
        (the verdict's ``wait``, ``at`` say how long is left) — a batch is taken and claimed in that time,
        so that its request still leaves on its slot: a request leaving late after one that left on time
        is what a destination counting strictly refuses.  ``ask``: who asks the gate's script (the take
        step of worker.flow.send_steps, in its own script; None from it: nothing to ask, returned as is)."""
        ask = ask or self.ask
        deadline = self._clock() + self._max_wait
        while True:
            verdict = ask()
            if verdict is None:
                return None
            if verdict.action == LATER and verdict.reason == "full":
                if self._clock() + FULL_POLL_SECONDS <= deadline:
                    self._sleep(FULL_POLL_SECONDS)
                    continue
                return Verdict(LATER, self._max_wait,
                               f"{self.title} is not known to be up and {self.limits.circuit_failures} sends "
                               "are out waiting for an answer")
            if verdict.sends and verdict.wait > lead:
                self._sleep(verdict.wait - lead)
                return Verdict(SEND, lead, verdict.reason, verdict.ticket, verdict.at)
            return verdict

    def pace(self, longest: float = 5.0) -> None:
        """Wait for a slot for a request a send makes beyond its first (Stock2Shop's login and the resend
        after it: the destination counts them too).  Waits at most ``longest`` seconds, then goes anyway."""
        slot = self.rate.take(self.limits.max_rps, max_wait=longest)
        if slot.wait > 0:
            self._sleep(min(slot.wait, longest))

    def report(self, error: object = None, *, ticket: str = "", sent: bool = True) -> str:
        """What came back from a send the gate let through (``error`` None: delivered).  ``sent=False``:
        the send did not happen after all (its ticket is given back, nothing else changes).  Returns the
        circuit's move (``opened``, ``reclosed``) or its state."""
        if not sent:
            return self.circuit.report(policy.NEUTRAL, ticket=ticket)
        hold = policy.hold_seconds(error)
        signal = policy.circuit_signal(error)
        if hold is not None or signal != policy.OK:
            self.look.forget()  # this process knows more than its look: the next sends ask the gate
        if hold is not None:
            self.rate.hold_until(self._clock() + hold)
        moved = self.circuit.report(signal, ticket=ticket, why="" if error is None else str(error))
        if moved == "opened" and signal in policy.FAULTS:
            _fault_opened(self.destination, self.title, signal, str(error))
        elif moved == "opened":
            log.warning("%s's circuit opened: %d failures in a row (last: %s); nothing is sent to it but one "
                        "probe every %g s", self.title, self.limits.circuit_failures, error,
                        self.limits.probe_seconds)
        elif moved == "reclosed":
            self.said_reclosed()
        return moved

    def said_reclosed(self) -> None:
        """An answer closed the open circuit (here, or in the delivered step of worker.flow.send_steps)."""
        log.warning("%s's circuit closed: it answered again", self.title)


def _fault_opened(destination: str, title: str, fault: str, detail: str) -> None:
    """A configuration fault opened the circuit: said once for the opening — an ERROR line and, with
    SENTRY_DSN set, one Sentry report — not once per refused request."""
    from worker.observe.sentry import report_configuration_fault

    log.error("%s's circuit opened for a configuration fault (%s): %s; nothing is sent to it but one probe a "
              "minute until it is answered", title, fault, detail)
    report_configuration_fault(destination, fault, f"{title}: {detail}")


def _clock_text(moment: float) -> str:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))
    except (OverflowError, ValueError, OSError):  # a far-future pause stored by an earlier version
        return "a time beyond the calendar"
