"""Settings: read once from the environment into a frozen object that is passed in everywhere.

Library code never reads ``os.environ``; the entry points (the CLI, the Celery app module) call
:func:`Settings.from_env` once.  A missing or malformed variable stops start-up with a
:class:`SettingsError` that names the variable.  Secrets are kept out of ``repr`` so they cannot reach a
log line through a settings dump.

Each destination's variables are not listed here: each destination declares them once
(``worker.destinations.declaration``; the list: ``worker.destinations.declared``), and
:class:`DestinationSettings` holds what was read for one destination — ``settings.destination("kaching")``
— its base URL, locations, credentials and flow control.  The names the code used before the declarations
(``settings.kaching_base_url``, ``Settings(kaching_locations=...)``) still work: a declared variable's
lower-case name reads and sets its value.
"""
from __future__ import annotations

import base64
import os
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

from worker.destinations.declaration import (
    CHOICE, LOCATIONS, NUMBER, URL, Declaration, Declarations, Variable)
from worker.destinations.declared import DECLARATIONS


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the environment variable."""


@dataclass(frozen=True)
class Locations:
    """A ``*_LOCATIONS`` setting: WMS ``warehouse_id`` → the destination's location (``nw=shop-1,se=shop-2``).
    A warehouse not listed is not sent to that destination."""

    pairs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, name: str, raw: str | None) -> "Locations":
        pairs: dict[str, str] = {}
        for part in (raw or "").split(","):
            if not part.strip():
                continue
            warehouse, equals, location = (piece.strip() for piece in part.partition("="))
            if not (equals and warehouse and location):
                raise SettingsError(f"{name} must be warehouse=location pairs separated by commas "
                                    f"(nw=shop-1,se=shop-2), got {part.strip()!r}")
            if warehouse in pairs:
                raise SettingsError(f"{name} lists warehouse {warehouse!r} twice")
            pairs[warehouse] = location
        return cls(tuple(pairs.items()))

    def get(self, warehouse_id: str) -> str | None:
        """The destination's location of ``warehouse_id``, or None when it is not listed."""
        return next((location for warehouse, location in self.pairs if warehouse == warehouse_id), None)

    def __contains__(self, warehouse_id: object) -> bool:
        return any(warehouse == warehouse_id for warehouse, _ in self.pairs)

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def __str__(self) -> str:
        return ",".join(f"{warehouse}={location}" for warehouse, location in self.pairs)


@dataclass(frozen=True)
class FlowLimits:
    """One destination's flow control (docs/flow-control.md): ``<PREFIX>_MAX_RPS`` (0 = no limit),
    ``<PREFIX>_PROBE_SECONDS``, ``<PREFIX>_CIRCUIT_FAILURES`` within ``<PREFIX>_CIRCUIT_WINDOW_SECONDS``, and
    for a bulk destination ``<PREFIX>_BATCH_MAX`` (0 = every count sent on its own) and
    ``<PREFIX>_BATCH_SECONDS``.  The defaults of the rate and the batch size are the destination's
    declaration's (Stock2Shop at most 1 request per second: all our workers are one client; the bulk
    APIs up to 500 counts a request)."""

    max_rps: float = 0.0
    probe_seconds: float = 30.0
    circuit_failures: int = 10
    circuit_window_seconds: float = 60.0
    batch_max: int = 0
    batch_seconds: float = 1.0

    @property
    def batched(self) -> bool:
        return self.batch_max > 0

    @classmethod
    def declared(cls, declaration: Declaration) -> "FlowLimits":
        """The defaults ``declaration`` states."""
        return cls(max_rps=declaration.max_rps, batch_max=declaration.batch_max if declaration.bulk else 0)

    @classmethod
    def from_env(cls, env: Mapping[str, str], declaration: Declaration) -> "FlowLimits":
        prefix, default = declaration.prefix, cls.declared(declaration)
        batch = {}
        if declaration.bulk:
            batch = {"batch_max": _integer(env, f"{prefix}_BATCH_MAX", default.batch_max, minimum=0),
                     "batch_seconds": _number(env, f"{prefix}_BATCH_SECONDS", default.batch_seconds,
                                              minimum=0.01)}
        return cls(
            max_rps=_number(env, f"{prefix}_MAX_RPS", default.max_rps, minimum=0.0),
            probe_seconds=_number(env, f"{prefix}_PROBE_SECONDS", default.probe_seconds, minimum=0.1),
            circuit_failures=_integer(env, f"{prefix}_CIRCUIT_FAILURES", default.circuit_failures, minimum=1),
            circuit_window_seconds=_number(env, f"{prefix}_CIRCUIT_WINDOW_SECONDS",
                                           default.circuit_window_seconds, minimum=0.1),
            **batch)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# WORKER_POOL: Celery's pool in ``wms-relay worker`` (worker.commands.worker_pool): OS threads, or gevent's
