"""The ledger's stored form: the Lua scripts that change a record (each state change is one script, so
it is atomic on the server), and the decoding of what they store (``EventRecord``, ``parse_record``).
The two live together because both must agree on the layout below.  ``worker.ledger`` is the API.

Every script gets the same KEYS, in this order (see ``worker.ledger.Ledger._keys``):

    KEYS[1]     the event's record (a hash; short field names, see below)
    KEYS[2]     lifetime totals of final states (a hash: delivered, superseded, discarded)
    KEYS[3]     deliveries and failures per minute (a hash: Unix minute -> deliveries, "f" + Unix minute
                -> failures, i.e. moves to retrying, uncertain or dead; minutes older than the window are
                dropped when a new minute starts) — a few hundred fields in all, not one entry per event
    KEYS[4..9]  one sorted set per open state, scored by the time the event entered it:
                accepted, sending, retrying, waiting, uncertain, dead

The record hash keeps as few fields as it can (each field of a hash that holds a long value costs
Redis ~25-40 bytes of bookkeeping, more when its table grows), so a delivered event has five:

    s   state                      n   attempts (claims) so far
    e   the event, fixed at accept: {"fp": fingerprint, "f": fields, "at": occurred_at, "id": event_id}
        ("fp" first, so a script reads it with one pattern; "id" left out when it equals the key)
    rs  the stored Trademax result (JSON)
    h   the event's story, oldest first, one JSON array of two kinds of entry:
        [t, from, to, reason, actor?, attempt?]                     a transition ("" from: created)
        {"n": attempt, "t": t, "o": outcome, "st": status, "ec": error_code, "ms": messages, "l": latency}
                                                                    a send attempt (empty parts left out)
    l   the lease, "expiry owner" (only while sending)     b  attempts when last reopened (after a reopen)

Times are Unix seconds with milliseconds, passed in by the caller (the clock is injected; the scripts
never read the server's), as text that is already a valid JSON number.  Declaring every key a script
may touch keeps the scripts correct on any Redis >= 6 / Valkey.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

OPEN_STATES = ("accepted", "sending", "retrying", "waiting", "uncertain", "dead")
FINAL_STATES = ("delivered", "superseded", "discarded")

_PRELUDE = """
local OPEN = {accepted=4, sending=5, retrying=6, waiting=7, uncertain=8, dead=9}
local FINAL = {delivered=true, superseded=true, discarded=true}

local function enc(text) return cjson.encode(text) end
local function fingerprint_of(event) return string.match(event or '', '^{"fp":"(%x+)"') end
-- The lease field is "expiry owner": (expiry, owner), or ('0', '') when there is none.
local function lease_of(lease)
  if not lease then return '0', '' end
  local expiry, owner = string.match(lease, '^(%S+) (.*)$')
  return expiry or '0', owner or ''
end

-- Append a ready-made JSON value to the event's story (field h, a JSON array).
local function tell(entry)
  local current = redis.call('HGET', KEYS[1], 'h')
  if current and #current > 2 then
    redis.call('HSET', KEYS[1], 'h', string.sub(current, 1, -2) .. ',' .. entry .. ']')
  else
    redis.call('HSET', KEYS[1], 'h', '[' .. entry .. ']')
  end
end

local function history(now, from, to, reason, actor, attempt)
  local parts = {now, enc(from), enc(to), enc(reason)}
  if actor ~= '' then parts[5] = enc(actor) elseif attempt ~= '' then parts[5] = 'null' end
  if attempt ~= '' then parts[6] = attempt end
  tell('[' .. table.concat(parts, ',') .. ']')
end

-- Keep the indexes, totals and expiry in step with a state change.
local function moved(member, from, to, now, retention, window)
  if from and OPEN[from] then redis.call('ZREM', KEYS[OPEN[from]], member) end
  if OPEN[to] then redis.call('ZADD', KEYS[OPEN[to]], now, member) end
  if FINAL[to] and from ~= to then redis.call('HINCRBY', KEYS[2], to, 1) end
  if FINAL[to] and tonumber(retention) > 0 then
    redis.call('EXPIRE', KEYS[1], retention)
  else
    redis.call('PERSIST', KEYS[1])
  end
  local prefix = nil
  if to == 'delivered' then prefix = '' elseif to == 'retrying' or to == 'uncertain' or to == 'dead' then
    prefix = 'f'
  end
  if prefix then
    local minute = math.floor(tonumber(now) / 60)
    if redis.call('HINCRBY', KEYS[3], prefix .. string.format('%d', minute), 1) == 1 then
      local oldest = minute - math.ceil(tonumber(window) / 60)
      for _, field in ipairs(redis.call('HKEYS', KEYS[3])) do
        if tonumber(string.match(field, '%d+$')) < oldest then redis.call('HDEL', KEYS[3], field) end
      end
    end
  end
