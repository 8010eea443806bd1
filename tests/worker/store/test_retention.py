"""Retention: a closed dead letter (retried or discarded) is deleted DEAD_LETTER_RETENTION_DAYS after it was
closed — by the scheduler's hourly chore, or by ``wms-relay dead purge`` — with its index entries; an open
letter is never deleted, whatever its age; a dry run changes nothing.  Time is an injected clock."""
from __future__ import annotations

import fakeredis

from tests.fixtures.clock import T0, Clock
from worker.commands.processes import purge_closed_letters
from worker.delivery.relay import build_relay
from worker.encoding import text
from worker.scheduling.scheduler import Scheduler
from worker.settings import Settings
from worker.store.dead_letter_search import LetterQuery, search
from worker.destinations.table import delivery_ref
from worker.store.dead_letters import DeadLetters
from worker.store.retry_schedule import RetrySchedule

DAY = 86400.0


def letter(letters: DeadLetters, key: str) -> str:
    return letters.add("receipt.create", key, {"transaction_id": key}, "permanent", ["refused"])


def test_only_letters_closed_before_the_cutoff_go(store_client):
    clock = Clock()
    letters = DeadLetters(store_client, clock=clock, delivery_ref=delivery_ref)
    never_touched = letter(letters, "R-OPEN")
    retried_early, discarded_early, discarded_late = (letter(letters, k) for k in ("R-1", "R-2", "R-3"))
    clock.now += DAY
    letters.take(retried_early, actor="ann", reason="fixed")
    letters.discard(discarded_early, actor="ann", reason="cancelled")
    clock.now += 50 * DAY
    letters.discard(discarded_late, actor="bo", reason="cancelled")
    cutoff = T0 + 10 * DAY

    preview = letters.purge_closed(cutoff, dry_run=True)
    assert sorted(x.letter_id for x in preview) == sorted([retried_early, discarded_early])
    assert letters.get(retried_early) is not None  # a dry run changes nothing

    purged = letters.purge_closed(cutoff, batch=1)  # batch 1: the walk survives its own deletions
    assert sorted(x.letter_id for x in purged) == sorted([retried_early, discarded_early])
    assert letters.get(retried_early) is None and letters.get(discarded_early) is None
    assert letters.latest_for("receipt.create", "R-1") is None
    assert letters.get(discarded_late).status == "discarded" and letters.get(never_touched).status == "open"
    assert [x.letter_id for x in letters.list(include_closed=True)] == [discarded_late, never_touched]
    assert [x.letter_id for x in letters.purge_closed(T0 + 1000 * DAY)] == [discarded_late]
    assert letters.get(never_touched).status == "open" and letters.count() == 1


def test_a_newer_letter_of_the_same_event_keeps_its_latest_entry(store_client):
    clock = Clock()
    letters = DeadLetters(store_client, clock=clock, delivery_ref=delivery_ref)
    first = letter(letters, "R-1")
    letters.take(first, actor="ann", reason="fixed")
    clock.now += DAY
    second = letter(letters, "R-1")  # it failed again
    letters.purge_closed(T0 + DAY / 2)
    assert letters.get(first) is None and letters.latest_for("receipt.create", "R-1").letter_id == second


def test_a_purged_letter_of_another_destination_loses_its_latest_entry(store_client):
    """``dead:latest`` is keyed by the delivery ref (``kaching/stock.adjust:E-1``): a purged ka-ching
    letter takes its own entry with it and leaves Trademax's letter of the same event alone."""
    clock = Clock()
    letters = DeadLetters(store_client, clock=clock, delivery_ref=delivery_ref)
    event = {"event_id": "E-1"}
    theirs = letters.add("stock.adjust", "E-1", event, "permanent", ["refused"], destination="kaching")
    ours = letters.add("stock.adjust", "E-1", event, "permanent", ["refused"])
    letters.discard(theirs, actor="ann", reason="cancelled")
    assert store_client.hget("wms:dead:latest", "kaching/stock.adjust:E-1") is not None
    clock.now += 2 * DAY
    assert [x.letter_id for x in letters.purge_closed(T0 + DAY)] == [theirs]
    assert store_client.hget("wms:dead:latest", "kaching/stock.adjust:E-1") is None
    assert letters.latest_for("stock.adjust", "E-1", "kaching") is None
    assert letters.latest_for("stock.adjust", "E-1").letter_id == ours


