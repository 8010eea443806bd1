"""The ledger's Lua scripts: each state change of a record is one script, so it is atomic on the server.
``worker.store.records`` decodes what they store and ``worker.store.ledger`` is the API; all three
follow the key and field layout below.

Every script gets the same KEYS, in this order (see ``worker.store.ledger.Ledger._keys``):

    KEYS[1]     the event's record (a hash; short field names, see below)
    KEYS[2]     lifetime totals of final states (a hash: delivered, superseded, discarded)
    KEYS[3]     deliveries and failures per minute (a hash: Unix minute -> deliveries, "f" + Unix minute
                -> failures, i.e. moves to retrying, uncertain or dead; minutes older than the window are
                dropped when a new minute starts) — a few hundred fields in all, not one entry per event
    KEYS[4..9]  one sorted set per open state, scored by the time the event entered it:
                accepted, sending, retrying, waiting, uncertain, dead
    KEYS[10]    the event's operation's settled records that still keep their details (a list of keys,
                pushed as each enters a final state, so oldest first; ~10 B an entry where a sorted set
                took ~94): what ``worker.store.settled_records`` compacts after SETTLED_DETAIL_HOURS
    KEYS[11]    (accept, claim, transition, attempt log, fill in) the request's reply key: a resent call
                replays its first reply instead of running twice (``worker.store.requests``)
                (admit: KEYS[11] is the task queue's list, KEYS[12] the reply key)

The record hash keeps as few fields as it can (each field of a hash that holds a long value costs
Redis ~25-40 bytes of bookkeeping, more when its table grows), so a delivered event has five:

    s   state                      n   attempts (claims) so far
    e   the event, fixed at accept: {"fp": fingerprint, "f": fields, "at": occurred_at, "id": event_id}
        ("fp" first, so a script reads it with one pattern; "id" left out when it equals the key)
    rs  the destination's stored result (JSON)
    h   the event's story, oldest first, one JSON array of two kinds of entry:
        [t, from, to, reason, actor?, attempt?]                     a transition ("" from: created)
        {"n": attempt, "t": t, "o": outcome, "st": status, "ec": error_code, "ms": messages, "l": latency}
                                                                    a send attempt (empty parts left out)
    l   the lease, "expiry owner" (only while sending)     b  attempts when last reopened (after a reopen)

A settled record (delivered, superseded, discarded) keeps all that for SETTLED_DETAIL_HOURS; then
``worker.store.settled_records`` compacts it to what dedup, dispatch ids and ``wms-relay event`` need —
four or five short fields, so that Redis keeps the hash in its small (listpack) form, ~200 B in all:

    s   state                      n   attempts
    e   the fingerprint's first 32 hex digits, bare (no JSON: an ``e`` not starting with ``{`` is the
        mark of a compacted record); an event met again is matched against it (``same_print``)
    rs  {"dispatch_id": ...}, only when the result named one
    c   "<Unix seconds it settled> <one-line outcome>" (the last transition's reason)

Times are Unix seconds with milliseconds, passed in by the caller (the clock is injected; the scripts
never read the server's for what they record), as text that is already a valid JSON number.  One
script reads the server's clock, and only to decide whether to run at all: ADMIT's "not after"
(below).  Declaring every key a script may touch keeps the scripts correct on any Redis >= 6 / Valkey.
"""
from __future__ import annotations

from worker.store.requests import replaying

OPEN_STATES = ("accepted", "sending", "retrying", "waiting", "uncertain", "dead")
FINAL_STATES = ("delivered", "superseded", "discarded")

