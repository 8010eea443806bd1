"""The desk's sign-in limits and counts: how many sign-ins one name may try from one address, and one
address with any names, before it must wait — decided and counted in one script, so parallel guesses
cannot all pass the check before any is counted.

Rules (docs/operations.md, "The support desk"):

- at most :data:`MAX_FAILURES_PER_NAME` failed sign-ins for one name *from one address*, and
  :data:`MAX_FAILURES_PER_ADDRESS` from one address for any names, within :data:`FAILURE_WINDOW`
  seconds of the first of them; then that name from that address (or that address) waits until the
  window of its first failure has passed — never longer: a refused try while waiting counts nothing and
  moves nothing.  Someone guessing an operator's password from elsewhere cannot lock the operator out;
- an attempt is counted when it is let through (:meth:`SignIns.attempt`, before the password is checked):
  twelve guesses at once get at most the limit checked, the rest wait;
- a right password ends its name + address count (and takes its own attempt back from the address's);
- a failure is counted (a metric), not written to the audit log one by one: the audit log gets one
  entry per *lockout* — the failure that reaches a limit — and one per sign-in.

Key layout (a name appears only as an HMAC under the desk's session key: what someone typed as a name
may be a password):

    wms:desk:failures:user:<hmac>:<address>   hash: count, first (Unix seconds) — one name from one address
    wms:desk:failures:address:<address>       hash: count, first — one address, any names
    wms:desk:sign-ins                          hash: counters since the store began — signed_in, refused,
                                               blocked, lockouts (``wms-relay metrics``)

Every script here changes state and carries a request id (worker.store.requests): a resend replays.
"""
from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Callable

from worker.encoding import text
from worker.store.requests import replaying, reply_key, request_id

FAILURE_WINDOW = 15 * 60
MAX_FAILURES_PER_NAME = 5
MAX_FAILURES_PER_ADDRESS = 30
COUNTS_KEY = "wms:desk:sign-ins"
COUNTERS = ("signed_in", "refused", "blocked", "lockouts")

# KEYS[1] name+address, KEYS[2] address, KEYS[3] counts.  ARGV: now, window, name limit, address limit.
# Returns {'blocked', seconds to wait} (nothing counted but 'blocked') or {'go', name count, address count}
# (this attempt counted in both).
_ATTEMPT = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local limits = {tonumber(ARGV[3]), tonumber(ARGV[4])}
local found, wait = {}, 0
for i = 1, 2 do
  local c = redis.call('HMGET', KEYS[i], 'count', 'first')
  local count, first = tonumber(c[1] or '0') or 0, tonumber(c[2] or '') or now
  if count > 0 and now - first >= window then count, first = 0, now end
  if count == 0 then first = now end
  found[i] = {count, first}
  if count >= limits[i] then wait = math.max(wait, first + window - now) end
end
if wait > 0 then
  redis.call('HINCRBY', KEYS[3], 'blocked', 1)
  return {'blocked', string.format('%.3f', wait)}
end
for i = 1, 2 do
  local count, first = found[i][1] + 1, found[i][2]
  redis.call('HSET', KEYS[i], 'count', count, 'first', string.format('%.3f', first))
  redis.call('PEXPIRE', KEYS[i], math.ceil((first + window - now) * 1000) + 1000)
  found[i][1] = count
end
return {'go', found[1][1], found[2][1]}
"""

# KEYS[1] name+address, KEYS[2] address, KEYS[3] counts.  The attempt was the right password: its name +
# address count ends, the address's count gives this attempt back.
_SIGNED_IN = """
redis.call('DEL', KEYS[1])
local count = tonumber(redis.call('HGET', KEYS[2], 'count') or '0') or 0
if count > 0 then redis.call('HSET', KEYS[2], 'count', count - 1) end
redis.call('HINCRBY', KEYS[3], 'signed_in', 1)
return 1
"""

# KEYS[1] counts.  ARGV: lockouts (0, 1 or 2) this refusal made.
_REFUSED = """
redis.call('HINCRBY', KEYS[1], 'refused', 1)
if tonumber(ARGV[1]) > 0 then redis.call('HINCRBY', KEYS[1], 'lockouts', tonumber(ARGV[1])) end
return 1
"""


@dataclass(frozen=True)
class Attempt:
    """What :meth:`SignIns.attempt` said: ``wait`` > 0 — refused unchecked, try again in that many
    seconds; else checked, with this attempt's place in each count (``name_count``, ``address_count``)."""

    name_key: str
    address_key: str
    wait: float = 0.0
    name_count: int = 0
    address_count: int = 0

    @property
    def blocked(self) -> bool:
        return self.wait > 0


@dataclass(frozen=True)
class Lockout:
    """A refusal that reached a limit: ``what`` is ``name`` (this name from this address) or ``address``."""

    what: str
    failures: int


class SignIns:
    """The desk's sign-in limits in one Redis (any redis-py client).  ``secret``: the desk's session key
    (names are kept as HMACs under it)."""

    def __init__(self, redis_client, secret: str, *, clock: Callable[[], float] = time.time,
                 window: float = FAILURE_WINDOW, per_name: int = MAX_FAILURES_PER_NAME,
                 per_address: int = MAX_FAILURES_PER_ADDRESS) -> None:
        self._redis = redis_client
        self._secret = secret.encode()
        self._clock = clock
        self.window, self.per_name, self.per_address = float(window), int(per_name), int(per_address)
        self._attempt = redis_client.register_script(replaying(_ATTEMPT))
        self._signed_in = redis_client.register_script(replaying(_SIGNED_IN))
        self._refused = redis_client.register_script(replaying(_REFUSED))

    def _keys(self, name: str, address: str) -> tuple[str, str]:
        digest = hmac.new(self._secret, name.encode("utf-8", "replace"), "sha256").hexdigest()
        return f"wms:desk:failures:user:{digest}:{address}", f"wms:desk:failures:address:{address}"

    def attempt(self, name: str, address: str) -> Attempt:
        """May ``name`` try a password from ``address`` now?  If so the attempt is counted already."""
        name_key, address_key = self._keys(name, address)
        reply = [text(part) for part in self._attempt(
            keys=[name_key, address_key, COUNTS_KEY, reply_key("wms", request_id())],
            args=[f"{self._clock():.3f}", f"{self.window:g}", self.per_name, self.per_address])]
        if reply[0] == "blocked":
            return Attempt(name_key, address_key, wait=max(float(reply[1]), 0.001))
        return Attempt(name_key, address_key, name_count=int(reply[1]), address_count=int(reply[2]))

    def signed_in(self, attempt: Attempt) -> None:
        """The attempt's password was right."""
        self._signed_in(keys=[attempt.name_key, attempt.address_key, COUNTS_KEY,
                              reply_key("wms", request_id())])

    def refused(self, attempt: Attempt) -> list[Lockout]:
        """The attempt's password was wrong: counted; the lockouts it made (the one refusal that reaches a
        limit makes it: each lockout is said once)."""
        lockouts = [Lockout(what, count) for what, count, limit in (
            ("name", attempt.name_count, self.per_name), ("address", attempt.address_count, self.per_address))
            if count == limit]
        self._refused(keys=[COUNTS_KEY, reply_key("wms", request_id())], args=[len(lockouts)])
        return lockouts


def sign_in_counts(redis_client) -> dict[str, int]:
    """The counters since the store began: signed_in, refused, blocked, lockouts."""
    raw = {text(k): text(v) for k, v in redis_client.hgetall(COUNTS_KEY).items()}
    return {name: int(raw.get(name) or 0) for name in COUNTERS}
