"""The dead letters' Redis keys and Lua scripts: every state change of a letter — its id, its write with
every index entry, a person taking or discarding it, its purge — is one script, so it is atomic on the
server; ``worker.store.dead_letters`` is the API, ``worker.store.dead_letter_search`` finds letters with the
two read scripts at the end and keeps what the indexes hold of a letter, ``worker.store.records`` decodes
a letter (``DeadLetter``).  All follow this key layout (``wms`` is the store's namespace):

    wms:dead:seq              counter behind the ids: dl-1, dl-2, ... (short, readable, time-ordered)
    wms:dead:letter:<id>      hash: the letter (readable field names: support staff use redis-cli too)
    wms:dead:open             sorted set  id -> created time: the letters still waiting for a person
    wms:dead:all              sorted set  id -> created time: every letter ever written
    wms:dead:latest           hash  delivery ref -> the newest letter id of that delivery
                              (``operation:key`` for the first destination, ``<destination>/operation:key``
                              for the others: worker.destinations.contract.Destination.delivery_ref)
    wms:request:<id>          the reply of an id allocation, a write, an indexing, a take/discard or a
                              purge, replayed if the call is resent after a timeout
                              (``worker.store.requests``)

and the indexes the search (``worker.store.dead_letter_search``) walks on the server, so a page of 100,000
letters is found without reading them into Python:

    wms:dead:open:operation:<op>          sorted set id -> created time: the open letters of one operation
    wms:dead:open:reason:<reason>         ... of one reason
    wms:dead:open:destination:<name>      ... of one destination (``trademax`` unless the letter says)
    wms:dead:values:<facet>               set: every value the facet has had (the desk's filter choices)
    wms:dead:facets           hash  id -> "operation<TAB>reason<TAB>destination<TAB>status"
    wms:dead:text             hash  id -> what a text search looks in (id, operation, key, reason, detail,
                              messages, event), lower-cased: roughly the letter's size again
    wms:dead:terms            hash  identifier -> the ids of every letter (open or closed) it names, in the
                              order written, space-separated; identifiers: the letter's key and the
                              event's transaction_id, order_no, artno and event_id values (any depth),
                              lower-cased — so "find IO12345" is a lookup, not a walk of every letter
    wms:dead:indexed          "1" once every letter written before the indexes existed is in them

A script that changes state carries a request id (KEYS: last, the reply key) where its reply matters or a
rerun would not land the same state (``worker.store.requests``).
"""
from __future__ import annotations

from worker.store.requests import replaying

# KEYS: the letter, the open set, the all set, the latest-per-delivery hash, the facets hash, the text
# hash, the open sets of its operation, reason and destination, the value sets of operation, reason and
# destination, the terms hash, the reply key.  ARGV: id, operation, key, event, reason, messages,
# attempts, fingerprints, now, detail, destination, facets, text, the delivery's ref
# (worker.destinations.contract.Destination.delivery_ref), then the letter's identifiers (terms).  The
# terms are appended to, so the script carries a request id: a resend replays instead of naming the
# letter twice.
ADD = replaying("""
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'operation', ARGV[2], 'key', ARGV[3], 'event', ARGV[4],
           'reason', ARGV[5], 'messages', ARGV[6], 'attempts', ARGV[7], 'fingerprints', ARGV[8],
           'created_at', ARGV[9], 'detail', ARGV[10], 'status', 'open', 'destination', ARGV[11])
redis.call('ZADD', KEYS[2], ARGV[9], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[9], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[14], ARGV[1])
redis.call('HSET', KEYS[5], ARGV[1], ARGV[12])
redis.call('HSET', KEYS[6], ARGV[1], ARGV[13])
for i = 7, 9 do redis.call('ZADD', KEYS[i], ARGV[9], ARGV[1]) end
redis.call('SADD', KEYS[10], ARGV[2])
redis.call('SADD', KEYS[11], ARGV[5])
redis.call('SADD', KEYS[12], ARGV[11])
for i = 15, #ARGV do
  local ids = redis.call('HGET', KEYS[13], ARGV[i])
  redis.call('HSET', KEYS[13], ARGV[i], ids and (ids .. ' ' .. ARGV[1]) or ARGV[1])
end
return 1
""")

# KEYS: the letter, the open set, the facets hash, the open sets of its operation, reason and
# destination, the reply key.  ARGV: id, new status, now, actor, reason, the facets with the new status.
CLOSE = replaying("""
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return false end
for i = 4, 6 do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'closed_at', ARGV[3], 'closed_by', ARGV[4],
           'close_reason', ARGV[5])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[6])
return redis.call('HGETALL', KEYS[1])
""")

# KEYS: the id counter, the reply key.  The next letter id, replayed if the call is resent.
NEXT_ID = replaying("""
return redis.call('INCR', KEYS[1])
""")

