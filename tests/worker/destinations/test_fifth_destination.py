"""A fifth destination added the way docs/architecture.md's "How to add a destination" says — its package
(tests/fixtures/fifth_destination/: declaration, operations, client, sandbox) and its line in a table —
is configured, redacted, flow-controlled and checked, with no edit to worker.settings, worker.redaction,
worker.flow or ``wms-relay check``: each derives what it does from the destination's declaration.

The repository's table (worker/destinations/table.py, declared.py) does not list it: the test builds a
table of its own with ``destination_table`` (the four and Fifth) and hands it to what takes a table."""
from __future__ import annotations

import dataclasses
import io
import logging
from urllib.parse import quote

import fakeredis
import pytest

from tests.fixtures.fifth_destination.operations import DESTINATION as FIFTH
from tests.fixtures.fifth_destination.sandbox import FifthApi
from tests.fixtures.clock import Clock
from tests.worker.sandbox.loopback import serving
from worker.commands import check
from worker.destinations.declaration import declarations_of
from worker.destinations.declared import DECLARATIONS
from worker.destinations.table import DESTINATIONS, configured, destination_table, destinations_declared
from worker.errors import PermanentError
from worker.flow.controls import FlowControls
from worker.flow.gate import LATER, SEND
from worker.redaction import REDACTED, SECRET_KEYS, Scrubber, secret_keys
from worker.settings import Settings, SettingsError
from worker.store.retry_schedule import RetrySchedule

TABLE = destination_table([*DESTINATIONS.values(), FIFTH])  # its line in the table
DECLARED = declarations_of(destination.declaration for destination in TABLE.values())
TOKEN = "fifth-token-5e1f0c9d2a"
ENV = {"FIFTH_BASE_URL": "http://fifth.test/api", "FIFTH_ACCOUNT": "acme", "FIFTH_API_TOKEN": TOKEN,
       "FIFTH_LOCATIONS": "nw=Shelf-1"}


def settings_of(**env: str) -> Settings:
    return Settings.from_env({**ENV, **env}, declarations=DECLARED)


def test_its_variables_are_read_and_a_bad_one_is_named():
    settings = settings_of(FIFTH_MAX_RPS="2.5", FIFTH_BATCH_MAX="20")
    fifth = settings.destination("fifth")
    assert (fifth.base_url, fifth.locations.get("nw"), fifth.is_on) == \
        ("http://fifth.test/api/", "Shelf-1", True)
    assert settings.fifth_account == "acme" and settings.require_credentials("fifth") is settings
    assert [d.name for d in configured(settings, TABLE)] == ["trademax", "fifth"]
    for variable, value in [("FIFTH_BASE_URL", "ftp://fifth.test"), ("FIFTH_LOCATIONS", "nw"),
                            ("FIFTH_MAX_RPS", "fast"), ("FIFTH_BATCH_MAX", "-1")]:
        with pytest.raises(SettingsError, match=variable):
            settings_of(**{variable: value})
    with pytest.raises(SettingsError, match="FIFTH_API_TOKEN is not set: the API token of that account"):
        settings_of(FIFTH_API_TOKEN="").require_credentials("fifth")
    with pytest.raises(KeyError, match="no destination 'fifth'"):
        Settings().destination("fifth")  # the repository's table does not have it


def test_its_secret_is_kept_out_of_repr_logs_and_what_a_dead_letter_keeps():
    from worker.observe.logs import configure

    settings = settings_of()
    assert TOKEN not in repr(settings) and TOKEN not in repr(settings.destination("fifth"))
    keys = secret_keys(DECLARED)
    assert {"fifth_api_token", "x-fifth-token"} <= keys and not keys & {"fifth_account"}
    assert "fifth_api_token" not in SECRET_KEYS  # the repository's list: the repository's destinations
    scrubber = Scrubber.from_settings(settings)
    assert scrubber.text(f"sent {TOKEN} and {quote(TOKEN)}") == f"sent {REDACTED} and {REDACTED}"
    assert scrubber.scrub({"x-fifth-token": "t", "FIFTH_API_TOKEN": "t", "account": "acme"}) == \
        {"x-fifth-token": REDACTED, "FIFTH_API_TOKEN": REDACTED, "account": "acme"}
    out, root = io.StringIO(), logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure(settings, stream=out)
    try:
        logging.getLogger("wms_relay.fifth").warning("calling with token %s", TOKEN)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert "calling with token" in out.getvalue() and TOKEN not in out.getvalue()
    # Its sandbox quotes a wrong token in its 401: the client's error — the text a dead letter and the
    # attempt log keep — has it scrubbed.
    wrong = "wrong-token-77aa31"
    with serving(FifthApi(account="acme", token=TOKEN)) as (base_url, _):
        client = FIFTH.build_client(settings_of(FIFTH_BASE_URL=base_url, FIFTH_API_TOKEN=wrong))
        with pytest.raises(PermanentError) as refused:
            client.send_levels([client.level("nw", "A-1", 3)])
    assert refused.value.status == 401 and wrong not in str(refused.value)
    assert refused.value.error_messages == [f"no account with token {REDACTED}"]


