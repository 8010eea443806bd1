"""Who is calling the ingest door: a bearer token, or an HMAC signature of the request.

Bearer: ``Authorization: Bearer wmsr_...``, a token from ``wms-relay ingest add-token`` (``tokens.py``
keeps only its hash).  HMAC, for a WMS that signs rather than holds a token — two headers:

    X-WMS-Timestamp: 1715670000          Unix seconds when the request was signed
    X-WMS-Signature: sha256=HEX          HMAC-SHA256(secret, "{timestamp}\\n{METHOD}\\n{path}\\n" + body)

with a secret from INGEST_HMAC_SECRETS (``client:secret``).  Or Standard Webhooks' three headers
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature``; ``standard_webhooks.py``), with a secret
from INGEST_WEBHOOK_SECRETS.  Method and path are signed with the body,
so a signed event cannot be replayed to another operation.  A timestamp more than
:data:`MAX_AGE_SECONDS` away from the door's clock is refused as stale, and a signature already used is
refused as replayed; the door remembers each signature's hash (never the signature) in the store:

    wms:ingest:seen:{sha256 hex of the signature}    the request's owner id; SET NX, EX 2 * MAX_AGE_SECONDS

The SET follows the store-call rule (``worker.store.requests``) as Stock2Shop's login lock does: redis-py
resends it after a socket timeout, and when a stalled store wakes, the first SET runs and the resend
finds the key — so each request writes its own owner id (a fresh uuid), and "not set" with its own id in
the key is its own write, not a replay (:func:`replay_guard`).

So a WMS signs every attempt afresh (a retry carries a new timestamp), as wms-relay itself does with
Trademax.  Every comparison of a secret is constant-time (``hmac.compare_digest``) and runs over every
candidate, so timing tells nothing about which or how much matched.  With neither tokens nor secrets
configured the door is open — allowed on a loopback address only (``worker.web.serving``).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Mapping

from worker.encoding import text
import worker.web.ingest.standard_webhooks as webhooks
from worker.web.ingest.tokens import TokenFile

MAX_AGE_SECONDS = 300
TIMESTAMP_HEADER = "X-WMS-Timestamp"
SIGNATURE_HEADER = "X-WMS-Signature"
_SIGNATURE = re.compile(r"^sha256=([0-9a-fA-F]{64})$")
_BEARER = re.compile(r"^Bearer +(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Caller:
    """An identified caller: its client name, how it proved it, and the operations it may use."""

    client: str
    method: str  # "token", "hmac", "standard-webhooks" or "open"
    operations: frozenset[str] | None = None  # None: every operation

    def allows(self, operation: str) -> bool:
        return self.operations is None or operation in self.operations


@dataclass(frozen=True)
class Refusal:
    """Why a request was not let in.  ``reason`` is one word (counted and logged; never a credential)."""

    reason: str  # missing, malformed, unknown_token, bad_signature, stale, replayed
    message: str


def signed_message(timestamp: str, method: str, path: str, body: bytes) -> bytes:
    """What the WMS signs: ``{timestamp}\\n{METHOD}\\n{path}\\n`` then the body's bytes as sent."""
    return f"{timestamp}\n{method.upper()}\n{path}\n".encode("utf-8") + body


