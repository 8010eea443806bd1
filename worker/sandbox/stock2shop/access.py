"""Who may call the fake Stock2Shop, and how often: tokens that expire, and a per-client rate limit.

Tokens (Stock2Shop's "Using the API": "The token is ephemeral, meaning it could expire, in which case you
should authenticate again"): each ``authenticate`` issues a new token that lives ``ttl`` seconds from
issue (0: forever); earlier tokens stay valid until their own expiry, so workers sharing one login are
not logged out by another login.  :meth:`TokenBook.check` says ``valid``, ``expired``, ``unknown`` or
``missing``.

Rate limit (Stock2Shop's "Rate Limits": "may rate limit requests per client … We recommend not more than 1
request per second"): a sliding window per client.  With ``max_rps`` ≥ 1 a client gets at most
``floor(max_rps)`` accepted requests in any 1-second window; below 1, one per ``1/max_rps`` seconds; 0
turns the limit off.  Refused requests do not count (a client that keeps knocking is not locked out
for good).  ``retry_after`` is the whole seconds until the window frees a slot (at least 1).

Both take an injected clock; tokens an injected generator, so tests never sleep and never guess.
"""
from __future__ import annotations

import collections
import math
import secrets
import threading
import time
from typing import Callable

VALID, EXPIRED, UNKNOWN, MISSING = "valid", "expired", "unknown", "missing"


class TokenBook:
    def __init__(self, *, ttl: float, clock: Callable[[], float] = time.time,
                 new_token: Callable[[], str] = lambda: secrets.token_hex(20)) -> None:
        self._lock = threading.Lock()
        self.ttl = ttl
        self._clock = clock
        self._new_token = new_token
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._tokens: dict[str, tuple[str, float]] = {}  # token → (username, issued at)
            self._issued: list[float] = []
            self._refusals = collections.Counter()

    def issue(self, username: str) -> str:
        with self._lock:
            token = self._new_token()
            now = self._clock()
            self._tokens[token] = (username, now)
            self._issued.append(now)
            return token

    def check(self, token: str | None) -> tuple[str, str | None]:
        """(VALID | EXPIRED | UNKNOWN | MISSING, the token's username if known)."""
        with self._lock:
            if not token:
                verdict, username = MISSING, None
            elif token not in self._tokens:
                verdict, username = UNKNOWN, None
            else:
                username, issued = self._tokens[token]
                expired = self.ttl > 0 and self._clock() >= issued + self.ttl
                verdict = EXPIRED if expired else VALID
            if verdict != VALID:
                self._refusals[verdict] += 1
            return verdict, username

    def owner(self, token: str | None) -> str | None:
        """The username a token was issued to, expired or not (the rate limit's client)."""
        with self._lock:
            entry = self._tokens.get(token or "")
            return entry[0] if entry else None

    def snapshot(self) -> dict:
        with self._lock:
            return {"tokens_issued": len(self._issued), "authentications": list(self._issued),
                    "token_refusals": dict(self._refusals)}


class ClientRateLimit:
    def __init__(self, *, max_rps: float, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self.max_rps = max_rps
        self._clock = clock
        if max_rps >= 1:
            self.window, self.limit = 1.0, int(math.floor(max_rps))
        else:
            self.window, self.limit = (1.0 / max_rps if max_rps > 0 else 0.0), 1
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._accepted: dict[str, collections.deque[float]] = {}
            self._refused = 0

    def admit(self, client: str) -> tuple[bool, int]:
        """(True, 0) and count the request, or (False, seconds to wait) when ``client`` is over the limit."""
        if self.max_rps <= 0:
            return True, 0
        with self._lock:
            now = self._clock()
            times = self._accepted.setdefault(client, collections.deque())
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) < self.limit:
                times.append(now)
                return True, 0
            self._refused += 1
            return False, max(1, math.ceil(times[0] + self.window - now))

    def snapshot(self) -> dict:
        with self._lock:
            return {"max_rps": self.max_rps, "rate_limited": self._refused}