# green threads (one OS thread, cooperative switching at every socket wait).
WORKER_POOLS = ("threads", "gevent")


def worker_pool(env: Mapping[str, str]) -> str:
    """WORKER_POOL, one of :data:`WORKER_POOLS` (default ``threads``).  Read on its own too: the worker
    command must know it before anything imports ``socket`` (gevent's monkey-patching)."""
    raw = (env.get("WORKER_POOL") or "threads").strip().lower()
    if raw not in WORKER_POOLS:
        raise SettingsError(f"WORKER_POOL must be {' or '.join(map(repr, WORKER_POOLS))}, got {raw!r}")
    return raw


def valid_log_level(level: str) -> bool:
    """LOG_LEVEL: one of :data:`LOG_LEVELS` (``wms-relay check`` and every process's logging use this)."""
    return level in LOG_LEVELS


def valid_basic_auth(basic_auth: str) -> bool:
    """FLOWER_BASIC_AUTH: ``user:password[,user2:password2]``, no part empty (``wms-relay check`` and
    ``wms-relay flower`` use this one rule)."""
    pairs = (basic_auth or "").split(",")
    return all(user and colon and password for user, colon, password in (p.partition(":") for p in pairs))


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value != value or value < minimum:
        raise SettingsError(f"{name} must be a number >= {minimum:g}, got {raw!r}")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {raw!r}")
    return value


# A shared HMAC secret shorter than this is guessable offline from one signed request.
MIN_HMAC_SECRET_LENGTH = 16


def _pairs(env: Mapping[str, str], name: str) -> str:
    """``client:secret[,client2:secret2]``, no part empty, each secret at least
    :data:`MIN_HMAC_SECRET_LENGTH` characters; the message never quotes the value (it is secret)."""
    raw = env.get(name) or ""
    if raw and not valid_basic_auth(raw):
        raise SettingsError(f"{name} must be client:secret (comma-separated for several), with neither part "
                            "empty")
    if raw and any(len(pair.partition(":")[2]) < MIN_HMAC_SECRET_LENGTH for pair in raw.split(",")):
        raise SettingsError(f"{name}: each secret must be at least {MIN_HMAC_SECRET_LENGTH} characters "
                            "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)")
    return raw


# Standard Webhooks secrets are 24 to 64 random bytes (the specification's "Signature scheme").
MIN_WEBHOOK_SECRET_BYTES = 24


def _webhook_pairs(env: Mapping[str, str], name: str) -> str:
    """``client:whsec_BASE64[,...]``: each secret base64 (the ``whsec_`` prefix optional) of at least
    :data:`MIN_WEBHOOK_SECRET_BYTES` bytes; the message never quotes the value (it is secret)."""
    raw = (env.get(name) or "").strip()
    if raw and not valid_basic_auth(raw):
        raise SettingsError(f"{name} must be client:whsec_BASE64 (comma-separated for several), with neither "
                            "part empty")
    for pair in raw.split(",") if raw else ():
        client, _, secret = pair.partition(":")
        encoded = secret.strip().removeprefix("whsec_")
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except ValueError:
            raise SettingsError(f"{name}: the secret of {client.strip()} is not whsec_ + base64") from None
        if len(key) < MIN_WEBHOOK_SECRET_BYTES:
            raise SettingsError(f"{name}: the secret of {client.strip()} is {len(key)} bytes; Standard "
                                f"Webhooks secrets are {MIN_WEBHOOK_SECRET_BYTES}-64 (`python -m "
                                "worker.web.ingest.standard_webhooks` prints a new one)")
    return raw


def _http_url(env: Mapping[str, str], name: str, default: str) -> str:
    """An http(s) URL ending in ``/``; ``default`` when unset ("" for a destination that is off)."""
    raw = (env.get(name) or default).strip()
    if not raw:
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        like = default or "https://api.example.com/"
        raise SettingsError(f"{name} must be an http(s) URL like {like}, got {raw!r}")
    return raw if raw.endswith("/") else raw + "/"