end
"""

# ARGV: fingerprint, event JSON (starting with the fingerprint), now, member
ACCEPT = _PRELUDE + """
local found = redis.call('HMGET', KEYS[1], 's', 'e', 'n')
if found[1] then
  local stored = fingerprint_of(found[2]) or ''
  if stored == ARGV[1] then return {'known', found[1], stored, found[3]} end
  return {'conflict', found[1], stored, found[3]}
end
redis.call('HSET', KEYS[1], 's', 'accepted', 'n', 0, 'e', ARGV[2])
history(ARGV[3], '', 'accepted', 'accepted', '', '')
moved(ARGV[4], nil, 'accepted', ARGV[3], 0, 0)
return {'accepted', 'accepted', ARGV[1], '0'}
"""

# Claim a record that exists and whose fingerprint matched.  r: HMGET of s, e, l, b, rs (false if missing).
_CLAIM_RECORD = """
local function claim_record(r, owner, now, expiry, member)
  local state = r[1]
  local held_until, holder = lease_of(r[3])
  if FINAL[state] then return {'done', state, r[5] or ''} end
  if state == 'dead' or state == 'uncertain' then return {'parked', state} end
  if state == 'sending' and holder ~= owner and tonumber(held_until) > tonumber(now) then
    return {'busy', state, holder, held_until}
  end
  local reason = 'claimed'
  if state == 'sending' then
    if holder == owner then reason = 'claimed again' else reason = 'claimed: previous lease expired' end
  end
  local attempts = redis.call('HINCRBY', KEYS[1], 'n', 1)
  redis.call('HSET', KEYS[1], 's', 'sending', 'l', expiry .. ' ' .. owner)
  history(now, state, 'sending', reason, '', tostring(attempts))
  moved(member, state, 'sending', now, 0, 0)
  return {'claimed', state, attempts, attempts - tonumber(r[4] or '0'), holder}
end
"""

# ARGV: fingerprint, owner, now, lease expiry, member
CLAIM = _PRELUDE + _CLAIM_RECORD + """
local r = redis.call('HMGET', KEYS[1], 's', 'e', 'l', 'b', 'rs')
if not r[1] then return {'unknown'} end
local stored = fingerprint_of(r[2]) or ''
if stored ~= ARGV[1] then return {'conflict', r[1], stored} end
return claim_record(r, ARGV[2], ARGV[3], ARGV[4], ARGV[5])
"""

# ACCEPT then CLAIM in one step (one round trip for the worker).  ARGV: fingerprint, event JSON, now,
# member, owner, lease expiry.  Returns ACCEPT's four values, then (unless a conflict) CLAIM's reply.
ACCEPT_AND_CLAIM = _PRELUDE + _CLAIM_RECORD + """
local r = redis.call('HMGET', KEYS[1], 's', 'e', 'l', 'b', 'rs', 'n')
local status = 'known'
if r[1] then
  local stored = fingerprint_of(r[2]) or ''
  if stored ~= ARGV[1] then return {'conflict', r[1], stored, r[6]} end
else
  redis.call('HSET', KEYS[1], 's', 'accepted', 'n', 0, 'e', ARGV[2])
  history(ARGV[3], '', 'accepted', 'accepted', '', '')
  moved(ARGV[4], nil, 'accepted', ARGV[3], 0, 0)
  status = 'accepted'
  r = {'accepted', ARGV[2], false, false, false, '0'}