_PRELUDE = """
local OPEN = {accepted=4, sending=5, retrying=6, waiting=7, uncertain=8, dead=9}
local FINAL = {delivered=true, superseded=true, discarded=true}

local function enc(text) return cjson.encode(text) end
-- The stored fingerprint: the event JSON's "fp", or a compacted record's bare (shortened) one.
local function fingerprint_of(event)
  return string.match(event or '', '^{"fp":"(%x+)"') or string.match(event or '', '^(%x+)$')
end
-- Does an event with fingerprint ``print`` match the stored one (a compacted record keeps its start)?
local function same_print(stored, print)
  return stored ~= '' and stored == string.sub(print, 1, #stored)
end
-- The lease field is "expiry owner": (expiry, owner), or ('0', '') when there is none.
local function lease_of(lease)
  if not lease then return '0', '' end
  local expiry, owner = string.match(lease, '^(%S+) (.*)$')
  return expiry or '0', owner or ''
end

-- The event's story (field h, a JSON array) with ``entry`` appended: one or more ready-made JSON values,
-- comma-joined.  ``current``: the story as the caller read it (false: none yet); nil to read it here.
local function told(entry, current)
  if current == nil then current = redis.call('HGET', KEYS[1], 'h') end
  if current and #current > 2 then return string.sub(current, 1, -2) .. ',' .. entry .. ']' end
  return '[' .. entry .. ']'
end

local function tell(entry) redis.call('HSET', KEYS[1], 'h', told(entry)) end

local function history_entry(now, from, to, reason, actor, attempt)
  local parts = {now, enc(from), enc(to), enc(reason)}
  if actor ~= '' then parts[5] = enc(actor) elseif attempt ~= '' then parts[5] = 'null' end
  if attempt ~= '' then parts[6] = attempt end
  return '[' .. table.concat(parts, ',') .. ']'
end

local function history(now, from, to, reason, actor, attempt)
  tell(history_entry(now, from, to, reason, actor, attempt))
end

-- Keep the indexes, totals and expiry in step with a state change.
local function moved(member, from, to, now, retention, window)
  if from and OPEN[from] then redis.call('ZREM', KEYS[OPEN[from]], member) end
  if OPEN[to] then redis.call('ZADD', KEYS[OPEN[to]], now, member) end
  if FINAL[to] and from ~= to then redis.call('HINCRBY', KEYS[2], to, 1) end
  -- The key alone (the list is the operation's); a record that leaves its final state keeps its entry:
  -- the compaction passes over a record that is not settled (and meets it again if it settles again).
  if FINAL[to] then redis.call('RPUSH', KEYS[10], string.match(member, '^[^:]*:(.*)$') or member) end
  if FINAL[to] and tonumber(retention) > 0 then
    redis.call('EXPIRE', KEYS[1], retention)
  elseif not (from and OPEN[from]) then
    redis.call('PERSIST', KEYS[1])  -- a record in an open state never has an expiry: only a final one's ends
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
ACCEPT = _PRELUDE + replaying("""
local found = redis.call('HMGET', KEYS[1], 's', 'e', 'n')
if found[1] then
  local stored = fingerprint_of(found[2]) or ''
  if same_print(stored, ARGV[1]) then return {'known', found[1], stored, found[3]} end
  return {'conflict', found[1], stored, found[3]}
end
redis.call('HSET', KEYS[1], 's', 'accepted', 'n', 0, 'e', ARGV[2])
history(ARGV[3], '', 'accepted', 'accepted', '', '')
moved(ARGV[4], nil, 'accepted', ARGV[3], 0, 0)
return {'accepted', 'accepted', ARGV[1], '0'}
""")

# The door's admission of one event, in one step: ACCEPT, and unless the event is settled, its task message
# pushed onto its queue — so an event is fully admitted (recorded *and* queued) or not at all.  "Not
# after": a store time (Unix seconds) past which the script does nothing and answers 'late': the door
# that sent it has given up (it answered 503, "nothing of it was kept") when a stalled store runs it on
# waking.  ARGV: fingerprint, event JSON, now, member, not after ('' for none), task message.  KEYS[11]:
# the queue's list.  Returns ACCEPT's four values and 1 if the message was pushed, 0 if not; or {'late'}.
ADMIT = _PRELUDE + replaying("""
if ARGV[5] ~= '' then
  local t = redis.call('TIME')
  if tonumber(t[1]) + tonumber(t[2]) / 1000000 > tonumber(ARGV[5]) then return {'late'} end
end
local found = redis.call('HMGET', KEYS[1], 's', 'e', 'n')
local status, state = 'accepted', 'accepted'
if found[1] then
  local stored = fingerprint_of(found[2]) or ''
  if not same_print(stored, ARGV[1]) then return {'conflict', found[1], stored, found[3]} end
  status, state = 'known', found[1]
else
  redis.call('HSET', KEYS[1], 's', 'accepted', 'n', 0, 'e', ARGV[2])
  history(ARGV[3], '', 'accepted', 'accepted', '', '')
  moved(ARGV[4], nil, 'accepted', ARGV[3], 0, 0)
