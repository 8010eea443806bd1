"""``wms-relay check``: is this machine set up to deliver?  Run it after changing any setting.

1. Settings: every variable is read and validated; a missing or malformed one is named
   (INGEST_TOKENS_FILE, when set: readable, well formed, holding at least one token).
2. Redis: the server named by REDIS_URL (or the embedded one) answers, and keeps data safely
   (``appendonly yes``, ``maxmemory-policy noeviction``: warnings otherwise).
3. Trademax: one signed, read-only request (GET the lines of a made-up outgoing order).  Any answer past
   authentication — even "not found" — proves the api key and secret are accepted; 401 with error_code
   404 means the api key is unknown, 405 that the signature was refused (the secret, or the base URL).
4. Every other destination that is on (its base URL set): one harmless request each — ka-ching an empty
   stock import, StockTrim ``GET api/ProcessingStatus``, Stock2Shop a login and its sources (the source id
   must be listed) — and a warning when its ``*_LOCATIONS`` lists no warehouse (nothing would be sent).

Prints OK / WARN / FAIL per check and what to do about each failure; exit code 0 when nothing failed.
Never prints a secret, an api key, a password or a token."""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass

from worker.commands.presenting import described, print_json, say
from worker.destinations.declaration import declarations_of
from worker.redaction import url_without_password
from worker.settings import Settings, SettingsError, valid_basic_auth, valid_log_level

CHECK_ORDER_NO = "WMS-RELAY-CHECK"
CHECK_WAREHOUSE = "wms-relay-check"
MAX_READ_TIMEOUT = 15.0


@dataclass(frozen=True)
class Verdict:
    level: str  # OK | WARN | FAIL
    what: str
    message: str
    next_step: str = ""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("check",
                              help="validate settings, ping Redis, test every destination's credentials",
                              **described(__doc__))
    p.add_argument("--order-no", default=CHECK_ORDER_NO, help=f"order to read (default {CHECK_ORDER_NO})")
    p.add_argument("--warehouse-id", default=CHECK_WAREHOUSE,
                   help=f"warehouse alias sent with it (default {CHECK_WAREHOUSE})")
    p.add_argument("--skip-trademax", action="store_true", help="do not call Trademax")
    p.add_argument("--skip-others", action="store_true", help="do not call ka-ching, StockTrim or Stock2Shop")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(handler=run)


def settings_problems(settings: Settings) -> list[Verdict]:
    """What Settings.from_env cannot see on its own: the first destination's credentials (the others' are
    named when they are checked), LOG_LEVEL, SENTRY_DSN, FLOWER_BASIC_AUTH."""
    problems = []
    intake = settings.destinations[0]
    for variable in intake.declaration.credentials:
        if not intake.value(variable.name):
            problems.append(Verdict("FAIL", variable.name, "is not set", f"set it to {variable.description}"))
    if not valid_log_level(settings.log_level):
        problems.append(Verdict("FAIL", "LOG_LEVEL", f"{settings.log_level!r} is not a log level",
                                "use DEBUG, INFO, WARNING or ERROR"))
    if settings.sentry_dsn:
        from sentry_sdk.utils import BadDsn, Dsn

        try:
            Dsn(settings.sentry_dsn)
        except BadDsn as exc:
            problems.append(Verdict("FAIL", "SENTRY_DSN", f"is not a Sentry DSN ({exc})",
                                    "copy the DSN from the Sentry project's settings, or unset it"))
    if settings.flower_basic_auth and not valid_basic_auth(settings.flower_basic_auth):
        problems.append(Verdict("FAIL", "FLOWER_BASIC_AUTH", "must be user:password (comma-separated for "
                                "several users), with neither part empty", "fix or unset it"))
    return problems


def ingest_problems(settings: Settings) -> list[Verdict]:
    """INGEST_TOKENS_FILE, when set: readable, every line well formed, at least one token.  (The door
    itself refuses to start on a non-loopback address without credentials; this says why before.)"""
    if not settings.ingest_tokens_file:
        return []
    from worker.web.ingest.tokens import TokenFileError, parse

    path = settings.ingest_tokens_file
    try:
        entries = parse(path.read_text(encoding="utf-8"), f"INGEST_TOKENS_FILE {path}")
    except OSError as exc:
        return [Verdict("FAIL", "INGEST_TOKENS_FILE", f"{path} cannot be read ({exc.strerror})",
                        "create it with `wms-relay ingest add-token CLIENT`, or fix the path")]
    except (TokenFileError, UnicodeDecodeError) as exc:
        return [Verdict("FAIL", "INGEST_TOKENS_FILE", str(exc), "fix that line, or make the file again with "
                        "`wms-relay ingest add-token CLIENT`")]
    if not entries:
        return [Verdict("WARN", "INGEST_TOKENS_FILE", f"{path} holds no token: the ingest door refuses "
                        "every bearer token", "`wms-relay ingest add-token CLIENT` makes one")]
    clients = sorted({entry.client for entry in entries})
    return [Verdict("OK", "INGEST_TOKENS_FILE", f"{len(entries)} token{'s' if len(entries) != 1 else ''} "
                    f"for {', '.join(clients)}")]


