"""The dead letters' Redis keys and Lua scripts: every state change of a letter — its id, its write with
every index entry, a person taking or discarding it, its purge — is one script, so it is atomic on the
server; ``worker.store.dead_letters`` is the API, ``worker.store.dead_letter_search`` finds letters with the
walk at the end and keeps what the indexes hold of a letter, ``worker.store.records`` decodes a letter
(``DeadLetter``).  All follow this key layout (``wms`` is the store's namespace):

    wms:dead:seq              counter behind the ids: dl-1, dl-2, ... (short, readable, time-ordered)
    wms:dead:letter:<id>      hash: the letter's short fields — operation, key, reason, created_at, status,
                              destination (closed_at, closed_by, close_reason once a person closed it;
                              closed_in: the desk's bulk job item that closed it, ``job <id> #<n>``) —
                              readable field names: support staff use redis-cli too (a letter written
                              before issue 21 holds its id and the long parts here as well)
    wms:dead:body:<id>        string: the rest, written once and never changed, as one JSON object:
                              {"event": ..., "messages": ..., "attempts": [...], "fingerprints": ...,
                              "detail": ...} (fingerprints and detail only when there are any)
    wms:dead:open             sorted set  id -> created time: the letters still waiting for a person
    wms:dead:all              sorted set  id -> created time: every letter ever written
    wms:dead:latest           hash  delivery ref -> the newest letter id of that delivery
                              (``operation:key`` for the first destination, ``<destination>/operation:key``
                              for the others: worker.destinations.contract.Destination.delivery_ref)
    wms:audit                 a take or discard appends its audit entry in its own script
                              (``worker.store.audit_log``: with the action, not after it)
    wms:request:<id>          the reply of an id allocation, a write, an indexing, a take/discard or a
                              purge, replayed if the call is resent after a timeout
                              (``worker.store.requests``)

Why a hash and a string: Redis keeps a hash whose values are all short (64 bytes) as one compact listpack,
but one long value (the event) turns the whole hash into a table costing ~70 bytes per field — 1.6 KiB for
a letter that now takes ~0.8 KiB.  Letters written before (issue 21) hold everything in the hash and no
body; they are read, searched, closed and purged as they are.

The indexes the search (``worker.store.dead_letter_search``) walks on the server hold ids, never copies of
a letter (the walk reads the letter itself), so a page of 100,000 letters is found without reading them
into Python:

    wms:dead:open:operation:<op>          sorted set id -> created time: the open letters of one operation
    wms:dead:open:reason:<reason>         ... of one reason
    wms:dead:open:destination:<name>      ... of one destination (``trademax`` unless the letter says)
    wms:dead:values:<facet>               set: every value the facet has had (the desk's filter choices)
    wms:dead:terms            hash  identifier -> the ids of every letter (open or closed) it names, in the
                              order written, space-separated; identifiers: the letter's key and the
                              event's transaction_id, order_no, artno and event_id values (any depth),
                              lower-cased — so "find IO12345" is a lookup, not a walk of every letter
    wms:dead:indexed          "1" once every letter written before the indexes existed is in them

(Before issue 21 two more hashes copied every letter: ``wms:dead:facets`` and ``wms:dead:text``, the
latter roughly the letter's size again; ``DeadLetters.drop_legacy_indexes`` removes them.)

A script that changes state carries a request id (KEYS: last, the reply key) where its reply matters or a
rerun would not land the same state (``worker.store.requests``).
"""
from __future__ import annotations

from worker.store.audit_log import APPEND_LUA
from worker.store.requests import replaying

# A letter without a destination field was written before there were other destinations: Trademax's.
DEFAULT_DESTINATION = "trademax"

# KEYS: the letter, its body, the open set, the all set, the latest-per-delivery hash, the open sets of
# its operation, reason and destination, the value sets of operation, reason and destination, the terms
# hash, the reply key.  ARGV: id, operation, key, reason, now, destination, body, the delivery's ref
# (worker.destinations.contract.Destination.delivery_ref), then the letter's identifiers (terms).  The
# terms are appended to, so the script carries a request id: a resend replays instead of naming the
# letter twice.
ADD = replaying("""
redis.call('HSET', KEYS[1], 'operation', ARGV[2], 'key', ARGV[3], 'reason', ARGV[4], 'created_at', ARGV[5],
           'status', 'open', 'destination', ARGV[6])
redis.call('SET', KEYS[2], ARGV[7])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
redis.call('HSET', KEYS[5], ARGV[8], ARGV[1])
for i = 6, 8 do redis.call('ZADD', KEYS[i], ARGV[5], ARGV[1]) end
redis.call('SADD', KEYS[9], ARGV[2])
redis.call('SADD', KEYS[10], ARGV[4])
redis.call('SADD', KEYS[11], ARGV[6])
for i = 9, #ARGV do
  local ids = redis.call('HGET', KEYS[12], ARGV[i])
  redis.call('HSET', KEYS[12], ARGV[i], ids and (ids .. ' ' .. ARGV[1]) or ARGV[1])
end
return 1
""")

# KEYS: the letter, its body, the open set, the open sets of its operation, reason and destination, [the
# audit stream,] the reply key.  ARGV: id, new status, now, actor, reason, the bulk job's item that closes
# it ('' for none: kept as ``closed_in``), [the audit entry: PendingEntry.args].  Returns {the letter's
# HGETALL, its body or false}, or false when it was not open; the audit entry is appended only if it closed.
CLOSE = replaying(APPEND_LUA + """
if redis.call('ZREM', KEYS[3], ARGV[1]) == 0 then return false end
for i = 4, 6 do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'closed_at', ARGV[3], 'closed_by', ARGV[4],
           'close_reason', ARGV[5])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'closed_in', ARGV[6]) end
if #KEYS == 8 then append_entry(KEYS[7], 7) end
return {redis.call('HGETALL', KEYS[1]), redis.call('GET', KEYS[2])}
""")