def test_its_rate_limit_and_batches_come_from_its_declaration_and_variables():
    def controls_for(settings: Settings) -> FlowControls:
        redis_client = fakeredis.FakeRedis(decode_responses=True)
        clock = Clock()
        return FlowControls(redis_client, settings, RetrySchedule(redis_client, clock=clock), clock=clock,
                            sleep=clock.sleep, table=TABLE)

    # status shows the limits handed in (the workers' recorded ones): here, these settings' own.
    declared_settings = settings_of()
    declared = controls_for(declared_settings)  # its declaration: 2 requests a second, 50 counts a batch
    gate = declared.gate("fifth")
    verdicts = [gate.ask() for _ in range(3)]
    assert [v.action for v in verdicts] == [SEND, SEND, LATER]
    assert verdicts[1].wait == pytest.approx(0.5, abs=0.05)
    assert verdicts[2].wait == pytest.approx(1.0, abs=0.1)
    shown = declared.status("fifth", declared_settings.flow_of("fifth"))
    assert declared.batched("fifth") and shown["batching"]["max"] == 50 and shown["max_rps"] == 2.0

    unlimited_settings = settings_of(FIFTH_MAX_RPS="0", FIFTH_BATCH_MAX="0")
    unlimited = controls_for(unlimited_settings)  # its variables win
    assert [v.action for v in (unlimited.gate("fifth").ask() for _ in range(5))] == [SEND] * 5
    assert not unlimited.batched("fifth") and unlimited.status(
        "fifth", unlimited_settings.flow_of("fifth"))["max_rps"] is None


def test_wms_relay_check_reports_it(shared_redis_server, monkeypatch, capsys, tmp_path):
    from worker.cli import build_parser

    monkeypatch.setenv("REDIS_URL", shared_redis_server.url)
    monkeypatch.setenv("WMS_RELAY_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("TRADEMAX_API_KEY", "k")
    monkeypatch.setenv("TRADEMAX_SECRET", "check-secret-1")
    for other in ("KACHING_BASE_URL", "STOCKTRIM_BASE_URL", "STOCK2SHOP_BASE_URL", "SENTRY_DSN",
                  "FLOWER_BASIC_AUTH", "LOG_LEVEL", "INGEST_TOKENS_FILE"):
        monkeypatch.delenv(other, raising=False)
    args = build_parser().parse_args(["check", "--skip-trademax"])

    def run(**env: str) -> tuple[int, str]:
        for name, value in {**ENV, "FIFTH_BASE_URL": base_url, **env}.items():
            monkeypatch.setenv(name, value)
        code = check.run(args, table=TABLE)
        out, err = capsys.readouterr()
        return code, out + err

    with serving(FifthApi(account="acme", token=TOKEN)) as (base_url, control):
        code, out = run()
        assert code == 0, out
        assert "OK    Fifth: credentials accepted" in out and TOKEN not in out
        assert [(r["method"], r["path"]) for r in control.requests()] == [("GET", "/api/status")]
        code, out = run(FIFTH_API_TOKEN="wrong-token-9c1d")
        assert code == 1 and "FAIL  Fifth: refused the check" in out and "wrong-token-9c1d" not in out
        code, out = run(FIFTH_LOCATIONS="")
        assert "WARN  Fifth: FIFTH_LOCATIONS lists no warehouse" in out
        code, out = run(FIFTH_ACCOUNT="")
        assert code == 1 and "FAIL  Fifth: not checked: FIFTH_ACCOUNT is not set" in out


def test_the_repository_table_is_built_from_the_one_list_of_declarations():
    # worker/destinations/declared.py is the one line a real destination adds: the table finds each declared
    # destination's operations module by the declaration's name, and says which is missing or wrong.
    assert tuple(destinations_declared(DECLARATIONS).values()) == tuple(DESTINATIONS.values())
    assert [d.declaration for d in DESTINATIONS.values()] == list(DECLARATIONS)
    with pytest.raises(ImportError, match=r"fifth is declared .* no worker\.destinations\.fifth\.operations"):
        destinations_declared(declarations_of([*DECLARATIONS, FIFTH.declaration]))
    impostor = dataclasses.replace(DECLARATIONS["kaching"], title="not ka-ching's own")
    with pytest.raises(ValueError, match=r"worker\.destinations\.kaching\.operations\.DESTINATION is not"):
        destinations_declared(declarations_of([DECLARATIONS["trademax"], impostor]))