end
local reply = {status, r[1], ARGV[1], r[6] or '0'}
for _, part in ipairs(claim_record(r, ARGV[5], ARGV[3], ARGV[6], ARGV[4])) do reply[#reply + 1] = part end
return reply
"""

# ARGV: to, reason, owner, actor, result JSON, attempt, expected states (",a,b,"), now, retention,
#       window, member, attempt entry JSON, reopen ("1": a new round of attempts starts)
TRANSITION = _PRELUDE + """
local r = redis.call('HMGET', KEYS[1], 's', 'l', 'n')
local state, to = r[1], ARGV[1]
if not state then return {'missing', ''} end
if ARGV[7] ~= '' and not string.find(ARGV[7], ',' .. state .. ',', 1, true) then return {'refused', state} end
local _, holder = lease_of(r[2])
if ARGV[3] ~= '' and holder ~= ARGV[3] then return {'refused', state} end
redis.call('HDEL', KEYS[1], 'l')
redis.call('HSET', KEYS[1], 's', to)
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'rs', ARGV[5]) end
if ARGV[13] == '1' then redis.call('HSET', KEYS[1], 'b', r[3] or '0') end
if ARGV[12] ~= '' then tell(ARGV[12]) end
history(ARGV[8], state, to, ARGV[2], ARGV[4], ARGV[6])
moved(ARGV[11], state, to, ARGV[8], ARGV[9], ARGV[10])
return {'ok', state}
"""

# ARGV: owner, attempt entry JSON
RECORD_ATTEMPT = _PRELUDE + """
local r = redis.call('HMGET', KEYS[1], 's', 'l')
if not r[1] then return 0 end
local _, holder = lease_of(r[2])
if ARGV[1] ~= '' and holder ~= ARGV[1] then return 0 end
tell(ARGV[2])
return 1
"""

# ARGV: owner, new lease expiry
RENEW_LEASE = _PRELUDE + """
local r = redis.call('HMGET', KEYS[1], 's', 'l')
local _, holder = lease_of(r[2])
if r[1] ~= 'sending' or holder ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'l', ARGV[2] .. ' ' .. ARGV[1])
return 1
"""


# -- the stored form, decoded ------------------------------------------------------------------------

# Keys no stored record may carry, at any depth: the secret, signatures, credentials.
SECRET_KEYS = frozenset({"secret", "trademax_secret", "signature", "api_key", "password", "authorization"})


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):  # datetime, date, time
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)  # Decimal, UUID: their canonical text


def _screened(value: Any, where: str, redact: bool) -> Any:
    """``value`` with secret-looking keys refused (or, with ``redact``, their values replaced)."""
    if isinstance(value, Mapping):
        screened = {}
        for name, inner in value.items():
            if str(name).lower() in SECRET_KEYS:
                if not redact:
                    raise ValueError(f"{where} must not carry {name!r}: secrets are never stored")
                screened[name] = "[redacted]"
            else:
                screened[name] = _screened(inner, where, redact)
        return screened
    if isinstance(value, (list, tuple)):
        return [_screened(inner, where, redact) for inner in value]
    return value


def redacted(value: Any) -> Any:
    """``value`` with the values of secret-looking keys (``SECRET_KEYS``) replaced, at any depth."""
    return _screened(value, "", True)


def stored_json(value: Any, *, where: str = "a stored record", redact: bool = False) -> str:
    """Compact JSON for Redis (UTF-8 kept as is: fewer bytes than ``\\u`` escapes).

    Datetimes become ISO-8601, Decimals and UUIDs their text.  Secret-looking keys (``SECRET_KEYS``)
    are refused — so the ledger and the retry schedule can never be made to store a secret — or, with
    ``redact`` (raw input kept as evidence, e.g. an invalid event in a dead letter), blanked."""
    return json.dumps(_screened(value, where, redact), separators=(",", ":"), ensure_ascii=False,
                      default=_json_default)


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def utf8_safe(value: Any) -> Any:
    """``value`` (JSON) with every string and key UTF-8 can encode: a lone surrogate, which JSON's
    ``\\udc80`` escape can carry, becomes that escape as text.  The store takes UTF-8 only: an invalid event
    holding one made its own dead letter fail (the fuzz run found it), and Trademax text holding one
    (an error message, a tracking code) would fail every ledger write of its event.  Done on the JSON text,
    so any nesting depth the JSON decoder took is fine here too."""
    text = json.dumps(value, ensure_ascii=False)
    if not _SURROGATE.search(text):
        return value
    return json.loads(_SURROGATE.sub(lambda m: f"\\\\u{ord(m.group()):04x}", text))


def canonical_json(value: Any) -> str:
    """The one JSON text of a value: keys sorted, compact, UTF-8 (what fingerprints are taken of)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True, default=_json_default)


def text(value: Any) -> str:
    """A Redis reply as text, whichever way the client decodes (``None`` becomes "")."""
    if value is None:
        return ""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def iso_time(moment: float | None) -> str | None:
    """Unix seconds as ISO-8601 UTC with milliseconds (``2024-05-01T08:11:12.123Z``); None stays None."""
    if moment is None:
        return None
    stamp = datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


