"""Request signing for the Trademax API, exactly as Trademax's PHP computes it.

Pure functions: no I/O, no clock, no randomness, no logging. The pipeline (one function per step) is
described in :mod:`signing.canonical`; the PHP rules it follows in :mod:`signing.values` (value rendering),
:mod:`signing.flatten` (bracket keys) and :mod:`signing.php_strnatcmp` / :mod:`signing.natural_order`
(key order). ``python -m signing explain FILE`` shows every step of one request for support staff.

Public API (stable; other code and outside checks call it)::

    flatten(params) -> list[tuple[str, str]]
    strnatcmp(a, b) -> int                       # -1, 0 or 1, as PHP 8's
    natural_sorted(keys) -> list[str]            # PHP order, stable
    canonical_string(params) -> str
    sign(params, secret) -> str                  # lowercase hex HMAC-SHA256
    verify(params_with_signature, secrets) -> bool
"""

from .canonical import canonical_string, sign, signed_pairs, verify
from .errors import NestingTooDeep, SigningError, UnsignableKey, UnsignableValue
from .flatten import MAX_DEPTH, flatten
from .natural_order import natural_sorted
from .php_strnatcmp import strnatcmp

__all__ = [
    "flatten",
    "strnatcmp",
    "natural_sorted",
    "canonical_string",
    "sign",
    "verify",
    "signed_pairs",
    "SigningError",
    "UnsignableValue",
    "UnsignableKey",
    "NestingTooDeep",
    "MAX_DEPTH",
]