end
if FINAL[state] or state == 'dead' or state == 'uncertain' then
  return {status, state, ARGV[1], found[3] or '0', 0}
end
redis.call('LPUSH', KEYS[11], ARGV[6])
return {status, state, ARGV[1], found[3] or '0', 1}
""")

# Take back an admission the door gave up on (it answered 503) although the store may have run it in time
# (a store frozen between running the script and sending its answer).  KEYS as ADMIT's, KEYS[12] being
# that admission's reply key.  ARGV: fingerprint, member, task message.  Only what that very admission
# did, and only while nothing moved on: its message still on the queue (LREM: a worker that took it
# already delivers the event), its record still as it left it.  Idempotent by itself (no request id):
# 'never' (the admission did not run, or ran late), 'nothing' (it queued nothing), 'taken' (its message is
# gone: a worker has it), 'unqueued' (its message removed; the record was not its own), 'withdrawn'.
WITHDRAW_ADMISSION = _PRELUDE + """
local seen = redis.call('GET', KEYS[12])
if not seen then return 'never' end
local reply = cjson.decode(seen)
if reply[1] == 'late' then return 'never' end
if reply[1] == 'conflict' or reply[5] == 0 then return 'nothing' end
if redis.call('LREM', KEYS[11], 1, ARGV[3]) == 0 then return 'taken' end
if reply[1] ~= 'accepted' then return 'unqueued' end
local r = redis.call('HMGET', KEYS[1], 's', 'e', 'n')
if r[1] ~= 'accepted' or r[3] ~= '0' or fingerprint_of(r[2]) ~= ARGV[1] then return 'unqueued' end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[OPEN.accepted], ARGV[2])
return 'withdrawn'
"""

# The ledger's steps as Lua functions (each script below is one or two of them; worker.flow.send_steps
# composes them with flow control's and the stock order's).  ``r`` is a record as read by
# HMGET s, e, l, b, rs, n, h (false where missing): one read serves the accept, the claim and the story.
_STEPS = """
-- Record a new event in 'accepted', or recognise a known one.  Returns the record and 'accepted' or 'known';
-- for another payload under the key: nil and the conflict reply.
local function accept_record(fingerprint, body, now, member)
  local r = redis.call('HMGET', KEYS[1], 's', 'e', 'l', 'b', 'rs', 'n', 'h')
  if r[1] then
    local stored = fingerprint_of(r[2]) or ''
    if not same_print(stored, fingerprint) then return nil, {'conflict', r[1], stored, r[6]} end
    return r, 'known'
  end
  local story = '[' .. history_entry(now, '', 'accepted', 'accepted', '', '') .. ']'
  redis.call('HSET', KEYS[1], 's', 'accepted', 'n', 0, 'e', body, 'h', story)
  moved(member, nil, 'accepted', now, 0, 0)
  return {'accepted', body, false, false, false, '0', story}, 'accepted'
end

