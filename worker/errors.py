"""The one exception tree of wms-relay.

::

    RelayError                      root of everything wms-relay raises
     ├── StoreNotFound              no REDIS_URL and no embedded server running for this directory: a
     │                              support command never starts one (it would read an empty store)
     └── DestinationError           a destination's call did not deliver: destination, operation, status,
          │                         error_code, error_messages, detail, latency_seconds
          ├── TransientError        retry later (connect failures, 5xx, 408, 429); retry_after in seconds
          │    └── ClockSkewError   our clock is off Trademax's: a 401 that is a configuration error
          ├── OutcomeUnknownError   the request was (or may have been) sent and no answer came back:
          │    │                    read timeout, connection lost mid-response.  Safe to resend only
          │    │                    where the destination deduplicates or the value is absolute.
          │    └── UnconfirmedError answered, but the answer confirms less than was sent (ka-ching initiated
          │                         fewer values than it was sent): some may not be applied — a person
          │                         checks (``uncertain``), never resent automatically
          └── PermanentError        do not retry: other 4xx (Trademax: error codes 401–451 and 453–499),
                                    a request we could not even build

Each destination's client decides which of the three an answer is (its ``classification`` module).

Every error pickles with all of its attributes (Celery and the dead-letter store move them between
processes), and its ``str()`` names the operation, HTTP status, the destination's error code and messages.
Nothing here ever holds a secret, a signature or a token: the client redacts them before building an error.
"""
from __future__ import annotations

from typing import Iterable


class RelayError(Exception):
    """Root of every exception wms-relay raises on purpose."""


class StoreNotFound(RelayError):
    """REDIS_URL is unset and no embedded server runs under the var directory the command looked in.

    Support commands never start a server (an empty one would answer "nothing needs a person" while the
    real store holds the work); the message says where it looked and how to point the command at the
    store.  The CLI exits 3 (the store is unreachable)."""


class DestinationError(RelayError):
    """A destination's call that did not end in delivery; the subclass says what to do about it."""

    def __init__(
        self,
        detail: str = "",
        *,
        destination: str = "trademax",
        operation: str = "",
        status: int | None = None,
        error_code: int | None = None,
        error_messages: Iterable[str] = (),
        latency_seconds: float | None = None,
    ) -> None:
        self.detail = detail
        self.destination = destination
        self.operation = operation
        self.status = status
        self.error_code = error_code
        self.error_messages = [str(m) for m in error_messages]
        self.latency_seconds = latency_seconds
        super().__init__(detail)

    def __reduce__(self):
        # Exception's default pickling replays ``self.args`` only and would lose the keyword-only
        # context; rebuild from the detail and restore every attribute from __dict__.
        return (self.__class__, (self.detail,), self.__dict__.copy())

    def __str__(self) -> str:
        parts = [self.operation or self.destination]
        parts.append(f"HTTP {self.status}" if self.status is not None else "no HTTP status")
        if self.error_code is not None:
            parts.append(f"error_code {self.error_code}")
        text = ", ".join(parts)
        if self.error_messages:
            text += ": " + "; ".join(self.error_messages)
        if self.detail:
            text += f" ({self.detail})"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


# The base's name from before there were other destinations (Trademax's client and its tests use it).
TrademaxError = DestinationError


class TransientError(DestinationError):
    """Retry later: the destination was unreachable, overloaded or asked us to slow down."""

    def __init__(self, detail: str = "", *, retry_after: float | None = None, **context) -> None:
        super().__init__(detail, **context)
        self.retry_after = retry_after

    def __str__(self) -> str:
        text = super().__str__()
        if self.retry_after is not None:
            text += f" [retry after {self.retry_after:g} s]"
        return text


class ClockSkewError(TransientError):
    """A configuration error, not the event's: this machine's clock is too far from Trademax's for the
    signed ``timestamp`` to be accepted, so every request is refused (401) until the clock is fixed.  The
    destination's circuit opens for it (a configuration fault, ``worker.flow.circuit``), the delivery waits
    parked (never a dead letter, never counted towards the attempt limit), one probe a minute by the
    scheduler's clock tells when the clock is right, and the worker alerts
    (``worker.destinations.trademax.clock_skew``)."""

    def __init__(self, detail: str = "", *, skew_seconds: float | None = None, **context) -> None:
        context.setdefault("retry_after", 60.0)
        super().__init__(detail, **context)
        self.skew_seconds = skew_seconds


class OutcomeUnknownError(DestinationError):
    """The request left (or may have left) and no answer arrived: the destination may or may not have
    applied it."""


class UnconfirmedError(OutcomeUnknownError):
    """The destination answered, but its answer confirms less than the request carried (ka-ching's
    "Import of N stock value(s) initiated" with N below the values sent): which of them it applied is not
    known.  Whatever the row's resend rule, the delivery is ``uncertain`` with the answer kept — a person
    checks the destination — because the same request would meet the same fate."""


class PermanentError(DestinationError):
    """The destination refused the request for a reason that retrying will not change."""
