"""Sentry: one report per dead letter or uncertain event, none per retry, tagged, and no secret inside.

The real pipeline (``worker.delivery.pipeline.deliver``, scripted Trademax, fakeredis) runs with Sentry
started by
``worker.observe.sentry.start`` and a transport that keeps every envelope in memory."""
from __future__ import annotations

import json
import logging

import fakeredis
import pytest
import sentry_sdk
from sentry_sdk.transport import Transport

from tests.fixtures.clock import Clock
from tests.worker.support.test_actions import ScriptedTrademax, example, refused
from worker.observe import sentry as sentry_setup
from worker.delivery.pipeline import deliver
from worker.errors import OutcomeUnknownError, TransientError
from worker.observe.observer import Observer
from worker.redaction import REDACTED as FILTERED, Scrubber
from worker.delivery.relay import build_relay
from worker.settings import Settings

SECRET = "sentry-canary-9d2e7f41b0c3a6e5"
API_KEY = "sentry-test-api-key"
SIGNATURE = "5f0c3b8a9e1d2c4b6a7f8e9d0c1b2a3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b"


class KeptEnvelopes(Transport):
    """A sentry-sdk transport that keeps every envelope it is given (class-level: sentry-sdk builds it)."""

    envelopes: list = []

    def capture_envelope(self, envelope) -> None:
        KeptEnvelopes.envelopes.append(envelope)

    @classmethod
    def events(cls) -> list[dict]:
        return [item.payload.json for envelope in cls.envelopes for item in envelope.items
                if item.type == "event"]

    @classmethod
    def raw(cls) -> str:
        return "\n".join(envelope.serialize().decode("utf-8", "replace") for envelope in cls.envelopes)


@pytest.fixture
def settings():
    return Settings(sentry_dsn="http://public@127.0.0.1:9/1", trademax_secret=SECRET,
                    trademax_api_key=API_KEY, trademax_base_url="http://127.0.0.1:9/api/")


@pytest.fixture
def sentry(settings):
    KeptEnvelopes.envelopes = []
    assert sentry_setup.start(settings, transport=KeptEnvelopes)
    yield KeptEnvelopes
    sentry_setup.stop()


@pytest.fixture
def relay(settings):
    return build_relay(settings, redis_client=fakeredis.FakeRedis(), client=ScriptedTrademax(), clock=Clock())


def run(relay, operation: str, event: dict, *answers) -> str:
    relay.client = ScriptedTrademax(*answers)
    return deliver(relay, operation, event, owner="worker-1")


def test_one_report_per_parked_event_and_none_per_retry(sentry, relay):
    transient = TransientError("", operation="create_receipt", status=503, error_messages=["busy"])
    receipt = example("receipt.create", transaction_id="R-FLAKY")
    assert run(relay, "receipt.create", receipt, transient) == "retrying"
    assert run(relay, "receipt.create", receipt, transient) == "retrying"
    assert run(relay, "receipt.create", receipt, None) == "delivered"
    assert sentry.events() == []  # two retries and a delivery: nothing to report

    assert run(relay, "receipt.create", example("receipt.create", transaction_id="R-NO"), refused()) == "dead"
    relative = example("stock.adjust", event_id="rel-1", type="relative", quantity=3, reason=2)
    assert run(relay, "stock.adjust", relative, OutcomeUnknownError("read timeout")) == "uncertain"
    assert run(relay, "stock.adjust", relative) == "uncertain"  # a redelivered copy: still one report
    assert run(relay, "receipt.create", {"transaction_id": "R-BAD"}) == "dead"

    events = sentry.events()
    tags = sorted((e["tags"]["operation"], e["tags"]["key"], e["tags"]["state"]) for e in events)
    assert tags == [("receipt.create", "R-BAD", "dead"), ("receipt.create", "R-NO", "dead"),
                    ("stock.adjust", "rel-1", "uncertain")]
    dead = next(e for e in events if e["tags"]["key"] == "R-NO")
    assert dead["level"] == "error" and dead["message"] == "wms-relay dead: receipt.create R-NO to trademax"
    assert dead["tags"]["destination"] == "trademax"
    assert dead["tags"]["dead_letter"] == relay.dead_letters.latest_for("receipt.create", "R-NO").letter_id
    assert dead["contexts"]["event"]["next_step"].startswith("wms-relay dead show ")
    assert SECRET not in sentry.raw() and API_KEY not in sentry.raw()


