"""Request authentication as the fake Trademax does it, in the document's error codes.

Checks, in order (the first failure answers, all with HTTP 401):

=====================================================================  ==========
check                                                                  error_code
=====================================================================  ==========
api_key, timestamp, signature, method and url all present              401
api_key is a known key                                                 404
signature verifies (signing.verify over every param but ``signature``)  405
``method`` is the request's verb and ``url`` the request's own URL      405
  (``http://{Host}/api/{path}``, quoted as sent, no query)
timestamp is an integer within 300 s of the sandbox's clock            402
=====================================================================  ==========

Pure: the caller passes the params, the request's verb and URL, and the time.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import signing
from worker.sandbox.trademax.answers import (
    BAD_SIGNATURE,
    INVALID_AUTH_PARAM,
    MISSING_AUTH_PARAM,
    UNKNOWN_API_KEY,
    Answer,
    fail,
)

AUTH_PARAMS = ("api_key", "timestamp", "signature", "method", "url")
MAX_CLOCK_SKEW_SECONDS = 300


def authenticate(params: Mapping[str, Any], *, method: str, url: str, now: float,
                 keys: Mapping[str, str | Sequence[str]]) -> Answer | None:
    """None when the request is authentic, else the 401 answer to send."""
    missing = [name for name in AUTH_PARAMS if params.get(name) in (None, "")]
    if missing:
        return fail(401, MISSING_AUTH_PARAM, f"mandatory params not specified: {', '.join(missing)}")
    secrets = keys.get(str(params["api_key"]))
    if secrets is None:
        return fail(401, UNKNOWN_API_KEY, "public key is invalid")
    try:
        authentic = signing.verify(dict(params), secrets)
    except signing.SigningError:
        authentic = False
    if not authentic:
        return fail(401, BAD_SIGNATURE, "signature validation failed")
    if str(params["method"]).upper() != method.upper():
        return fail(401, BAD_SIGNATURE, f"signature validation failed: signed method is not {method}")
    if params["url"] != url:
        return fail(401, BAD_SIGNATURE, f"signature validation failed: signed url is not {url}")
    try:
        timestamp = int(str(params["timestamp"]))
    except ValueError:
        return fail(401, INVALID_AUTH_PARAM, "param timestamp has an invalid value: not a Unix timestamp")
    if abs(now - timestamp) > MAX_CLOCK_SKEW_SECONDS:
        return fail(401, INVALID_AUTH_PARAM, "param timestamp has an invalid value: "
                    f"more than {MAX_CLOCK_SKEW_SECONDS} s from server time")
    return None