def test_a_purged_letter_leaves_no_entry_in_the_search_indexes(store_client):
    """The search's facets, text and terms (issue 12) lose the purged letter; a shared identifier keeps
    the other letter that names it; the facet value sets keep every value ever seen."""
    clock = Clock()
    letters = DeadLetters(store_client, clock=clock, delivery_ref=delivery_ref)
    gone = letters.add("receipt.create", "R-1", {"transaction_id": "R-1", "order_no": "IO-7"}, "permanent",
                       ["refused"])
    stays = letters.add("dispatch.create", "D-1", {"transaction_id": "D-1", "order_no": "IO-7"}, "invalid",
                        ["bad"])
    letters.discard(gone, actor="ann", reason="cancelled")
    clock.now += 2 * DAY
    assert [x.letter_id for x in letters.purge_closed(T0 + DAY)] == [gone]

    def keys_naming(letter_id: str) -> list[str]:
        """Every index key with the id as a member, a field, or a word of a value (the letter's own hash
        names it in its "id" field)."""
        found = []
        for key in map(text, store_client.scan_iter("wms:dead:*")):
            kind = text(store_client.type(key))
            if kind == "hash":
                entries = {text(k): text(v) for k, v in store_client.hgetall(key).items()}
                if letter_id in entries or any(letter_id in v.split() for v in entries.values()):
                    found.append(key)
            elif kind == "zset" and store_client.zscore(key, letter_id) is not None:
                found.append(key)
        return sorted(found)

    assert keys_naming(gone) == []
    indexes = {"wms:dead:facets", "wms:dead:text", "wms:dead:terms",
               "wms:dead:open:operation:dispatch.create"}
    assert indexes <= set(keys_naming(stays))
    found = search(letters, LetterQuery(identifier="IO-7", status="any")).letters
    assert [x.letter_id for x in found] == [stays]
    assert store_client.sismember("wms:dead:values:operation", "receipt.create")


def test_the_scheduler_chore_expires_closed_letters_after_the_retention_period():
    clock = Clock()
    redis_client = fakeredis.FakeRedis(decode_responses=True)
    settings = Settings(dead_letter_retention_days=90)
    relay = build_relay(settings, redis_client=redis_client, clock=clock, sends=False)
    kept_open = letter(relay.dead_letters, "R-OPEN")
    closed = letter(relay.dead_letters, "R-1")
    relay.dead_letters.discard(closed, actor="ann", reason="cancelled")
    purges = []
    scheduler = Scheduler(RetrySchedule(redis_client, clock=clock), lambda m: None, clock=clock,
                          purge=lambda: purges.append(purge_closed_letters(relay, settings)),
                          purge_interval=3600)
    clock.now += 89 * DAY
    scheduler.tick()
    clock.now += 1800
    scheduler.tick()  # within the hour: the chore does not run again
    assert purges == [0] and relay.dead_letters.get(closed) is not None
    clock.now += DAY + 1800
    scheduler.tick()
    assert purges == [0, 1] and relay.dead_letters.get(closed) is None
    assert relay.dead_letters.get(kept_open).status == "open"


def test_retention_zero_keeps_closed_letters_forever():
    clock = Clock()
    relay = build_relay(Settings(dead_letter_retention_days=0), redis_client=fakeredis.FakeRedis(),
                        clock=clock, sends=False)
    closed = letter(relay.dead_letters, "R-1")
    relay.dead_letters.discard(closed, actor="ann", reason="x")
    clock.now += 10_000 * DAY
    assert purge_closed_letters(relay, relay.settings) == 0 and relay.dead_letters.get(closed) is not None