# KEYS: the id counter, the reply key.  The next letter id, replayed if the call is resent.
NEXT_ID = replaying("""
return redis.call('INCR', KEYS[1])
""")

# Index one letter written before the indexes existed.  KEYS: the open set, the open sets of its
# operation, reason and destination, the value sets of the three, the terms hash, the reply key.  ARGV:
# id, created time, operation, reason, destination, then its terms.  The facet sets get it only if it is
# still open (a person may close it while the index is built).  The terms are appended to, so a resend
# replays (request id) instead of running twice.
INDEX = replaying("""
for i = 5, 7 do redis.call('SADD', KEYS[i], ARGV[i - 2]) end
for i = 6, #ARGV do
  local ids = redis.call('HGET', KEYS[8], ARGV[i])
  redis.call('HSET', KEYS[8], ARGV[i], ids and (ids .. ' ' .. ARGV[1]) or ARGV[1])
end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  for i = 2, 4 do redis.call('ZADD', KEYS[i], ARGV[2], ARGV[1]) end
end
return 1
""")


# KEYS: the letter, its body, the open set, the all set, the latest-per-event hash, the open sets of its
# operation, reason and destination, the terms hash, the reply key.  ARGV: id, cutoff (Unix seconds), the
# letter's delivery ref (its ``dead:latest`` field: Destination.delivery_ref), then the letter's
# identifiers (terms).  Deletes a letter closed before the cutoff (never an open one) with its body and
# every index entry of it — the search's terms too — and returns 1; replayed if the call is resent (a
# resend must not count a deleted letter as kept).  A letter already gone loses its leftover entries (0).
PURGE = replaying("""
local function unindex()
  redis.call('ZREM', KEYS[4], ARGV[1])
  for i = 6, 8 do redis.call('ZREM', KEYS[i], ARGV[1]) end
  for i = 4, #ARGV do
    local ids = redis.call('HGET', KEYS[9], ARGV[i])
    if ids then
      local kept = {}
      for id in string.gmatch(ids, '%S+') do
        if id ~= ARGV[1] then kept[#kept + 1] = id end
      end
      if #kept == 0 then redis.call('HDEL', KEYS[9], ARGV[i])
      else redis.call('HSET', KEYS[9], ARGV[i], table.concat(kept, ' ')) end
    end
  end
end
local fields = redis.call('HMGET', KEYS[1], 'status', 'closed_at')
if not fields[1] then
  redis.call('DEL', KEYS[2])
  unindex()
  return 0
end
if fields[1] == 'open' or redis.call('ZSCORE', KEYS[3], ARGV[1]) then return 0 end
if (tonumber(fields[2]) or 0) >= tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
unindex()
if redis.call('HGET', KEYS[5], ARGV[3]) == ARGV[1] then redis.call('HDEL', KEYS[5], ARGV[3]) end
return 1
""")


# The search's walk (``worker.store.dead_letter_search``), read-only: which letters of one chunk of ids
# (read from the walked sorted set just before) match the facets and the text, checked on the server
# against the letters themselves.
#     KEYS     the chunk's letters, then their bodies (KEYS[n + i] is the body of KEYS[i])
#     ARGV     operation, reason, destination, status, needle (lower-cased), skip, want, the destination a
#              letter without one is (Trademax's), then the chunk's ids (ARGV[8 + i] is KEYS[i]'s)
#     returns  {matched, id...}: ``matched`` letters of the chunk matched; the ids are the matches numbered
#              ``skip`` .. ``skip + want - 1`` within this chunk
# The text looked in: id, operation, key, reason and the body (event, messages, attempts, detail) — or,
# for a letter written before bodies, its detail, messages and event — lower-cased for ASCII and the
# Latin-1 letters (Å, Ä, Ö, É, Ü, ...): Lua's string.lower knows only ASCII.
PAGE = """
local op, reason, dest, status, needle = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local skip, want, default_dest = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local n = #KEYS / 2
local check_facets = op ~= '' or reason ~= '' or dest ~= '' or status ~= ''

local function lower(text)
  text = string.lower(text)
  return (string.gsub(text, '\\195([\\128-\\158])', function(c)
    local b = string.byte(c)
    if b == 151 then return '\\195' .. c end  -- the multiplication sign has no lower case
    return '\\195' .. string.char(b + 32)
  end))
end

local matched, out = 0, {0}
for i = 1, n do
  local f = redis.call('HMGET', KEYS[i], 'operation', 'reason', 'destination', 'status', 'key')
  local ok = f[1] ~= false
  if ok and check_facets then
    ok = (op == '' or op == f[1]) and (reason == '' or reason == f[2])
         and (dest == '' or dest == (f[3] or default_dest)) and (status == '' or status == (f[4] or 'open'))
  end
  if ok and needle ~= '' then
    local body = redis.call('GET', KEYS[n + i])
    if not body then  -- written before bodies: the long fields are in the hash
      local old = redis.call('HMGET', KEYS[i], 'detail', 'messages', 'event')
      body = (old[1] or '') .. ' ' .. (old[2] or '') .. ' ' .. (old[3] or '')
    end
    local text = lower(ARGV[8 + i] .. ' ' .. f[1] .. ' ' .. (f[5] or '') .. ' ' .. (f[2] or '') .. ' '
                       .. body)
    ok = string.find(text, needle, 1, true) ~= nil
  end
  if ok then
    if matched >= skip and matched < skip + want then out[#out + 1] = ARGV[8 + i] end
    matched = matched + 1
  end
end
out[1] = matched
return out
"""