def _variable_from_env(env: Mapping[str, str], variable: Variable) -> Any:
    """One declared variable, read and checked by its kind (a SettingsError names it)."""
    if variable.kind == URL:
        return _http_url(env, variable.name, str(variable.default))
    if variable.kind == LOCATIONS:
        return Locations.parse(variable.name, env.get(variable.name))
    if variable.kind == NUMBER:
        return _number(env, variable.name, float(variable.default or 0.0), minimum=variable.minimum)
    if variable.kind == CHOICE:
        return _choice(env, variable)
    raw = env.get(variable.name) or str(variable.default)
    return raw if variable.secret else raw.strip()  # a secret is taken exactly as given


def _choice(env: Mapping[str, str], variable: Variable) -> str:
    """One of the variable's choices (case-insensitive); its default when unset."""
    raw = (env.get(variable.name) or "").strip()
    if not raw:
        return str(variable.default)
    if raw.lower() not in variable.choices:
        raise SettingsError(f"{variable.name} must be {' or '.join(variable.choices)}, got {raw!r} "
                            f"({variable.description})")
    return raw.lower()


def _variable_default(variable: Variable) -> Any:
    if variable.kind == LOCATIONS:
        return Locations()
    if variable.kind == NUMBER:
        return float(variable.default or 0.0)
    return variable.default


@dataclass(frozen=True)
class DestinationSettings:
    """What was read for one destination: its declaration, the value of each variable it declares and its
    flow control.  ``settings.destination(name)`` hands it out; secrets stay out of its ``repr``."""

    declaration: Declaration
    values: tuple[tuple[str, Any], ...]
    flow: FlowLimits

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_variable", dict(self.values))  # read on every routed event

    @classmethod
    def declared(cls, declaration: Declaration) -> "DestinationSettings":
        """Every variable at its default (as if none were set)."""
        return cls(declaration, tuple((v.name, _variable_default(v)) for v in declaration.variables),
                   FlowLimits.declared(declaration))

    @classmethod
    def from_env(cls, env: Mapping[str, str], declaration: Declaration) -> "DestinationSettings":
        return cls(declaration, tuple((v.name, _variable_from_env(env, v)) for v in declaration.variables),
                   FlowLimits.from_env(env, declaration))

    def __repr__(self) -> str:
        secret = {variable.name for variable in self.declaration.secrets}
        shown = ", ".join(f"{name}={'***' if name in secret and value else repr(value)}"
                          for name, value in self.values)
        return f"DestinationSettings({self.name}: {shown}, flow={self.flow!r})"

    @property
    def name(self) -> str:
        return self.declaration.name

    def declares(self, variable: str) -> bool:
        return variable in self._by_variable

    def value(self, variable: str) -> Any:
        """The value of ``variable`` (its name: ``KACHING_API_KEY``); a KeyError when not declared."""
        try:
            return self._by_variable[variable]
        except KeyError:
            raise KeyError(f"{self.name} declares no {variable}") from None

    def with_values(self, changes: Mapping[str, Any]) -> "DestinationSettings":
        return replace(self, values=tuple((name, changes.get(name, value)) for name, value in self.values))

    @property
    def base_url(self) -> str:
        return self.value(self.declaration.base_url.name)

    @property
    def is_on(self) -> bool:
        """On when its base URL is set."""
        return bool(self.base_url)

    @property
    def locations(self) -> Locations:
        """Its ``*_LOCATIONS`` (empty when it declares none: no warehouse is listed)."""
        declared = self.declaration.locations
        return self.value(declared.name) if declared is not None else Locations()

    @property
    def catalog(self) -> str:
        """Its catalog's mode (``<PREFIX>_CATALOG``: ``identity`` or ``required``), or "" when it has no
        catalog (worker.store.catalog)."""
        declared = self.declaration.catalog
        return self.value(declared.name) if declared is not None else ""

    @property
    def secret_values(self) -> list[str]:
        """The values of its secret variables (for the scrubbers)."""
        return [self.value(variable.name) for variable in self.declaration.secrets]

    def require_credentials(self) -> None:
        """A SettingsError naming the first unset credential, and what to put there."""
        for variable in self.declaration.credentials:
            if not self.value(variable.name):
                raise SettingsError(f"{variable.name} is not set: {variable.description}")