-- Why ``owner`` may not claim the record now (the claim's reply), or nil when it may.
local function claim_refusal(r, owner, now)
  local state = r[1]
  local held_until, holder = lease_of(r[3])
  if FINAL[state] then return {'done', state, r[5] or ''} end
  if state == 'dead' or state == 'uncertain' then return {'parked', state} end
  if state == 'sending' and holder ~= owner and tonumber(held_until) > tonumber(now) then
    return {'busy', state, holder, held_until}
  end
  return nil
end

-- Claim a record that exists and whose fingerprint matched.
local function claim_record(r, owner, now, expiry, member)
  local refused = claim_refusal(r, owner, now)
  if refused then return refused end
  local state = r[1]
  local _, holder = lease_of(r[3])
  local reason = 'claimed'
  if state == 'sending' then
    if holder == owner then reason = 'claimed again' else reason = 'claimed: previous lease expired' end
  end
  local attempts = (tonumber(r[6] or '0') or 0) + 1
  local entry = history_entry(now, state, 'sending', reason, '', tostring(attempts))
  redis.call('HSET', KEYS[1], 's', 'sending', 'l', expiry .. ' ' .. owner, 'n', tostring(attempts),
             'h', told(entry, r[7]))
  moved(member, state, 'sending', now, 0, 0)
  return {'claimed', state, attempts, attempts - tonumber(r[4] or '0'), holder}
end

-- Move a record on (see TRANSITION for the arguments).  ``by_story``: a call that already ran — the record
-- is in ``to`` and its story holds this very attempt entry ``log`` — answers {'ok', state, 'again'} and
-- changes nothing (so its resend is harmless without a request id: worker.flow.send_steps' delivered step).
local function transition_record(to, reason, owner, actor, result, attempt, expected, now, retention, window,
                                 member, log, reopen, by_story)
  local r = redis.call('HMGET', KEYS[1], 's', 'l', 'n', 'h')
  local state = r[1]
  if not state then return {'missing', ''} end
  if by_story and log ~= '' and state == to and r[4] and string.find(r[4], log, 1, true) then
    return {'ok', state, 'again'}
  end
  if expected ~= '' and not string.find(expected, ',' .. state .. ',', 1, true) then
    return {'refused', state}
  end
  local _, holder = lease_of(r[2])
  if owner ~= '' and holder ~= owner then return {'refused', state} end
  if r[2] then redis.call('HDEL', KEYS[1], 'l') end
  local entry = history_entry(now, state, to, reason, actor, attempt)
  if log ~= '' then entry = log .. ',' .. entry end
  local fields = {'s', to}
  if result ~= '' then fields[#fields + 1] = 'rs'; fields[#fields + 1] = result end
  if reopen == '1' then fields[#fields + 1] = 'b'; fields[#fields + 1] = r[3] or '0' end
  fields[#fields + 1] = 'h'
  fields[#fields + 1] = told(entry, r[4])
  redis.call('HSET', KEYS[1], unpack(fields))
  moved(member, state, to, now, retention, window)
  return {'ok', state}
end
"""
STEPS = _PRELUDE + _STEPS  # for scripts composed elsewhere (worker.flow.send_steps); KEYS[1..10] as above

# ARGV: fingerprint, owner, now, lease expiry, member
CLAIM = STEPS + replaying("""
local r = redis.call('HMGET', KEYS[1], 's', 'e', 'l', 'b', 'rs', 'n', 'h')
if not r[1] then return {'unknown'} end
local stored = fingerprint_of(r[2]) or ''
if not same_print(stored, ARGV[1]) then return {'conflict', r[1], stored} end
return claim_record(r, ARGV[2], ARGV[3], ARGV[4], ARGV[5])
""")

# ACCEPT then CLAIM in one step (one round trip for the worker).  ARGV: fingerprint, event JSON, now,
# member, owner, lease expiry.  Returns ACCEPT's four values, then (unless a conflict) CLAIM's reply.
ACCEPT_AND_CLAIM = STEPS + replaying("""
local r, status = accept_record(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if not r then return status end
local reply = {status, r[1], ARGV[1], r[6] or '0'}
for _, part in ipairs(claim_record(r, ARGV[5], ARGV[3], ARGV[6], ARGV[4])) do reply[#reply + 1] = part end
return reply
""")

# ARGV: to, reason, owner, actor, result JSON, attempt, expected states (",a,b,"), now, retention,
#       window, member, attempt entry JSON, reopen ("1": a new round of attempts starts)
TRANSITION = STEPS + replaying("""
return transition_record(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9],
                         ARGV[10], ARGV[11], ARGV[12], ARGV[13], false)
""")

# A person adds what the destination's answer lacked to a settled record's result (a dispatch id Trademax
# did not give), compare-and-set on the result as read, so of two people exactly one adds it.
# ARGV: expected state, the result as read ('' if none), the new result JSON, reason, actor, now
FILL_IN_RESULT = _PRELUDE + replaying("""
local r = redis.call('HMGET', KEYS[1], 's', 'rs')
if not r[1] then return {'missing', ''} end
if r[1] ~= ARGV[1] then return {'refused', r[1]} end
if (r[2] or '') ~= ARGV[2] then return {'changed', r[1]} end
redis.call('HSET', KEYS[1], 'rs', ARGV[3])
history(ARGV[6], r[1], r[1], ARGV[4], ARGV[5], '')
return {'ok', r[1]}
""")

# ARGV: owner, attempt entry JSON
RECORD_ATTEMPT = _PRELUDE + replaying("""
local r = redis.call('HMGET', KEYS[1], 's', 'l')
if not r[1] then return 0 end
local _, holder = lease_of(r[2])
if ARGV[1] ~= '' and holder ~= ARGV[1] then return 0 end
tell(ARGV[2])
return 1
""")
