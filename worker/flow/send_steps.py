"""A delivery's store calls around its send: one script before, one after (issue 21).

**take** (before the send) — where the flow gate, the claim and the SKU's turn meet, one round trip:

1. the ledger's *accept*: the event recorded, or recognised (another payload under its key: a conflict,
   and nothing more happens);
2. *nothing to send?* — settled, parked for a person, or another worker's lease still live: the claim's
   refusal comes back and the gate is not asked (no rate slot is spent on it);
3. the *gate* (worker.flow.gate: pause → circuit → rate limit) — unless this process's look says the
   destination is clear (worker.flow.look: not paused, circuit closed with no failure and known to be up,
   no rate limit, no hold; then none of the gate's keys is read or written);
4. the SKU's *turn* (worker.store.stock_order) for an absolute count, if the gate said send — taken
   *before* the claim: a count that finds another count of its SKU on the wire is not claimed (waiting for
   a turn is no attempt: none is counted, the retry budget is not touched); its record moves to
   ``waiting``, its story saying so once per wait (worker.store.stock_order's ``claim_in_turn``);
5. the *claim* (a lease for this owner) if the gate said send and the turn, if any, is not busy — unless
   the caller claims later (a change to a shipment that may have to wait for its create:
   worker.delivery.dispatch_wait; a count that may wait for its catalog row: worker.delivery.catalog_wait),
   then in one step with its turn likewise (:meth:`SendSteps.claim`).

**delivered** (after the destination took it): the ledger's move to ``delivered`` with the attempt's entry
and the destination's answer, the circuit told "it answered" (written at most once a second while it is
closed with no failure: ``circuit_answered``), the SKU's turn given back, and — for a shipment's create —
the deliveries waiting for its dispatch id taken (worker.store.dispatch_waiters).  A send that did not
deliver goes the failure paths (worker.delivery.failures): rarer, and each its own calls, as before.

The store-call rule (worker.store.requests): *take* carries a request id — its claim's answer decides what
may be sent (a resent claim would look like this very send interrupted) and its rate slot is taken once;
so does the later claim in a turn (:meth:`SendSteps.claim`: a resend after the turn came free must not
claim what its first run left waiting).
*delivered* carries none: resent after it ran, it finds the record ``delivered`` with this very attempt's
entry in its story and answers "moved" again without touching anything (``transition_record``'s
``by_story``); the rest of that script ran with it, atomically.  (The shipment's waiters its first run
took are then not answered again: they run at their scheduled re-check, ``DEPENDENCY_WAIT_SECONDS``
later, instead of now — as with the separate, id-less take of the waiters before issue 21.)
tests/worker/flow/test_send_steps.py resends both.

KEYS of take: the ledger's ten (worker.store.ledger_scripts: the record's nine, then its settled index), the
gate's five (worker.flow.gate), the SKU's last count and lock (the record's key twice when no turn is
asked), the reply key.
KEYS of delivered: the ledger's ten, the circuit's state and sending set, the SKU's lock, the shipment's
waiters (the record's key where there is none).

ARGV of each is *one* argument, the script's arguments packed as a JSON array of strings (:func:`_packed`;
the script's first line unpacks it with ``cjson`` into a local ``ARGV``, so the rest reads as before):
redis-py encodes every argument of a command one by one in Python (``Encoder.encode``, four type checks
and an ``encode`` each), and these two scripts had ~30 besides their keys per delivery; ``json.dumps``
packs them in one C call (issue 21).  The keys stay KEYS: a script declares every key it touches.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

from redis.client import Pipeline
from redis.exceptions import NoScriptError

from worker.encoding import text
from worker.flow.circuit import ANSWERED_EVERY_SECONDS, CIRCUIT_LUA
from worker.flow.gate import SEND, Gate, GATE_LUA, Verdict
from worker.store.ledger import AcceptResult, Claim, Ledger
from worker.store.ledger_scripts import STEPS
from worker.store.records import AttemptEntry
from worker.store.requests import replaying, reply_key, request_id
from worker.store.stock_order import CLAIM_IN_TURN_LUA, STOCK_LUA, StockOrder, StockTurn

# ARGV: 1-6 the ledger's (fingerprint, event JSON, now, member, owner, lease expiry), 7 claim ('1'|'0'),
# 8 the gate ('check' | 'go': the look says clear), 9-14 the gate's (interval, max wait, failure threshold,
# window, ticket, ticket lease until), 15 the count's occurred_at ('' for no turn), 16 the turn's lock ms.
# Returns the conflict reply alone (four values), or: [1-4] the accept's reply, [5-8] the gate's verdict
# padded with '' ('' at [5]: not asked, nothing to send), [9-10] the turn's verdict and detail ('' for
# none), [11...] the claim's reply (or its refusal when there was nothing to send; none when the turn was
# busy: the record waits, unclaimed).
_TAKE = STEPS + GATE_LUA + STOCK_LUA + CLAIM_IN_TURN_LUA + replaying("""
local ARGV = cjson.decode(ARGV[1])  -- the arguments, packed (_packed)
local now = tonumber(ARGV[3])
local r, status = accept_record(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if not r then return status end
local reply = {status, r[1], ARGV[1], r[6] or '0', '', '', '', '', '', ''}
local refused = claim_refusal(r, ARGV[5], ARGV[3])
if refused then
  for _, part in ipairs(refused) do reply[#reply + 1] = part end
  return reply
end
local verdict = {'send', '0.000000', 0}
if ARGV[8] == 'check' then
  verdict = gate_admit(KEYS[11], KEYS[12], KEYS[13], KEYS[14], KEYS[15], now, tonumber(ARGV[9]),
                       tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13], ARGV[14])
end
for i = 1, 4 do reply[4 + i] = verdict[i] or '' end
if verdict[1] ~= 'send' or ARGV[7] ~= '1' then return reply end
local claim
if ARGV[15] ~= '' then
  local turn
  turn, claim = claim_in_turn(r, ARGV[5], ARGV[3], ARGV[6], ARGV[4], KEYS[16], KEYS[17], ARGV[15], ARGV[16])
  reply[9], reply[10] = turn[1], turn[2]
else
  claim = claim_record(r, ARGV[5], ARGV[3], ARGV[6], ARGV[4])
end
for _, part in ipairs(claim) do reply[#reply + 1] = part end
return reply
""")

# The claim of a count that was taken unclaimed (it might have waited: :meth:`SendSteps.claim`), in its
# SKU's turn.  KEYS: the ledger's ten, the SKU's last count and lock, the reply key.  ARGV (packed): the
# ledger's (fingerprint, owner, now, lease expiry, member), the count's occurred_at, the turn's lock ms.
# Returns the turn's verdict and detail ('' when the claim was refused before it), then the claim's reply
# (none when the turn was busy).
_CLAIM_IN_TURN = STEPS + STOCK_LUA + CLAIM_IN_TURN_LUA + replaying("""
local ARGV = cjson.decode(ARGV[1])  -- the arguments, packed (_packed)
local r = redis.call('HMGET', KEYS[1], 's', 'e', 'l', 'b', 'rs', 'n', 'h')
if not r[1] then return {'', '', 'unknown'} end
local stored = fingerprint_of(r[2]) or ''
if not same_print(stored, ARGV[1]) then return {'', '', 'conflict', r[1], stored} end
local reply = {'', ''}
local claim = claim_refusal(r, ARGV[2], ARGV[3])
if not claim then
  local turn
  turn, claim = claim_in_turn(r, ARGV[2], ARGV[3], ARGV[4], ARGV[5], KEYS[11], KEYS[12], ARGV[6], ARGV[7])
  reply[1], reply[2] = turn[1], turn[2]
end
for _, part in ipairs(claim) do reply[#reply + 1] = part end
return reply
""")

# ARGV: 1-8 the ledger's (reason, owner, result JSON, now, retention, window, member, attempt entry),
# 9 ticket, 10 failure threshold, 11 circuit window, 12 probe seconds, 13 answered every (s), 14 give the
# turn back ('1'|'0'), 15 take the waiters ('1'|'0').  Returns {'ok'|'refused'|'missing', circuit
# ('reclosed' or ''), waiters}.
_DELIVERED = STEPS + CIRCUIT_LUA + STOCK_LUA + """
local ARGV = cjson.decode(ARGV[1])  -- the arguments, packed (_packed)
local now = tonumber(ARGV[4])
local moved = transition_record('delivered', ARGV[1], ARGV[2], '', ARGV[3], '', '', ARGV[4], ARGV[5], ARGV[6],
                                ARGV[7], ARGV[8], '0', true)
if moved[3] == 'again' then return {'ok', '', {}} end
local circuit = circuit_answered(KEYS[11], KEYS[12], ARGV[9], now, tonumber(ARGV[10]), tonumber(ARGV[11]),
                                 tonumber(ARGV[12]), tonumber(ARGV[13]))
if ARGV[14] == '1' then stock_release(KEYS[13], ARGV[2]) end
local waiters = {}
if ARGV[15] == '1' then
  waiters = redis.call('SMEMBERS', KEYS[14])
  if #waiters > 0 then redis.call('DEL', KEYS[14]) end
end
return {moved[1], circuit, waiters}
"""


@dataclass(frozen=True)
class SkuTurn:
    """The SKU turn an absolute count takes (worker.delivery.stock_turn)."""

    warehouse_id: str
    artno: str
    occurred_at: str


@dataclass(frozen=True)
class Taken:
    """What the take step found and did.  ``verdict``: the gate's (after any wait for a slot), None when it
    was not asked (a conflict, or nothing to send: ``claim`` then says why — done, parked or busy).
    ``claim``: the claim, when it was asked for and the gate said send (None when the turn was busy: the
    count waits, unclaimed).  ``turn``: the SKU's answer, when a turn was asked for and the gate said
    send."""

    accepted: AcceptResult
    verdict: Verdict | None = None
    claim: Claim | None = None
    turn: StockTurn | None = None


@dataclass(frozen=True)
class Delivered:
    """The delivered step's answer: ``moved`` (False: the claim had passed to another worker), the refs of
    the deliveries that waited for this shipment's create (taken: schedule them now)."""

    moved: bool
    waiters: list[str] = field(default_factory=list)


class SendSteps:
    """The two steps of one destination's deliveries (its ledger, gate and stock order, one store)."""

    def __init__(self, redis_client, ledger: Ledger, gate: Gate, stock_order: StockOrder, *,
                 clock: Callable[[], float] = time.time) -> None:
        if isinstance(redis_client, Pipeline):  # _run calls the client's scripts at once
            raise TypeError("SendSteps runs its scripts on a client, not a pipeline")
        self.ledger, self.gate, self.stock_order = ledger, gate, stock_order
        self._clock = clock
        self._take = redis_client.register_script(_TAKE)
        self._delivered = redis_client.register_script(_DELIVERED)
        self._claim_in_turn = redis_client.register_script(_CLAIM_IN_TURN)

    def take(self, event: Any, owner: str, *, claim: bool = True, turn: SkuTurn | None = None) -> Taken:
        """Accept ``event``, ask the gate (sleeping for a slot at most a second away, looking again while
        the circuit's count of sends is full: :meth:`Gate.admit`), claim it for ``owner`` (unless ``claim``
        is False) and take ``turn``."""
        found: list[Taken] = []

        def ask() -> Verdict | None:
            found.append(self._take_once(event, owner, claim, turn))
            return found[-1].verdict

        verdict = self.gate.admit(ask=ask)
        taken = found[-1]
        return taken if verdict is taken.verdict else replace(taken, verdict=verdict)

    def _take_once(self, event: Any, owner: str, claim: bool, turn: SkuTurn | None) -> Taken:
        now = self._clock()
        clear = self.gate.clear()
        rid = request_id()
        # The circuit's ticket is the request id: a resent take (the same id) that replays a counted send
        # names the ticket its first run put in the circuit's sending set, not one nobody will give back.
        ticket = "" if clear else rid
        keys, args, print_ = self.ledger.take_part(event, owner, now)
        sku = self.stock_order.keys(turn.warehouse_id, turn.artno) if turn else [keys[0], keys[0]]
        replay = reply_key(self.ledger.namespace, rid)
        reply = _run(self._take, [*keys, *self.gate.keys, *sku, replay],
                     [*args, "1" if claim else "0", "go" if clear else "check",
                      *self.gate.admission_args(now, ticket), turn.occurred_at if turn else "",
                      self.stock_order.lock_ms])
        accepted = self.ledger.read_accept(reply, print_)
        if accepted.conflict:
            return Taken(accepted)
        gate = [text(part) for part in reply[4:8]]
        if not gate[0]:  # nothing to send: the claim's refusal follows
            return Taken(accepted, claim=self.ledger.read_claim(reply[10:], now))
        verdict = self.gate.verdict_of(gate, now, ticket)
        claimed = self.ledger.read_claim(reply[10:], now) if len(reply) > 10 else None
        if clear and verdict.action == SEND:
            self.gate.look.count_send()
        turned = StockTurn(text(reply[8]), text(reply[9])) if text(reply[8]) else None
        return Taken(accepted, verdict, claimed, turned)

    def claim(self, operation: str, key: str, fingerprint: str, owner: str,
              turn: SkuTurn) -> tuple[Claim | None, StockTurn | None]:
        """Claim a count taken unclaimed (:meth:`take` with ``claim=False``) in its SKU's ``turn``, one round
        trip: the claim (None when the turn was busy: the record waits, unclaimed) and the turn's answer
        (None when the claim was refused before it)."""
        now = self._clock()
        keys, args = self.ledger.claim_part(operation, key, fingerprint, owner, now)
        reply = _run(self._claim_in_turn,
                     [*keys, *self.stock_order.keys(turn.warehouse_id, turn.artno),
                      reply_key(self.ledger.namespace, request_id())],
                     [*args, turn.occurred_at, self.stock_order.lock_ms])
        turned = StockTurn(text(reply[0]), text(reply[1])) if text(reply[0]) else None
        return (self.ledger.read_claim(reply[2:], now) if len(reply) > 2 else None), turned

    def delivered(self, operation: str, key: str, *, owner: str, result: Mapping[str, Any],
                  log: AttemptEntry, reason: str, ticket: str = "", turn: SkuTurn | None = None,
                  waiters_key: str | None = None) -> Delivered:
        """Record a delivery (see the module docstring): ``ticket`` the gate gave the send (if it was
        counted), ``turn`` the SKU turn to give back, ``waiters_key`` the shipment's waiters to take."""
        keys, args = self.ledger.delivered_part(operation, key, owner=owner, result=result, log=log,
                                                reason=reason)
        limits = self.gate.limits
        lock = self.stock_order.keys(turn.warehouse_id, turn.artno)[1] if turn else keys[0]
        reply = _run(self._delivered, [*keys, *self.gate.keys[1:3], lock, waiters_key or keys[0]], [
            *args, ticket, limits.circuit_failures, limits.circuit_window_seconds, limits.probe_seconds,
            ANSWERED_EVERY_SECONDS, "1" if turn else "0", "1" if waiters_key else "0"])
        if text(reply[1]) == "reclosed":
            self.gate.said_reclosed()
        return Delivered(text(reply[0]) == "ok", [text(ref) for ref in reply[2]])


def _packed(args: list) -> str:
    """The script's arguments as one: a JSON array of the strings redis-py would have sent one by one
    (text as it is, an int or a float as its ``repr``: ``Encoder.encode``'s spelling); anything else —
    a bool, None, bytes — refused as redis-py refuses it.  ``ensure_ascii=False``: the text reaches the
    script as the same UTF-8 it was (``cjson`` reads the escapes ``json`` writes: quotes, backslashes,
    control characters)."""
    return _PACKER.encode([arg if type(arg) is str else _argument(arg) for arg in args])


_PACKER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # json.dumps builds one per call


def _argument(value: Any) -> str:
    if isinstance(value, str):
        return value  # a subclass: json writes its text, as redis-py would have encoded it
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    raise TypeError(f"a script argument is text or a number, not {type(value).__name__}")


def _run(script, keys: list, args: list) -> Any:
    """``script(keys=keys, args=args)``, the arguments packed in one (:func:`_packed`), the short way for
    the client it was registered with: redis-py's
    ``Script.__call__`` imports the pipeline classes and checks the client against them (``typing``
    Protocol checks) on every call — a few per cent of a delivery's Python, twice per delivery (issue 21).
    A store that lost the script (restarted, flushed) answers NOSCRIPT without running anything; then
    ``Script.__call__`` loads it and runs it, as always."""
    packed = _packed(args)
    try:
        return script.registered_client.evalsha(script.sha, len(keys), *keys, packed)
    except NoScriptError:
        return script(keys=keys, args=[packed])