def destination_settings(declarations: Declarations = DECLARATIONS, env: Mapping[str, str] | None = None
                         ) -> tuple[DestinationSettings, ...]:
    """Every declared destination's settings: read from ``env``, or (None) their defaults."""
    if env is None:
        return tuple(DestinationSettings.declared(declaration) for declaration in declarations)
    return tuple(DestinationSettings.from_env(env, declaration) for declaration in declarations)


def _redis_tls_files(env: Mapping[str, str], redis_url: str | None) -> dict[str, Path | None]:
    """REDIS_SSL_CA_CERTS, REDIS_SSL_CERTFILE, REDIS_SSL_KEYFILE: readable files, a key only with its
    certificate, and only for a store reached over TLS (set for a plain one, they would be ignored)."""
    found = {}
    for name in ("REDIS_SSL_CA_CERTS", "REDIS_SSL_CERTFILE", "REDIS_SSL_KEYFILE"):
        raw = (env.get(name) or "").strip()
        if raw and not os.access(raw, os.R_OK):
            raise SettingsError(f"{name} names {raw!r}, which is not a readable file")
        found[name] = Path(raw) if raw else None
    if found["REDIS_SSL_KEYFILE"] and not found["REDIS_SSL_CERTFILE"]:
        raise SettingsError("REDIS_SSL_KEYFILE is set without REDIS_SSL_CERTFILE (the certificate it is the "
                            "key of)")
    if any(found.values()):
        scheme = urlsplit(redis_url).scheme if redis_url else None
        tls = scheme == "rediss" or (scheme == "sentinel" and "ssl=true" in urlsplit(redis_url).query.lower())
        if not tls:
            named = ", ".join(name for name, path in found.items() if path)
            raise SettingsError(f"{named} set, but REDIS_URL does not use TLS: a rediss:// URL, or "
                                "sentinel://...&ssl=true")
    return found


@dataclass(frozen=True)
class SentinelAddress:
    """A ``sentinel://`` REDIS_URL: the Sentinels, the primary's name, the database, the data servers'
    credentials (``sentinel_password=...`` in the query: the Sentinels' own password, if they have one),
    and ``ssl=true``: TLS to the Sentinels and to the data servers alike (REDIS_SSL_* for a private CA)."""

    sentinels: tuple[tuple[str, int], ...]
    master_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False

    @classmethod
    def parse(cls, url: str) -> "SentinelAddress":
        """Raises ValueError naming what is wrong (never the password)."""
        parts = urlsplit(url)
        if parts.scheme != "sentinel":
            raise ValueError("not a sentinel:// URL")
        userinfo, _, hosts = parts.netloc.rpartition("@")
        username, _, password = userinfo.partition(":") if userinfo else ("", "", "")
        sentinels = []
        for item in hosts.split(","):
            host, _, port = item.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"each Sentinel is HOST:PORT, got {item.strip()!r}")
            sentinels.append((host.strip("[]"), int(port)))
        query = parse_qs(parts.query)
        master = (query.get("master_name") or [""])[0]
        if not master:
            raise ValueError("a sentinel:// URL needs ?master_name=NAME (the name the Sentinels monitor)")
        db = parts.path.strip("/") or "0"
        if not db.isdigit():
            raise ValueError(f"the database is a number, got {db!r}")
        ssl = (query.get("ssl") or ["false"])[0].lower()
        if ssl not in ("true", "false"):
            raise ValueError(f"ssl is true or false, got {ssl!r}")
        return cls(tuple(sentinels), master, int(db), unquote(username) or None, unquote(password) or None,
                   (query.get("sentinel_password") or [None])[0], ssl == "true")

    def broker_url(self) -> str:
        """kombu's form: ``sentinel://[:pw@]h1:p1/db;sentinel://[:pw@]h2:p2/db;...``."""
        from urllib.parse import quote

        auth = ""
        if self.password:
            auth = f"{quote(self.username or '', safe='')}:{quote(self.password, safe='')}@"
        return ";".join(f"sentinel://{auth}{host}:{port}/{self.db}" for host, port in self.sentinels)