def check_redis(settings: Settings) -> list[Verdict]:
    import redis

    from worker.store.connection import StoreNotFound, connect, describe, store_url

    where = describe(settings)
    try:
        client = connect(settings)
        client.ping()
    except StoreNotFound as exc:
        return [Verdict("FAIL", "Redis", str(exc), "start the service (`wms-relay worker`, `make run`) or "
                        "point WMS_RELAY_VAR_DIR / REDIS_URL at its store")]
    except (redis.RedisError, OSError, RuntimeError) as exc:
        return [Verdict("FAIL", "Redis", f"{where} does not answer ({type(exc).__name__}: {exc})",
                        "start it, or fix REDIS_URL")]
    verdicts = [Verdict("OK", "Redis", f"{where} answered PING"
                        + ("" if settings.redis_url else f" ({url_without_password(store_url(settings))})"))]
    try:
        config = {**client.config_get("appendonly"), **client.config_get("maxmemory-policy")}
    except redis.RedisError:
        config = {}  # managed Redis often forbids CONFIG: nothing to say
    if config.get("appendonly") == "no":
        verdicts.append(Verdict("WARN", "Redis", "appendonly is off: a crash of the server loses recent "
                                "events", "set `appendonly yes`"))
    if config.get("maxmemory-policy") not in (None, "noeviction"):
        verdicts.append(Verdict("WARN", "Redis", f"maxmemory-policy is {config['maxmemory-policy']}: a full "
                                "server would silently drop events", "set `maxmemory-policy noeviction`"))
    client.close()
    return verdicts


def judge_trademax(exc: Exception | None, status: int | None = None) -> Verdict:
    """What an answer to the check request says about the credentials (``exc`` None: a 2xx answer)."""
    from worker.errors import OutcomeUnknownError, PermanentError, TransientError

    if exc is None:
        return Verdict("OK", "Trademax", f"credentials accepted (HTTP {status})")
    code = getattr(exc, "error_code", None)
    status = getattr(exc, "status", None)
    if isinstance(exc, TransientError):
        return Verdict("FAIL", "Trademax", f"could not get an answer: {exc}",
                       "check TRADEMAX_BASE_URL and this machine's network; if Trademax is down, try later")
    if isinstance(exc, OutcomeUnknownError):
        return Verdict("FAIL", "Trademax", f"no answer in time: {exc}", "check the network; try again")
    if isinstance(exc, PermanentError) and status == 401:
        if code == 404:
            return Verdict("FAIL", "Trademax", "the api key is not known to Trademax (401, error_code 404)",
                           "check TRADEMAX_API_KEY")
        if code == 405:
            return Verdict("FAIL", "Trademax", "the signature was refused (401, error_code 405): the secret "
                           "does not belong to the api key, or Trademax sees another URL",
                           "check TRADEMAX_SECRET (and that TRADEMAX_BASE_URL is the address Trademax gave)")
        if code == 402:
            return Verdict("FAIL", "Trademax", "the timestamp was refused (401, error_code 402): this "
                           "machine's clock is off by more than 5 minutes", "fix the clock (NTP)")
        return Verdict("FAIL", "Trademax", f"authentication failed (401, error_code {code}): {exc}",
                       "check TRADEMAX_API_KEY and TRADEMAX_SECRET")
    # Anything else came from past the authentication: the credentials were accepted.
    return Verdict("OK", "Trademax", f"credentials accepted (the test request was answered HTTP {status}"
                   + (f", error_code {code}" if code else "") + ", which is expected for a made-up order)")


def check_trademax(settings: Settings, order_no: str, warehouse_id: str) -> Verdict:
    from worker.errors import TrademaxError
    from worker.destinations.trademax.client import TrademaxClient

    settings = settings.replace(read_timeout=min(settings.read_timeout, MAX_READ_TIMEOUT))
    with TrademaxClient(settings) as client:
        try:
            reply = client.get_order_lines(order_no, warehouse_id)
        except TrademaxError as exc:
            return judge_trademax(exc)
    return judge_trademax(None, reply.status)