def sign(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    """The X-WMS-Signature value (for tests, examples and WMS implementers reading this code)."""
    digest = hmac.new(secret.encode("utf-8"), signed_message(timestamp, method, path, body), hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def parse_secrets(pairs: str) -> list[tuple[str, bytes]]:
    """INGEST_HMAC_SECRETS (``client:secret,...``, checked by Settings) → [(client, secret bytes)]."""
    found = []
    for pair in (pairs or "").split(","):
        client, _, secret = pair.partition(":")
        if client and secret:
            found.append((client.strip(), secret.encode("utf-8")))
    return found


def replay_guard(redis_client, prefix: str = "wms:ingest:seen") -> Callable[[str], bool]:
    """``first_use(digest)``: True the first time ``digest`` is seen within 2 * MAX_AGE_SECONDS.  One SET
    NX of a fresh owner id; "not set" is a replay only if the key holds another owner's id — a resend of
    this call's own SET that ran finds its own id (the store-call rule; module docstring)."""

    def first_use(digest: str) -> bool:
        key, owner = f"{prefix}:{digest}", uuid.uuid4().hex
        if redis_client.set(key, owner, nx=True, ex=2 * MAX_AGE_SECONDS):
            return True
        return text(redis_client.get(key)) == owner

    return first_use


class Doorkeeper:
    """Checks each request's credentials.  ``first_use(digest)`` records a signature's hash and says
    whether it is new (the store's SET NX; its failure propagates: the door answers 503)."""

    def __init__(self, tokens: TokenFile | None, secrets: list[tuple[str, bytes]],
                 first_use: Callable[[str], bool], clock: Callable[[], float] = time.time,
                 webhook_secrets: list | None = None) -> None:
        self.tokens = tokens
        self.secrets = secrets
        self.first_use = first_use
        self.clock = clock
        self.webhook_secrets = webhook_secrets or []  # [(client, standardwebhooks.Webhook)]

    @classmethod
    def from_settings(cls, settings, redis_client, clock: Callable[[], float] = time.time) -> "Doorkeeper":
        tokens = TokenFile(settings.ingest_tokens_file) if settings.ingest_tokens_file else None
        return cls(tokens, parse_secrets(settings.ingest_hmac_secrets), replay_guard(redis_client), clock,
                   webhooks.parse_secrets(settings.ingest_webhook_secrets))

    def problems(self) -> list[str]:
        """What keeps a configured credential from working now (``/healthz`` fails naming it): a tokens
        file that cannot be read or parsed any more."""
        problem = self.tokens.problem if self.tokens is not None else None
        return [problem] if problem else []

    @property
    def has_credentials(self) -> bool:
        return (bool(self.secrets) or bool(self.webhook_secrets)
                or (self.tokens is not None and bool(self.tokens.entries())))

    @property
    def is_open(self) -> bool:
        """Neither tokens nor secrets are configured: every request is let in (loopback only)."""
        return not self.secrets and not self.webhook_secrets and self.tokens is None

    def needs_body(self, headers: Mapping[str, str]) -> bool:
        """Whether checking this request's credentials needs its body (a signature does; a token not)."""
        return "Authorization" not in headers and (SIGNATURE_HEADER in headers
                                                   or webhooks.SIGNATURE_HEADER in headers)

    def identify(self, method: str, path: str, headers: Mapping[str, str],
                 body: bytes | None = None) -> Caller | Refusal:
        authorization = headers.get("Authorization")
        if authorization is not None:
            return self._bearer(authorization)
        if SIGNATURE_HEADER in headers:
            return self._hmac(method, path, headers, body or b"")
        if webhooks.SIGNATURE_HEADER in headers:
            return self._standard_webhook(headers, body or b"")
        if self.is_open:
            return Caller("anonymous", "open")
        return Refusal("missing", "Send `Authorization: Bearer TOKEN`, or sign the request (X-WMS-Timestamp "
                                  "and X-WMS-Signature, or Standard Webhooks' webhook-id, webhook-timestamp "
                                  "and webhook-signature); see /openapi.json")

    def _bearer(self, authorization: str) -> Caller | Refusal:
        match = _BEARER.match(authorization)
        if match is None:
            return Refusal("malformed", "The Authorization header must be `Bearer TOKEN`.")
        entry = self.tokens.match(match.group(1)) if self.tokens is not None else None
        if entry is None:
            return Refusal("unknown_token", "The token is not valid (unknown or revoked).")
        return Caller(entry.client, "token", entry.operations)

    def _hmac(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Caller | Refusal:
        timestamp = headers.get(TIMESTAMP_HEADER, "")
        match = _SIGNATURE.match(headers.get(SIGNATURE_HEADER, ""))
        if match is None or not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            return Refusal("malformed", f"{SIGNATURE_HEADER} must be `sha256=HEX` (64 hex digits) and "
                                        f"{TIMESTAMP_HEADER} the Unix time in seconds.")
        if abs(self.clock() - int(timestamp)) > MAX_AGE_SECONDS:
            return Refusal("stale", f"{TIMESTAMP_HEADER} is more than {MAX_AGE_SECONDS} s from the server's "
                                    "clock: sign each request when sending it (and check the clock).")
        given = bytes.fromhex(match.group(1))
        message = signed_message(timestamp, method, path, body)
        client = None
        for name, secret in self.secrets:
            expected = hmac.new(secret, message, hashlib.sha256).digest()
            if hmac.compare_digest(expected, given) and client is None:
                client = name
        if client is None:
            return Refusal("bad_signature", "The signature does not match the request (secret, timestamp, "
                                            "method, path and body as sent).")
        if not self.first_use(hashlib.sha256(given).hexdigest()):
            return Refusal("replayed", "This signature was used before: sign every request afresh, with a "
                                       "new timestamp.")
        return Caller(client, "hmac")

    def _standard_webhook(self, headers: Mapping[str, str], body: bytes) -> Caller | Refusal:
        msg_id, timestamp, signature = webhooks.headers_of(headers)
        if not webhooks.well_formed(msg_id, timestamp, signature):
            return Refusal("malformed", f"{webhooks.ID_HEADER} (printable, up to 256 characters), "
                                        f"{webhooks.TIMESTAMP_HEADER} (Unix seconds) and "
                                        f"{webhooks.SIGNATURE_HEADER} (`v1,BASE64`, space-separated) are all "
                                        "needed (Standard Webhooks).")
        if abs(self.clock() - int(timestamp)) > MAX_AGE_SECONDS:
            return Refusal("stale", f"{webhooks.TIMESTAMP_HEADER} is more than {MAX_AGE_SECONDS} s from the "
                                    "server's clock: sign each request when sending it (and check the "
                                    "clock).")
        client = webhooks.signer(self.webhook_secrets, msg_id, timestamp, signature, body)
        if client is None:
            return Refusal("bad_signature", "No signature matches the request (secret, webhook-id, "
                                            "webhook-timestamp and body as sent).")
        if not self.first_use(webhooks.message_digest(client, msg_id, timestamp)):
            return Refusal("replayed", f"This message ({webhooks.ID_HEADER} and {webhooks.TIMESTAMP_HEADER}) "
                                       "was let in before: a resend is signed afresh, with a new timestamp.")
        return Caller(client, "standard-webhooks")
