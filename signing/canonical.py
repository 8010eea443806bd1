"""Steps 4 and 5: join the ordered ``key=value`` pairs with ``&`` and sign them with HMAC-SHA256.

The signed params are the request's own params plus ``api_key``, ``timestamp``, ``method`` and ``url``;
the caller puts them in (and chooses the timestamp: signing reads no clock). A top-level ``signature`` key,
if present, is left out, so a received request can be verified as it came. Nothing is URL-encoded: the
canonical string is the PHP side's ``k=v&k=v`` text, and it is signed as UTF-8 bytes.

The whole pipeline, one function per step::

    flatten_leaves     (1, 2)  nested params → bracket keys and PHP string values   signing.flatten
    layout_for         (3)     PHP strnatcmp order of the keys, remembered by shape   signing.layout
    canonical_string   (4)     "k=v&k=v" in that order
    sign               (5)     lowercase hex HMAC-SHA256 of the canonical string under the secret
    verify                     constant-time comparison, one or several secrets (key rotation)

Nothing here logs: the canonical string holds the request's data, and the secret must never leave.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Iterable, Sequence

from .errors import SigningError
from .flatten import check_utf8, flatten, flatten_leaves
from .layout import layout_for

SIGNATURE_KEY = "signature"


def signed_pairs(params: Any) -> list[tuple[str, str]]:
    """The ``(key, value)`` pairs exactly as they are signed: flattened, deduplicated, in PHP order."""
    keys, values = flatten_leaves(_without_signature(params))
    layout = layout_for(tuple(keys))
    pairs = list(zip(layout.keys, layout.pick(values)))
    for key, value in pairs:
        check_utf8(key, value)
    return pairs


def canonical_string(params: Any) -> str:
    """The text that is signed: ``key=value`` pairs in PHP ``strnatcmp`` order, joined with ``&``."""
    text = _canonical(params)
    _encode(text, params)  # the same refusal of non-UTF-8 text as sign() makes
    return text


def sign(params: Any, secret: str) -> str:
    """The lowercase hex HMAC-SHA256 of the canonical string of ``params`` under ``secret``."""
    key = _secret_bytes(secret)
    return hmac.new(key, _encode(_canonical(params), params), hashlib.sha256).hexdigest()


def verify(params_with_signature: Any, secrets: str | Sequence[str]) -> bool:
    """Whether the request's top-level ``signature`` is the signature of the rest under any of ``secrets``.

    ``secrets`` is one secret or several (the current one and the ones being rotated out). The comparison
    is constant-time and every secret is tried, so the timing does not tell which one matched. A missing
    or non-string signature is simply ``False``; params that cannot be signed raise :class:`SigningError`.
    """
    keys = _secret_list(secrets)
    given = params_with_signature.get(SIGNATURE_KEY) if isinstance(params_with_signature, dict) else None
    if not isinstance(given, str):
        return False
    given_bytes = given.encode("ascii", "replace")  # non-ASCII becomes "?", which no hex digest contains
    message = _encode(_canonical(params_with_signature), params_with_signature)
    matched = False
    for key in keys:
        expected = hmac.new(key, message, hashlib.sha256).hexdigest().encode("ascii")
        matched |= hmac.compare_digest(expected, given_bytes)
    return matched


def _canonical(params: Any) -> str:
    keys, values = flatten_leaves(_without_signature(params))
    return layout_for(tuple(keys)).canonical(values)


def _without_signature(params: Any) -> Any:
    if isinstance(params, dict) and SIGNATURE_KEY in params:
        return {key: value for key, value in params.items() if key != SIGNATURE_KEY}
    return params


def _encode(text: str, params: Any) -> bytes:
    """The canonical string as UTF-8; a lone surrogate (no UTF-8, no PHP string) names its key path."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        pass
    flatten(_without_signature(params))  # raises UnsignableKey/UnsignableValue at the offending key
    raise SigningError("the canonical string is not valid UTF-8")  # not reached: flatten found it


def _secret_list(secrets: Any) -> list[bytes]:
    """One secret or a sequence of them (key rotation), as bytes."""
    if isinstance(secrets, str):
        return [_secret_bytes(secrets)]
    if isinstance(secrets, (bytes, bytearray)) or not isinstance(secrets, Iterable):
        raise SigningError(f"secrets must be a str or a sequence of str, not a {type(secrets).__name__}")
    keys = [_secret_bytes(secret) for secret in secrets]
    if not keys:
        raise SigningError("verify needs at least one secret")
    return keys


def _secret_bytes(secret: Any) -> bytes:
    """The secret as UTF-8 bytes. Errors say what is wrong with it, never what it is."""
    if not isinstance(secret, str):
        raise SigningError(f"the secret must be a str, not a {type(secret).__name__}")
    if not secret:
        raise SigningError("the secret is empty")
    try:
        return secret.encode("utf-8")
    except UnicodeEncodeError:
        pass  # raised below, outside the handler: the UnicodeEncodeError holds the whole secret (``object``)
    raise SigningError("the secret is not valid UTF-8 text")