@dataclass(frozen=True)
class AttemptEntry:
    """One send attempt, as written: number, outcome, HTTP status, Trademax error code and messages,
    latency (s), time (None: the ledger's clock).  Read back, attempts are plain dicts (see
    :func:`parse_record`)."""

    attempt: int
    outcome: str
    status: int | None = None
    error_code: int | None = None
    messages: tuple = ()
    latency: float | None = None
    at: float | None = None

    def to_json(self, *, default_at: float | None = None) -> str:
        """Stored form: a JSON object with short names, empty parts left out (the record stays small)."""
        at = self.at if self.at is not None else default_at
        stored = {"n": int(self.attempt), "t": None if at is None else round(at, 3), "o": self.outcome,
                  "st": self.status, "ec": self.error_code, "ms": list(self.messages) or None,
                  "l": None if self.latency is None else round(self.latency, 3)}
        return stored_json({k: v for k, v in stored.items() if v is not None}, where="an attempt's messages")

    def to_dict(self) -> dict:
        return {"attempt": self.attempt, "at": self.at, "outcome": self.outcome, "status": self.status,
                "error_code": self.error_code, "messages": list(self.messages), "latency": self.latency}


def _attempt(stored: Mapping) -> dict:
    return {"attempt": stored.get("n"), "at": stored.get("t"), "outcome": stored.get("o"),
            "status": stored.get("st"), "error_code": stored.get("ec"), "messages": stored.get("ms") or [],
            "latency": stored.get("l")}


def _transition(parts: list) -> dict:
    parts = list(parts) + [None] * (6 - len(parts))
    return {"at": parts[0], "from": parts[1] or None, "to": parts[2], "reason": parts[3], "actor": parts[4],
            "attempt": parts[5]}


def with_iso_time(entry: Mapping) -> dict:
    """A history or attempt entry with its time as ISO-8601 (for JSON output)."""
    at = entry.get("at")
    return {**entry, "at": iso_time(at) if isinstance(at, (int, float)) else at}


@dataclass(frozen=True)
class EventRecord:
    """One event's ledger record, decoded.  ``to_dict()`` is what ``wms-relay event --json`` prints.

    ``history``: dicts with at (Unix seconds), from, to, reason, actor, attempt — every transition.
    ``attempts_log``: dicts with attempt, at, outcome, status, error_code, messages, latency.
    ``to_dict()`` renders the times as ISO-8601 (UTC)."""

    operation: str
    key: str
    state: str
    attempts: int
    round_attempts: int
    fingerprint: str
    event: dict
    result: dict | None
    history: tuple[dict, ...]
    attempts_log: tuple[dict, ...]
    lease_owner: str | None = None
    lease_expires_at: float | None = None

    @property
    def created_at(self) -> float | None:
        return self.history[0]["at"] if self.history else None

    @property
    def updated_at(self) -> float | None:
        return self.history[-1]["at"] if self.history else None

    def to_dict(self) -> dict:
        return {
            "operation": self.operation, "key": self.key, "state": self.state, "attempts": self.attempts,
            "round_attempts": self.round_attempts, "fingerprint": self.fingerprint, "event": self.event,
            "result": self.result, "history": [with_iso_time(h) for h in self.history],
            "attempts_log": [with_iso_time(a) for a in self.attempts_log],
            "lease": None if self.lease_owner is None else {
                "owner": self.lease_owner, "expires_at": iso_time(self.lease_expires_at)},
            "created_at": iso_time(self.created_at), "updated_at": iso_time(self.updated_at),
        }


def event_json(fingerprint: str, key: str, fields: Mapping, occurred_at: str | None,
               event_id: str | None) -> str:
    """The stored event (field ``e``): fingerprint first, then what the WMS sent."""
    stored: dict[str, Any] = {"fp": fingerprint, "f": fields}
    if occurred_at is not None:
        stored["at"] = occurred_at
    if event_id != key:  # usually the key is the event id; None is kept as null
        stored["id"] = event_id
    return stored_json(stored, where=f"event {key}")


def parse_record(operation: str, key: str, raw: Mapping) -> EventRecord | None:
    """Decode a record hash (HGETALL reply) into an EventRecord; None for an empty reply."""
    if not raw:
        return None
    fields = {text(k): text(v) for k, v in raw.items()}
    attempts = int(fields.get("n") or 0)
    stored = json.loads(fields["e"]) if fields.get("e") else {}
    story = json.loads(fields.get("h") or "[]")
    lease = fields["l"].split(" ", 1) if fields.get("l") else None
    return EventRecord(
        operation=operation, key=key, state=fields["s"], attempts=attempts,
        round_attempts=attempts - int(fields.get("b") or 0), fingerprint=stored.get("fp", ""),
        event={"operation": operation, "key": key, "fields": stored.get("f", {}),
               "occurred_at": stored.get("at"), "event_id": stored.get("id", key)},
        result=json.loads(fields["rs"]) if fields.get("rs") else None,
        history=tuple(_transition(entry) for entry in story if isinstance(entry, list)),
        attempts_log=tuple(_attempt(entry) for entry in story if isinstance(entry, dict)),
        lease_owner=lease[1] if lease else None,
        lease_expires_at=float(lease[0]) if lease else None,
    )