# Index one letter written before the indexes existed.  KEYS: the open set, the facets hash, the text
# hash, the open sets of its operation, reason and destination, the value sets of the three, the terms
# hash, the reply key.  ARGV: id, created time, facets, text, operation, reason, destination, then its
# terms.  The facet sets get it only if it is still open (a person may close it while the index is
# built).  The terms are appended to, so a resend replays (request id) instead of running twice.
INDEX = replaying("""
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
for i = 7, 9 do redis.call('SADD', KEYS[i], ARGV[i - 2]) end
for i = 8, #ARGV do
  local ids = redis.call('HGET', KEYS[10], ARGV[i])
  redis.call('HSET', KEYS[10], ARGV[i], ids and (ids .. ' ' .. ARGV[1]) or ARGV[1])
end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  for i = 4, 6 do redis.call('ZADD', KEYS[i], ARGV[2], ARGV[1]) end
end
return 1
""")


# KEYS: the letter, the open set, the all set, the latest-per-event hash, the facets hash, the text hash,
# the open sets of its operation, reason and destination, the terms hash, the reply key.  ARGV: id, cutoff
# (Unix seconds), the letter's delivery ref (its ``dead:latest`` field: Destination.delivery_ref), then the
# letter's identifiers (terms).  Deletes a letter closed before the cutoff (never
# an open one) with every index entry of it — the search's facets, text and terms too — and returns 1;
# replayed if the call is resent (a resend must not count a deleted letter as kept).  A letter already
# gone loses its leftover entries (0).
PURGE = replaying("""
local function unindex()
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[5], ARGV[1])
  redis.call('HDEL', KEYS[6], ARGV[1])
  for i = 7, 9 do redis.call('ZREM', KEYS[i], ARGV[1]) end
  for i = 4, #ARGV do
    local ids = redis.call('HGET', KEYS[10], ARGV[i])
    if ids then
      local kept = {}
      for id in string.gmatch(ids, '%S+') do
        if id ~= ARGV[1] then kept[#kept + 1] = id end
      end
      if #kept == 0 then redis.call('HDEL', KEYS[10], ARGV[i])
      else redis.call('HSET', KEYS[10], ARGV[i], table.concat(kept, ' ')) end
    end
  end
end
local fields = redis.call('HMGET', KEYS[1], 'status', 'closed_at')
if not fields[1] then
  unindex()
  return 0
end
if fields[1] == 'open' or redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
if (tonumber(fields[2]) or 0) >= tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1])
unindex()
if redis.call('HGET', KEYS[4], ARGV[3]) == ARGV[1] then redis.call('HDEL', KEYS[4], ARGV[3]) end
return 1
""")


# The search's walk (``worker.store.dead_letter_search``), read-only: a page of the matches in one chunk
# of a sorted set, checked against the facets and the text on the server.
#     KEYS[1]  the sorted set walked          KEYS[2]  the facets hash      KEYS[3]  the text hash
#     ARGV     max score, min score, start, chunk, operation, reason, destination, status, needle, skip,
#              want
#     returns  {walked, matched, id...}: ``walked`` ids were looked at from ``start``; ``matched`` of them
#              matched; the ids are the matches numbered ``skip`` .. ``skip + want - 1`` within this chunk
PAGE = """
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', tonumber(ARGV[3]),
                       tonumber(ARGV[4]))
local op, reason, dest, status, needle = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local skip, want = tonumber(ARGV[10]), tonumber(ARGV[11])
local check_facets = op ~= '' or reason ~= '' or dest ~= '' or status ~= ''
local matched, out = 0, {#ids, 0}
for _, id in ipairs(ids) do
  local ok = true
  if check_facets then
    local f = redis.call('HGET', KEYS[2], id)
    if not f then
      ok = false
    else
      local f_op, f_reason, f_dest, f_status =
        string.match(f, '^([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)$')
      ok = (op == '' or op == f_op) and (reason == '' or reason == f_reason)
           and (dest == '' or dest == f_dest) and (status == '' or status == f_status)
    end
  end
  if ok and needle ~= '' then
    local t = redis.call('HGET', KEYS[3], id)
    ok = t ~= false and string.find(t, needle, 1, true) ~= nil
  end
  if ok then
    if matched >= skip and matched < skip + want then out[#out + 1] = id end
    matched = matched + 1
  end
end
out[2] = matched
return out
"""


# The search's identifier lookup, read-only.
#     KEYS[1]  the terms hash                  KEYS[2]  the facets hash      KEYS[3]  the all set
#     ARGV     identifier, min score, max score, operation, reason, destination, status
#     returns  {id1, score1, id2, score2, ...}: every letter the identifier names that passes the filters
BY_TERM = """
local list = redis.call('HGET', KEYS[1], ARGV[1])
if not list then return {} end
local low, high = tonumber(ARGV[2]), tonumber(ARGV[3])
local op, reason, dest, status = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local out, seen = {}, {}
for id in string.gmatch(list, '%S+') do
  if not seen[id] then
    seen[id] = true
    local f = redis.call('HGET', KEYS[2], id)
    local score = tonumber(redis.call('ZSCORE', KEYS[3], id))
    if f and score and score >= low and score <= high then
      local f_op, f_reason, f_dest, f_status = string.match(f, '^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)$')
      if (op == '' or op == f_op) and (reason == '' or reason == f_reason) and (dest == '' or dest == f_dest)
         and (status == '' or status == f_status) then
        out[#out + 1] = id
        out[#out + 1] = tostring(score)
      end
    end
  end
end
return out
"""
