"""Keeping secrets in: the ONE list of secret-bearing names and the one scrubber.

Every door a secret could leave by uses this module:

- the stores (``worker.encoding.stored_json``) refuse a record that carries a secret-bearing key, or —
  for raw input kept as evidence in a dead letter — blank it (:func:`redacted`);
- log lines (``worker.observe.logs``) and Sentry events and breadcrumbs (``worker.observe.sentry``) pass
  :class:`Scrubber`, built from the configured secret values (:meth:`Scrubber.from_settings`);
- every destination's client (``worker.destinations.trademax.client``, ``worker.destinations.json_api``)
  scrubs error texts and the requests exceptions it chains with a Scrubber of its secrets (and the
  request's signature, or the Stock2Shop token it carried).

What is removed: the values of secret-bearing names (:data:`SECRET_KEYS`, compared lower-case) — as mapping
keys at any depth, as ``name=…`` parameters in text (plain or URL-encoded ``=``) and as ``"name": "…"``
fields in JSON text — an ingest bearer token (by its shape: ``wmsr_…``, or whatever follows ``Bearer``),
and every known secret value, plain and URL-encoded.  Each becomes :data:`REDACTED`.  Pure: built from
values, no I/O, no settings read from the environment.

Each destination's secret-bearing names and secret values come from its declaration
(``worker.destinations.declaration``: its secret variables, the names its secrets travel under), so a new
destination's secrets are kept in without an edit here.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, Iterable
from urllib.parse import parse_qs, quote, quote_plus, urlsplit, urlunsplit

from worker.destinations.declaration import Declaration
from worker.destinations.declared import DECLARATIONS

REDACTED = "[redacted]"

# Secret-bearing names that are no destination's: a generic secret or password, HTTP authorization, and
# the secrets of Flower and of the ingest door (its HMAC signature and secrets, its Standard Webhooks
# header and secrets).
OUR_SECRET_KEYS = frozenset({"secret", "password", "authorization", "flower_basic_auth", "x-wms-signature",
                             "ingest_hmac_secrets", "webhook-signature", "ingest_webhook_secrets"})


def secret_keys(declarations: Iterable[Declaration]) -> frozenset[str]:
    """The secret-bearing names (lower-case): ours, and each declared destination's secret variables and
    the names its secrets travel under."""
    found = set(OUR_SECRET_KEYS)
    for declaration in declarations:
        found.update(variable.attribute for variable in declaration.secrets)
        found.update(name.lower() for name in declaration.secret_keys)
    return frozenset(found)


# Mapping keys whose values never leave the process and are never stored, at any depth (lower-case).
SECRET_KEYS = secret_keys(DECLARATIONS)
# A password in a URL's query (``sentinel_password=...``), for printing a URL.
_QUERY_PASSWORD = re.compile(r"(?i)([?&][a-z_]*password=)[^&#]*")
# An ingest bearer token (``wmsr_`` + 43 URL-safe characters), and whatever follows ``Bearer``.
_TOKEN = re.compile(r"(?i)\b(?:bearer\s+[A-Za-z0-9._~+/=-]{8,}|wmsr_[A-Za-z0-9_-]{8,})")
# :func:`screened` gives up (RecursionError, as a recursion would) past this many objects and arrays.
MAX_CONTAINERS = 1_000_000
# A value shorter than this is not scrubbed by value: a 1-3 character "secret" would blank half a line.
MIN_SECRET_LENGTH = 4


@functools.lru_cache(maxsize=8)
def _patterns(keys: frozenset[str]) -> tuple[re.Pattern, re.Pattern]:
    """``name=abc`` in a query string or a log line (``=`` plain or URL-encoded), and ``"name": "abc"`` in
    JSON text, for each of ``keys``."""
    names = "|".join(re.escape(key) for key in sorted(keys, key=lambda key: (-len(key), key)))
    return (re.compile(rf"(?i)\b({names})(=|%3D)[^&\s'\"]*"),
            re.compile(rf'(?i)("(?:{names})"\s*:\s*")[^"]*(")'))


class SecretKeyError(ValueError):
    """A record to be stored carries a secret-bearing key (see :func:`screened`)."""


def screened(value: Any, *, where: str, redact: bool) -> Any:
    """``value`` with secret-bearing keys refused (:class:`SecretKeyError`) or, with ``redact``, their
    values replaced by :data:`REDACTED`; lists and tuples become lists.

    A walk with its own stack, not a recursion: an event nested as deeply as the JSON decoder accepts
    (hundreds of levels) is screened without a RecursionError, which took the ``enqueue`` process down
    while it wrote such an event's dead letter (the fuzz run found it).  Every delivery screens its event,
    its answer and its attempt (``worker.encoding.stored_json``), so the walk asks the cheap question
    first: a plain dict, list or str is known by its exact type (``collections.abc.Mapping`` only for
    the rest: not ``typing.Mapping``, whose check runs in Python)."""
    if not _is_container(value):
        return value
    top: list = [None]
    pending: list[tuple[Any, Any, Any]] = [(value, top, 0)]  # (item, the container it goes into, its slot)
    budget = MAX_CONTAINERS
    while pending:
        item, into, slot = pending.pop()
        budget -= 1
        if budget < 0:  # only a structure that contains itself gets here (JSON cannot)
            raise RecursionError(f"{where}: more than {MAX_CONTAINERS} objects and arrays, or one that "
                                 "contains itself")
        children = []
        if type(item) is dict or isinstance(item, Mapping):
            kept: dict = {}
            for name, inner in item.items():
                if (name if type(name) is str else str(name)).lower() in SECRET_KEYS:
                    if not redact:
                        raise SecretKeyError(f"{where} must not carry {name!r}: secrets are never stored")
                    kept[name] = REDACTED
                else:
                    kept[name] = inner
                    # _is_container, the plain case inline: most values are text and numbers
                    if type(inner) not in _PLAIN and _is_container(inner):
                        children.append((inner, kept, name))
        else:
            kept = list(item)
            children = [(inner, kept, index) for index, inner in enumerate(kept)
                        if type(inner) not in _PLAIN and _is_container(inner)]
        into[slot] = kept
        pending.extend(reversed(children))  # walked in document order
    return top[0]


_PLAIN = frozenset({str, int, float, bool, type(None)})  # JSON's scalars: never containers
_SCALARS = _PLAIN - {str}
_CONTAINERS = frozenset({dict, list, tuple})


def _is_container(value: Any) -> bool:
    """An object or an array for :func:`screened` to walk: a Mapping, list or tuple."""
    kind = type(value)
    if kind in _PLAIN:
        return False
    return kind in _CONTAINERS or isinstance(value, (Mapping, list, tuple))


def redacted(value: Any) -> Any:
    """``value`` with the values of secret-bearing keys (:data:`SECRET_KEYS`) replaced, at any depth."""
    return screened(value, where="", redact=True)


def url_without_password(url: str) -> str:
    """``url`` with its password (``redis://:pw@host``, ``user:pw@host``) shown as ``***``, fit to print."""
    parts = urlsplit(url)
    if parts.password:
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        url = urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    if "password=" in parts.query.lower():  # sentinel://...?sentinel_password=...
        url = _QUERY_PASSWORD.sub(r"\1***", url)
    return url


class Scrubber:
    """Removes known secret values (plain and URL-encoded), secret parameters and secret-bearing mapping
    keys from text and nested data."""

    def __init__(self, secret_values: Iterable[str], *, keys: frozenset[str] = SECRET_KEYS) -> None:
        variants = set()
        for value in secret_values:
            if value and len(value) >= MIN_SECRET_LENGTH:
                variants.update({value, quote(value, safe=""), quote_plus(value)})
        self._values = sorted(variants, key=len, reverse=True)
        self._keys = keys
        self._parameter, self._json_field = _patterns(keys)
        self._folded_keys = tuple(sorted({key.casefold() for key in keys}))

    @classmethod
    def from_settings(cls, settings: Any, *, store_password: str | None = None) -> "Scrubber":
        """Every destination's secret values (its declaration's secret variables: the Trademax secret,
        ka-ching's api key, StockTrim's signature, Stock2Shop's password ...) and secret-bearing names, the
        store's password (REDIS_URL's; ``store_password``: the embedded store's too, which
        ``worker.store.connection.store_password`` reads), Flower's passwords and the ingest's HMAC and
        Standard Webhooks secrets.  (The Trademax api key is public — it travels in every request — and is
        removed where it appears as ``api_key``, not by value; ingest tokens are known by their shape
        only.)"""
        values = [value for destination in settings.destinations for value in destination.secret_values]
        values.append(store_password or "")
        values += [pair.partition(":")[2] for pair in (settings.ingest_hmac_secrets or "").split(",")]
        for pair in (settings.ingest_webhook_secrets or "").split(","):
            secret = pair.partition(":")[2].strip()
            values += [secret, secret.removeprefix("whsec_")]  # whsec_BASE64, and the key's base64 alone
        if settings.redis_url:
            parts = urlsplit(settings.redis_url)
            values.append(parts.password or "")
            values.extend(parse_qs(parts.query).get("sentinel_password", []))
        for pair in (settings.flower_basic_auth or "").split(","):
            values.append(pair.partition(":")[2])
        return cls(values, keys=secret_keys(destination.declaration for destination in settings.destinations))

    def text(self, value: str) -> str:
        for secret in self._values:
            if secret in value:
                value = value.replace(secret, REDACTED)
        parameter = "=" in value or "%3D" in value or "%3d" in value
        field = '"' in value
        if (parameter or field) and self._names_in(value):
            if parameter:
                value = self._parameter.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", value)
            if field:
                value = self._json_field.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(2)}", value)
        if "wmsr_" in value or "earer" in value or "EARER" in value:
            value = _TOKEN.sub(REDACTED, value)
        return value

    def _names_in(self, value: str) -> bool:
        """Whether a secret-bearing name may be in ``value``, as the case-insensitive patterns read it: the
        two patterns scan every position of a line for every name (~35 µs for a worker's attempt line,
        which always holds ``=``: issue 21), so they run only where a name is found.  ``casefold`` meets
        every character the patterns take for an ASCII letter (``ſ`` for ``s``, the Kelvin sign for
        ``k``), except the Turkish ``ı`` and ``İ`` (``i`` and a combining dot), made ``i`` here; a name
        found where the patterns find none costs only their run."""
        folded = value.casefold()
        if "ı" in folded or "\u0307" in folded:
            folded = folded.replace("ı", "i").replace("\u0307", "")
        return any(name in folded for name in self._folded_keys)

    def scrub(self, value: Any) -> Any:
        """A copy of ``value`` (dicts, lists, tuples, text) with every secret removed.  Numbers, booleans
        and None (most of a JSON log line's fields) are known by their exact type and returned at once."""
        kind = type(value)
        if kind in _PLAIN:
            return self.text(value) if kind is str else value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: REDACTED if isinstance(k, str) and k.lower() in self._keys
                    else v if type(v) in _SCALARS else self.scrub(v)
                    for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.scrub(v) for v in value)
        return value

    def exception(self, exc: BaseException) -> None:
        """Scrub ``exc`` and every exception it links to (cause, context, urllib3's ``reason``, its
        args), in place: their text quotes URLs, which for GET/DELETE carry the signed query, so a logged
        traceback would leak it.  A ``request`` attribute (requests' PreparedRequest: the signed body
        and URL) is dropped."""
        seen: set[int] = set()
        pending: list[BaseException] = [exc]
        while pending:
            current = pending.pop()
            if id(current) in seen:
                continue
            seen.add(id(current))
            linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
            pending.extend(item for item in linked if isinstance(item, BaseException))
            current.args = tuple(self._arg(arg) for arg in current.args)
            for name, value in list(vars(current).items()):  # url, urllib3's _message, ...
                if isinstance(value, str):
                    setattr(current, name, self.text(value))
            if getattr(current, "request", None) is not None:
                current.request = None

    def _arg(self, arg: Any) -> Any:
        text = str(arg)
        cleaned = self.text(text)
        return arg if cleaned == text else cleaned