@dataclass(frozen=True, init=False)
class Settings:
    """Everything configurable about wms-relay.  Build with :meth:`from_env`; copy with :meth:`replace`."""

    # Broker and store.  None: the embedded valkey-server under ``var_dir`` (see worker.store.embedded).
    redis_url: str | None = field(default=None, repr=False)  # may hold the store's password
    var_dir: Path = Path("var")
    # TLS to the store (rediss://, sentinel://...?ssl=true): a private CA's certificate, and this client's
    # certificate and key where the server asks for one (docs/operations.md, "TLS to Redis").
    redis_ssl_ca_certs: Path | None = None
    redis_ssl_certfile: Path | None = None
    redis_ssl_keyfile: Path | None = None

    # Every client's timeouts (the variables kept Trademax's names from before the other destinations).
    connect_timeout: float = 5.0
    read_timeout: float = 30.0

    # Each destination's settings (docs/destinations.md), one DestinationSettings per declaration
    # (worker.destinations.declared): base URL (a destination is on when it is set; Trademax's has a
    # default), credentials, ``*_LOCATIONS`` (WMS warehouse_id -> the destination's location), flow
    # control (worker.flow).  Read here so that the sandboxes (``wms-relay sandbox --api ...``) and the
    # clients share one set of variables.
    destinations: tuple[DestinationSettings, ...] = field(default_factory=destination_settings)

    # Retry policy (worker.delivery.retry_policy): full-jitter exponential backoff.  80 attempts capped at one
    # hour add up to ~34 h on average (never less than ~24 h in practice): a day-long outage is ridden out.
    retry_base_seconds: float = 1.0
    retry_cap_seconds: float = 3600.0
    retry_max_attempts: int = 80

    # Ledger and dead letters.
    delivered_retention_days: float = 30.0
    # A settled (delivered, superseded, discarded) record keeps its event, attempts, history and answer
    # this long, then only what recognising it needs (worker.store.settled_records: ~200 B, not ~1 KiB).
    settled_detail_hours: float = 24.0
    # Closed (retried or discarded) dead letters are deleted this long after they were closed; 0 keeps
    # them forever.  Open letters are never deleted.
    dead_letter_retention_days: float = 90.0
    claim_lease_seconds: float = 120.0
    # Celery-on-Redis redelivers a message that is not acknowledged within this many seconds (a worker
    # killed mid-task).  It must exceed the longest task (connect + read timeout and a few Redis calls),
    # or a slow but live task would be delivered twice.
    visibility_timeout_seconds: float = 300.0
    worker_concurrency: int = 16
    worker_pool: str = "threads"
    # The scheduler re-sends an event that sat this long in an open state with nothing to move it
    # (worker.scheduling.stranded); longer than the visibility timeout, so Celery's own redelivery goes first.
    stranded_after_seconds: float = 900.0
    # A dispatch update waiting for its create is re-checked this often, this many times.
    dependency_wait_seconds: float = 30.0
    dependency_wait_max_checks: int = 240
    # A desk bulk job's claim lasts this long past its last recorded item (worker.support.bulk_jobs).
    desk_job_lease_seconds: float = 20.0

    # Observability and operations.
    sentry_dsn: str = field(default="", repr=False)
    flower_basic_auth: str = field(default="", repr=False)
    log_format: str = "text"
    log_level: str = "INFO"

    # The HTTP ingest door (worker.web.ingest).  Bearer tokens: a file of client names and token hashes
    # (``wms-relay ingest add-token`` writes it).  HMAC: ``client:secret`` pairs, comma-separated (one
    # client may have two, while its secret is rotated).  A body larger than the cap is answered 413, and
    # so is one holding more events than INGEST_MAX_EVENTS (what one request may make the door do).
    ingest_tokens_file: Path | None = None
    ingest_hmac_secrets: str = field(default="", repr=False)
    ingest_max_body_bytes: int = 5 * 1024 * 1024
    ingest_max_events: int = 1000
    # Standard Webhooks signatures (worker.web.ingest.standard_webhooks): ``client:whsec_BASE64`` pairs.
    ingest_webhook_secrets: str = field(default="", repr=False)

    # Each web door (ingest, desk; worker.web.serving): connections held at once, and how long one may sit
    # idle (nothing received, no request in progress) before the door closes it.
    web_connection_limit: int = 1000
    web_channel_timeout_seconds: int = 15

    def __init__(self, **values: Any) -> None:
        """Every field by keyword (its default when not given).  A destination's variable may be given by
        its lower-case name too (``kaching_base_url="http://k/"``: ``KACHING_BASE_URL``, declared by
        ka-ching), over what ``destinations`` holds."""
        own = {f.name: f for f in fields(type(self))}
        by_variable = {name.upper(): values.pop(name) for name in [n for n in values if n not in own]}
        destinations = values.pop("destinations", None) or destination_settings()
        for name, f in own.items():
            if name == "destinations":
                continue
            if name in values:
                value = values.pop(name)
            else:
                value = f.default_factory() if f.default_factory is not MISSING else f.default
            object.__setattr__(self, name, value)
        if by_variable:
            unknown = set(by_variable) - {name for d in destinations for name, _ in d.values}
            if unknown:
                raise TypeError(f"Settings has no setting {', '.join(sorted(n.lower() for n in unknown))}")
            destinations = tuple(d.with_values(by_variable) for d in destinations)
        object.__setattr__(self, "destinations", destinations)
        object.__setattr__(self, "_by_name", {destination.name: destination for destination in destinations})
        self.__post_init__()

    def __getattr__(self, name: str) -> Any:
        """A destination's variable by its lower-case name (``settings.kaching_locations``); new code reads
        ``settings.destination("kaching").locations``."""
        if not name.startswith("_"):
            variable = name.upper()
            for destination in self.__dict__.get("destinations", ()):
                if variable in destination._by_variable:
                    return destination._by_variable[variable]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *,
                 declarations: Declarations = DECLARATIONS) -> "Settings":
        """Read settings from ``env`` (default: the process environment), each destination's as
        ``declarations`` declare them (default: every destination of worker.destinations.declared)."""
        env = os.environ if env is None else env
        log_format = (env.get("LOG_FORMAT") or "text").strip().lower()
        if log_format not in ("text", "json"):
            raise SettingsError(f"LOG_FORMAT must be 'text' or 'json', got {log_format!r}")
        redis_url = (env.get("REDIS_URL") or "").strip() or None
        tokens_file = (env.get("INGEST_TOKENS_FILE") or "").strip()
        scheme = urlsplit(redis_url).scheme if redis_url is not None else None
        if redis_url is not None and scheme not in ("redis", "rediss", "unix", "sentinel"):
            # Only the scheme: the rest of a URL may hold the store's password.
            raise SettingsError("REDIS_URL must be a redis://, rediss://, unix:// or sentinel:// URL, got "
                                f"one starting {scheme or '(no scheme)'}://")
        if scheme == "sentinel":
            try:
                SentinelAddress.parse(redis_url)
            except ValueError as exc:
                raise SettingsError(f"REDIS_URL: {exc} (sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/DB"
                                    "?master_name=NAME)") from None
        tls = _redis_tls_files(env, redis_url)
        return cls(
            redis_url=redis_url,
            var_dir=Path(env.get("WMS_RELAY_VAR_DIR") or "var"),
            redis_ssl_ca_certs=tls["REDIS_SSL_CA_CERTS"],
            redis_ssl_certfile=tls["REDIS_SSL_CERTFILE"],
            redis_ssl_keyfile=tls["REDIS_SSL_KEYFILE"],
            destinations=destination_settings(declarations, env),
            connect_timeout=_number(env, "TRADEMAX_CONNECT_TIMEOUT", 5.0, minimum=0.001),
            read_timeout=_number(env, "TRADEMAX_READ_TIMEOUT", 30.0, minimum=0.001),
            retry_base_seconds=_number(env, "RETRY_BASE_SECONDS", 1.0, minimum=0.001),
            retry_cap_seconds=_number(env, "RETRY_CAP_SECONDS", 3600.0, minimum=0.001),
            retry_max_attempts=_integer(env, "RETRY_MAX_ATTEMPTS", 80, minimum=1),
            delivered_retention_days=_number(env, "DELIVERED_RETENTION_DAYS", 30.0, minimum=0.0),
            settled_detail_hours=_number(env, "SETTLED_DETAIL_HOURS", 24.0, minimum=0.0001),
            dead_letter_retention_days=_number(env, "DEAD_LETTER_RETENTION_DAYS", 90.0, minimum=0.0),
            claim_lease_seconds=_number(env, "CLAIM_LEASE_SECONDS", 120.0, minimum=1.0),
            visibility_timeout_seconds=_number(env, "VISIBILITY_TIMEOUT_SECONDS", 300.0, minimum=1.0),
            worker_concurrency=_integer(env, "WORKER_CONCURRENCY", 16, minimum=1),
            worker_pool=worker_pool(env),
            stranded_after_seconds=_number(env, "STRANDED_AFTER_SECONDS", 900.0, minimum=1.0),
            dependency_wait_seconds=_number(env, "DEPENDENCY_WAIT_SECONDS", 30.0, minimum=0.01),
            dependency_wait_max_checks=_integer(env, "DEPENDENCY_WAIT_MAX_CHECKS", 240, minimum=1),
            desk_job_lease_seconds=_number(env, "DESK_JOB_LEASE_SECONDS", 20.0, minimum=1.0),
            sentry_dsn=(env.get("SENTRY_DSN") or "").strip(),
            flower_basic_auth=env.get("FLOWER_BASIC_AUTH") or "",
            log_format=log_format,
            log_level=(env.get("LOG_LEVEL") or "INFO").strip().upper(),
            ingest_tokens_file=Path(tokens_file) if tokens_file else None,
            ingest_hmac_secrets=_pairs(env, "INGEST_HMAC_SECRETS"),
            ingest_max_body_bytes=_integer(env, "INGEST_MAX_BODY_BYTES", 5 * 1024 * 1024, minimum=1024),
            ingest_max_events=_integer(env, "INGEST_MAX_EVENTS", 1000, minimum=1),
            ingest_webhook_secrets=_webhook_pairs(env, "INGEST_WEBHOOK_SECRETS"),
            web_connection_limit=_integer(env, "WEB_CONNECTION_LIMIT", 1000, minimum=10),
            web_channel_timeout_seconds=_integer(env, "WEB_CHANNEL_TIMEOUT_SECONDS", 15, minimum=1),
        )

    def __post_init__(self) -> None:
        longest_task = self.connect_timeout + self.read_timeout
        if self.visibility_timeout_seconds <= longest_task + 5:
            raise SettingsError(
                f"VISIBILITY_TIMEOUT_SECONDS ({self.visibility_timeout_seconds:g}) must exceed the longest "
                "task: "
                f"TRADEMAX_CONNECT_TIMEOUT + TRADEMAX_READ_TIMEOUT + 5 s = {longest_task + 5:g} s"
            )
        if self.stranded_after_seconds <= self.visibility_timeout_seconds + self.claim_lease_seconds:
            raise SettingsError(
                f"STRANDED_AFTER_SECONDS ({self.stranded_after_seconds:g}) must exceed "
                "VISIBILITY_TIMEOUT_SECONDS + CLAIM_LEASE_SECONDS, so Celery's own redelivery goes first")
        if self.claim_lease_seconds <= longest_task:
            raise SettingsError(
                f"CLAIM_LEASE_SECONDS ({self.claim_lease_seconds:g}) must exceed "
                f"TRADEMAX_CONNECT_TIMEOUT + TRADEMAX_READ_TIMEOUT ({longest_task:g} s)"
            )

    def destination(self, name: str) -> DestinationSettings:
        """``name``'s settings; a KeyError naming the known destinations otherwise."""
        found = self._by_name.get(name)
        if found is not None:
            return found
        raise KeyError(f"no destination {name!r} (known: {', '.join(d.name for d in self.destinations)})")

    def require_credentials(self, destination: str) -> "Settings":
        """Fail with a message naming the first unset variable among ``destination``'s credentials (as its
        declaration lists them), and what to put there."""
        self.destination(destination).require_credentials()
        return self

    def flow_of(self, destination: str) -> FlowLimits:
        """``destination``'s flow control (the defaults for a name nothing declares)."""
        found = self._by_name.get(destination)
        return found.flow if found is not None else FlowLimits()

    def with_flow(self, destination: str, **changes) -> "Settings":
        """A copy with some of ``destination``'s flow limits changed (tests, benchmarks)."""
        self.destination(destination)  # a KeyError for a name nothing declares
        changed = tuple(replace(d, flow=replace(d.flow, **changes)) if d.name == destination else d
                        for d in self.destinations)
        return replace(self, destinations=changed)

    def replace(self, **changes) -> "Settings":
        return replace(self, **changes)