def test_breadcrumbs_exceptions_and_frames_never_carry_the_secret_or_a_signature(sentry, relay):
    sentry_sdk.add_breadcrumb(category="httplib", data={
        "url": f"http://127.0.0.1:9/api/dispatch/7?api_key={API_KEY}&signature={SIGNATURE}",
        "http.query": f"api_key={API_KEY}&timestamp=1&signature={SIGNATURE}", "method": "DELETE"})
    logging.getLogger("wms_relay.test").warning("configured with TRADEMAX_SECRET=%s", SECRET)
    secret_in_a_frame = SECRET  # noqa: F841 — frame locals must not be sent
    try:
        raise RuntimeError(f"boom {{\"signature\": \"{SIGNATURE}\", \"trademax_secret\": \"{SECRET}\"}}")
    except RuntimeError:
        sentry_sdk.capture_exception()
    assert run(relay, "receipt.create", example("receipt.create", transaction_id="R-NO"), refused()) == "dead"

    raw = sentry.raw()
    assert len(sentry.events()) == 2
    for needle in (SECRET, SIGNATURE, API_KEY):
        assert needle not in raw, needle
    crash = next(e for e in sentry.events() if "exception" in e)
    frames = [f for value in crash["exception"]["values"] for f in value["stacktrace"]["frames"]]
    assert frames and not any("vars" in frame for frame in frames)
    crumbs = [c for e in sentry.events() for c in e.get("breadcrumbs", {}).get("values", [])]
    http = next(c for c in crumbs if c.get("category") == "httplib")
    assert f"signature={FILTERED}" in http["data"]["url"]
    assert any("TRADEMAX_SECRET=" in (c.get("message") or "") for c in crumbs)


def test_sentry_is_started_once_and_only_with_a_dsn(settings):
    assert sentry_setup.start(settings.replace(sentry_dsn="")) is False
    options = sentry_setup.options(settings, celery=True)
    assert options["send_default_pii"] is False and options["include_local_variables"] is False
    assert options["auto_enabling_integrations"] is False
    names = {type(i).__name__ for i in options["integrations"]}
    assert names == {"LoggingIntegration", "CeleryIntegration"}
    celery = next(i for i in options["integrations"] if type(i).__name__ == "CeleryIntegration")
    assert celery.propagate_traces is False


def test_the_scrubber_removes_values_params_and_sensitive_keys():
    scrub = Scrubber([SECRET, API_KEY, "abc"])  # too short to scrub safely: ignored
    assert scrub.text(f"url?api_key=k&signature={SIGNATURE}&x=1") == \
        f"url?api_key={FILTERED}&signature={FILTERED}&x=1"
    assert scrub.text(f'{{"signature": "{SIGNATURE}"}}') == f'{{"signature": "{FILTERED}"}}'
    assert scrub.text(f"secret is {SECRET}!") == f"secret is {FILTERED}!"
    assert scrub.text("abc stays") == "abc stays"
    data = scrub.scrub({"Signature": "x", "nested": [{"api_key": "y"}, ("ok", SECRET)], "n": 3})
    assert data == {"Signature": FILTERED, "nested": [{"api_key": FILTERED}, ("ok", FILTERED)], "n": 3}
    url_encoded = Scrubber(["a b/c+d&e"]).text("q=a%20b%2Fc%2Bd%26e and a+b%2Fc%2Bd%26e")
    assert "b%2Fc" not in url_encoded


