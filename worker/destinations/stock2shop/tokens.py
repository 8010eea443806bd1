"""Stock2Shop's login token, shared by every worker through Redis: one login for all of them.

"The token is ephemeral, meaning it could expire, in which case you should authenticate again" (Stock2Shop's
API document, "Using the API").  Every thread of every worker process uses the token in Redis.  When there is
none, or a call is refused with 401, exactly one of them logs in — under a Redis lock — and the others wait
for the token it stores; a thread whose token was already replaced by another's login just takes the new
one.  So a token expiring under 16 x N busy threads costs one login, not 16 x N (each login also spends
the per-client request budget).

    wms:stock2shop:token         the current token (a secret: only here and in the request itself — never
                                 in the ledger, a log line, an error text or a task)
    wms:stock2shop:login         the lock held by the one thread logging in (SET NX PX, owner id)

The store-call rule (``worker.store.requests``): the lock's SET NX may be resent by redis-py after a
timeout, and the resend answers "not set" when the first one did set it — so a thread that is refused
the lock looks whether it holds it after all (its own owner id) before it waits.  The release
(compare-and-delete) is idempotent by nature, and the token's SET writes a given value.
"""
from __future__ import annotations

import time
import uuid
from typing import Callable

from worker.encoding import text
from worker.errors import TransientError

TOKEN_KEY = "wms:stock2shop:token"
LOCK_KEY = "wms:stock2shop:login"

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SharedToken:
    """The token in Redis and the one login that renews it (``login()`` returns a fresh token)."""

    def __init__(self, redis_client, login: Callable[[], str], *, lock_seconds: float,
                 wait_seconds: float, poll_seconds: float = 0.05, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._redis = redis_client
        self._login = login
        self._lock_ms = int(lock_seconds * 1000)
        self._wait = wait_seconds
        self._poll = poll_seconds
        self._sleep = sleep
        self._monotonic = monotonic
        self._release = redis_client.register_script(_RELEASE)

    def current(self) -> str:
        """The shared token, logging in first when there is none."""
        token = text(self._redis.get(TOKEN_KEY))
        return token or self.renew(stale="")

    def renew(self, *, stale: str) -> str:
        """A token other than ``stale`` (the one just refused): another thread's fresh login if there is
        one, else this thread logs in, once, under the lock."""
        deadline = self._monotonic() + self._wait
        owner = uuid.uuid4().hex
        while True:
            token = text(self._redis.get(TOKEN_KEY))
            if token and token != stale:
                return token
            if self._redis.set(LOCK_KEY, owner, nx=True, px=self._lock_ms) or \
                    text(self._redis.get(LOCK_KEY)) == owner:
                try:
                    token = text(self._redis.get(TOKEN_KEY))
                    if token and token != stale:  # renewed between our look and the lock
                        return token
                    token = self._login()
                    self._redis.set(TOKEN_KEY, token)
                    return token
                finally:
                    self._release(keys=[LOCK_KEY], args=[owner])
            if self._monotonic() >= deadline:
                raise TransientError("another worker's Stock2Shop login did not finish in time",
                                     destination="stock2shop", operation="authenticate")
            self._sleep(self._poll)

    def forget(self, token: str) -> None:
        """Drop ``token`` if it is still the shared one (tests; a person rotating the password)."""
        if text(self._redis.get(TOKEN_KEY)) == token:
            self._redis.delete(TOKEN_KEY)
