"""docs/operations.md's alert rules are usable as written: the YAML block parses, every flag ``status``
can raise (``ATTENTION_FLAGS``) has its rule (``labels.status_flag``), and every metric an expression —
or any line of the chapter — names is one a real scrape exports, with the labels its selectors match on."""
from __future__ import annotations

import re
import time
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.worker.observe.test_metrics import scrape_body
from worker.commands.metrics import serve
from worker.destinations.table import delivery_ref
from worker.observe.configuration import recorded_text
from worker.observe.metrics import AttemptTally
from worker.settings import Settings
from worker.store.dead_letters import DeadLetters
from worker.store.heartbeats import Heartbeats
from worker.support.status_report import ATTENTION_FLAGS

OPERATIONS = Path(__file__).resolve().parents[3] / "docs" / "operations.md"
_SELECTOR = re.compile(r"\b(wms_relay_[a-z_]+)(?:\{([^}]*)\})?")
_MATCHER = re.compile(r'([a-z_]+)\s*(?:=~|!~|!=|=)\s*"')
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def rules() -> list[dict]:
    text = OPERATIONS.read_text()
    block = text.split("### Example alert rules", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    return [rule for group in yaml.safe_load(block)["groups"] for rule in group["rules"]]


def exported(redis_server) -> dict[str, set[str]]:
    """Every metric name a scrape of a store with some of everything exports -> the label names it has."""
    r = redis_server.client(decode_responses=True)
    DeadLetters(r, delivery_ref=delivery_ref).add("receipt.create", "R-1", {}, "permanent", ["refused"])
    Heartbeats(r).beat("worker", "relay-1@h", recorded_text(Settings()))
    Heartbeats(r, clock=lambda: time.time() - 4).beat("scheduler", "scheduler-1@h")
    tally = AttemptTally()
    tally.record("trademax", "stock.adjust", "transient", 503, 0.2)
    tally.flush(r)
    server, _ = serve(Settings(redis_url=redis_server.url), "127.0.0.1", 0)
    try:
        body = scrape_body(server.server_port)
    finally:
        server.shutdown()
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(body):
        if family.type == "histogram":  # a histogram is named by its family too (its samples are suffixed)
            names.setdefault(family.name, set())
        for suffix in _SUFFIXES.get(family.type, ("",)):
            names.setdefault(family.name + suffix, set())
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def test_every_status_flag_has_its_rule():
    flagged = [rule["labels"]["status_flag"] for rule in rules() if "status_flag" in rule.get("labels", {})]
    assert sorted(flagged) == sorted(ATTENTION_FLAGS)


def test_every_metric_the_rules_and_the_chapter_name_is_exported_with_the_labels_they_match(redis_server):
    names = exported(redis_server)
    assert {"wms_relay_destination_paused", "wms_relay_circuit_state", "wms_relay_parked_deliveries",
            "wms_relay_batch_pending", "wms_relay_build_info"} <= set(names)
    missing = []
    for rule in rules():
        for name, matchers in _SELECTOR.findall(rule["expr"]):
            if name not in names:
                missing.append(f"{rule['alert']}: {name}")
            for label in _MATCHER.findall(matchers):
                if label not in names.get(name, set()):
                    missing.append(f"{rule['alert']}: {name} has no label {label}")
        for label in re.findall(r"\$labels\.([a-z_]+)", str(rule.get("annotations"))):
            if not any(label in names.get(name, set()) for name, _ in _SELECTOR.findall(rule["expr"])):
                missing.append(f"{rule['alert']}: its summary names {label}, its expression has none")
    chapter = OPERATIONS.read_text().split("## Metrics", 1)[1].split("\n## ", 1)[0]
    missing += [f"the chapter: {name}" for name, _ in _SELECTOR.findall(chapter) if name not in names]
    assert missing == []


def test_the_checks_find_a_rule_that_names_no_exported_metric(redis_server):
    names = exported(redis_server)
    wrong = 'wms_relay_destinations_paused == 1 or wms_relay_events{queue="x"} > 0'
    found = [(name, _MATCHER.findall(matchers)) for name, matchers in _SELECTOR.findall(wrong)]
    assert [name for name, _ in found if name not in names] == ["wms_relay_destinations_paused"]
    assert [label for name, labels in found for label in labels if label not in names.get(name, set())] \
        == ["queue"]