def test_one_json_log_line_per_attempt_and_no_secret_in_any_line(settings, relay):
    import io

    from worker.observe.logs import configure

    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure(settings.replace(log_format="json"), stream=stream)
        relay.observer = Observer.from_settings(settings.replace(log_format="json", sentry_dsn=""))
        transient = TransientError("", operation="create_receipt", status=503, error_code=500,
                                   latency_seconds=0.0123)
        receipt = example("receipt.create", transaction_id="R-LOG")
        run(relay, "receipt.create", receipt, transient)
        run(relay, "receipt.create", receipt, None)
        logging.getLogger("wms_relay.test").info("signed with %s: signature=%s", SECRET, SIGNATURE)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    attempts = [line for line in lines if line.get("msg") == "attempt"]
    assert [(a["operation"], a["key"], a["attempt"], a["outcome"], a["status"], a["error_code"])
            for a in attempts] == [("receipt.create", "R-LOG", 1, "transient", 503, 500),
                                   ("receipt.create", "R-LOG", 2, "delivered", 200, 0)]
    assert attempts[0]["latency_ms"] == 12.3 and attempts[0]["logger"] == "wms_relay.attempts"
    assert {"time", "level"} <= set(attempts[0])
    text = stream.getvalue()
    assert SECRET not in text and SIGNATURE not in text and f"signature={FILTERED}" in text


def test_a_door_request_with_many_invalid_events_is_one_report(sentry, relay):
    """10,000 `[0,0,...]` items in one POST made ~10,000 Sentry reports (issue 23.7): the events one request
    parks at a door are one report naming how many of each kind; each is still its own dead letter."""
    from worker.delivery.admission import take_in_all

    receipt = example("receipt.create", transaction_id="R-ONE")
    take_in_all(relay, "receipt.create", [receipt], door="ingest POST")
    conflict = {**receipt, "order_no": "OTHER"}
    intakes = take_in_all(relay, "receipt.create", [0] * 300 + [conflict, receipt],
                          door="ingest POST")
    assert [i.verdict for i in intakes] == ["invalid"] * 300 + ["conflict", "queued_again"]
    assert relay.dead_letters.count() == 301
    [report] = sentry.events()
    assert report["message"] == ("wms-relay ingest POST receipt.create: 301 events parked "
                                 "(invalid 300, conflict 1)")
    assert report["tags"]["events"] == "301" and report["tags"]["operation"] == "receipt.create"
    context = report["contexts"]["events"]
    assert context["kinds"] == {"invalid": 300, "conflict": 1} and len(context["first"]) == 20
    assert context["first"][0]["next_step"].startswith("wms-relay dead show ")
    # A request with one parked event reports it as the pipeline does, on its own.
    take_in_all(relay, "receipt.create", [{"transaction_id": "R-BAD"}], door="ingest POST")
    assert sentry.events()[-1]["message"] == "wms-relay dead: receipt.create R-BAD"


def test_the_scrubber_skips_its_name_patterns_only_where_no_secret_name_can_be():
    """The parameter and JSON-field patterns run only where a secret-bearing name is found (issue 21):
    a name spelled in any case, or with a character the case-insensitive patterns take for its letter
    (``ſ`` for s, the Kelvin sign for k, the Turkish dotted and dotless i), is still found; a line without
    one is left as it is."""
    scrub = Scrubber([])
    line = "attempt destination=trademax key=K-1 outcome=delivered status=200 error_code= latency_ms=203.4"
    assert scrub.text(line) == line
    for spelled in ("PassWord", "pa\u017fsword", "api_\u212aey", "\u0131ngest_hmac_secrets",
                    "\u0130ngest_hmac_secrets", "Api-Auth-Signature"):
        assert scrub.text(f"x {spelled}=hunter22 y") == f"x {spelled}={FILTERED} y", spelled
        assert scrub.text(f"x {spelled}%3Dhunter22") == f"x {spelled}%3D{FILTERED}", spelled
        assert scrub.text(f'{{"{spelled}": "hunter22"}}') == f'{{"{spelled}": "{FILTERED}"}}', spelled
