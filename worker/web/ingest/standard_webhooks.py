"""Standard Webhooks at the ingest door (https://www.standardwebhooks.com/): a WMS that already signs its
webhooks this way — or takes a signer for its language from the specification's libraries — sends three
headers instead of ours:

    webhook-id: msg_2b5...            the message's unique id (the same when the sender resends it)
    webhook-timestamp: 1715670000     Unix seconds when signed; refused when more than 300 s off
    webhook-signature: v1,BASE64      HMAC-SHA256(secret, "{id}.{timestamp}." + body), base64; several
                                      space-separated signatures are allowed (a secret being rotated)

with a secret from INGEST_WEBHOOK_SECRETS (``client:whsec_BASE64``).  The ``standardwebhooks`` library
decodes the secret and computes the signature; the door checks the timestamp with its own clock (the
library's ``verify`` reads the system clock itself) and compares every candidate signature with every
secret in constant time.

Replays: the door remembers each message it let in — id and timestamp, hashed with the client — for
2 × 300 s in the same replay guard as our own HMAC (``worker.web.ingest.auth.replay_guard``, under the
store-call rule), so the same signed message again is refused as ``replayed``.  A sender's own resend of a
message (same ``webhook-id``, signed afresh with a new timestamp, as the specification has senders do
after a failure) is let in: its events are recognised by their key, as any event sent twice is.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime, timezone
from typing import Mapping

from standardwebhooks import Webhook

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"
_ID = re.compile(r"^[\x21-\x7e]{1,256}$")
_SIGNATURE = re.compile(r"^v1,[A-Za-z0-9+/]{43}=$")
MAX_SIGNATURES = 8  # in one header: bounds the work of a request that lists many


def parse_secrets(pairs: str) -> list[tuple[str, Webhook]]:
    """INGEST_WEBHOOK_SECRETS (``client:whsec_...,...``, checked by Settings) → [(client, Webhook)]."""
    found = []
    for pair in (pairs or "").split(","):
        client, _, secret = pair.partition(":")
        if client.strip() and secret.strip():
            found.append((client.strip(), Webhook(secret.strip())))
    return found


def new_secret() -> str:
    """A fresh secret (32 random bytes), as ``python -m worker.web.ingest.standard_webhooks`` prints it."""
    import secrets

    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def headers_of(headers: Mapping[str, str]) -> tuple[str, str, str]:
    """(id, timestamp, signature) as sent; "" for a missing one."""
    return (headers.get(ID_HEADER, ""), headers.get(TIMESTAMP_HEADER, ""), headers.get(SIGNATURE_HEADER, ""))


def well_formed(msg_id: str, timestamp: str, signature: str) -> bool:
    candidates = signature.split()
    return (bool(_ID.match(msg_id)) and timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12
            and 0 < len(candidates) <= MAX_SIGNATURES and all(_SIGNATURE.match(c) for c in candidates))


def signer(webhooks: list[tuple[str, Webhook]], msg_id: str, timestamp: str, signature: str,
           body: bytes) -> str | None:
    """The client whose secret signed this message, or None.  Every secret against every given signature,
    constant-time, with no early exit."""
    moment = datetime.fromtimestamp(int(timestamp), tz=timezone.utc)
    given = [candidate.encode("ascii") for candidate in signature.split()]
    client = None
    for name, webhook in webhooks:
        expected = webhook.sign(msg_id, moment, body).encode("ascii")
        for candidate in given:
            if hmac.compare_digest(expected, candidate) and client is None:
                client = name
    return client


def message_digest(client: str, msg_id: str, timestamp: str) -> str:
    """What the replay guard remembers of a message let in (no signature, no secret)."""
    return hashlib.sha256(f"standard-webhooks\n{client}\n{msg_id}\n{timestamp}".encode("utf-8")).hexdigest()


if __name__ == "__main__":
    print(new_secret())