def check_destination(settings: Settings, destination) -> list[Verdict]:
    """One harmless request to ``destination`` (not Trademax) with a client built from ``settings``."""
    from worker.errors import DestinationError, OutcomeUnknownError, PermanentError, TransientError
    from worker.settings import SettingsError as MissingSetting

    title = destination.title
    declared = destination.declaration
    base_url = declared.base_url.name
    verdicts = []
    if declared.locations is not None and not settings.destination(destination.name).locations:
        verdicts.append(Verdict("WARN", title, f"{declared.locations.name} lists no warehouse: "
                                "nothing will be sent to it", "set it to warehouse=location pairs"))
    settings = settings.replace(read_timeout=min(settings.read_timeout, MAX_READ_TIMEOUT))
    try:
        client = destination.build_client(settings, redis=None)
    except MissingSetting as exc:
        return verdicts + [Verdict("FAIL", title, f"not checked: {exc}", "set that variable")]
    try:
        seen = destination.check(client)
    except TransientError as exc:
        return verdicts + [Verdict("FAIL", title, f"could not get an answer: {exc}",
                                   f"check {base_url} and the network; if it is down, try later")]
    except OutcomeUnknownError as exc:
        return verdicts + [Verdict("FAIL", title, f"no answer in time: {exc}",
                                   "check the network; try again")]
    except PermanentError as exc:
        hint = ("check its credentials" if exc.status in (401, 403) else
                f"check {base_url} and the settings named above")
        return verdicts + [Verdict("FAIL", title, f"refused the check: {exc}", hint)]
    except DestinationError as exc:  # pragma: no cover — the three above are the whole tree
        return verdicts + [Verdict("FAIL", title, str(exc))]
    finally:
        close = getattr(client, "close", None)
        if close is not None:
            close()
    return verdicts + [Verdict("OK", title, seen)]


def run(args: argparse.Namespace, table: dict | None = None) -> int:
    """``table``: the destinations to check (default: worker.destinations.table's; a test hands in its
    own, with a destination the repository does not have)."""
    from worker.destinations.table import DESTINATIONS, configured

    table = DESTINATIONS if table is None else table
    try:
        settings = Settings.from_env(declarations=declarations_of(d.declaration for d in table.values()))
    except SettingsError as exc:
        return _report([Verdict("FAIL", "settings", str(exc), "fix that variable and run `wms-relay check` "
                                "again")], args.json)
    verdicts = settings_problems(settings)
    if not verdicts:
        where = url_without_password(settings.trademax_base_url)
        verdicts.append(Verdict("OK", "settings", f"read; Trademax at {where}"))
    verdicts += ingest_problems(settings)
    verdicts += check_redis(settings)
    if args.skip_trademax:
        verdicts.append(Verdict("WARN", "Trademax", "not checked (--skip-trademax)"))
    elif settings.trademax_api_key and settings.trademax_secret:
        verdicts.append(check_trademax(settings, args.order_no, args.warehouse_id))
    else:
        verdicts.append(Verdict("FAIL", "Trademax", "not checked: the credentials are not set",
                                "set TRADEMAX_API_KEY and TRADEMAX_SECRET"))
    from worker.store.connection import describe

    for destination in configured(settings, table)[1:]:  # the first: Trademax, checked above
        if args.skip_others:
            verdicts.append(Verdict("WARN", destination.title, "not checked (--skip-others)"))
        else:
            verdicts += check_destination(settings, destination)
    return _report(verdicts, args.json, store=describe(settings))


def _report(verdicts: list[Verdict], as_json: bool, store: str | None = None) -> int:
    failed = sum(v.level == "FAIL" for v in verdicts)
    if as_json:
        print_json({"ok": not failed, "store": store, "checks": [asdict(v) for v in verdicts]})
        return 1 if failed else 0
    if store:
        say(f"Store: {store}")
    for verdict in verdicts:
        say(f"{verdict.level:<4}  {verdict.what}: {verdict.message}")
        if verdict.next_step and verdict.level != "OK":
            say(f"      what to do: {verdict.next_step}")
    say("All checks passed." if not failed else f"{failed} check{'s' if failed > 1 else ''} failed: fix "
        "what is named above and run `wms-relay check` again.")
    return 1 if failed else 0
