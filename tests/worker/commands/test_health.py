"""Health as an orchestrator and a monitoring system see it: ``wms-relay health worker|scheduler`` exits 0
only while that process's heartbeat is fresh (on this host, by name, or anywhere), and ``status`` flags
what needs a person — no live worker, no live scheduler, retries overdue by more than a minute, dead
letters, uncertain events — with ``--fail-on-attention`` exiting 1 then.  Heartbeats are written with an
injected clock, so their staleness is set exactly, without sleeping."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from worker.destinations.table import delivery_ref
from worker.store.dead_letters import DeadLetters
from worker.store.heartbeats import Heartbeats
from worker.store.retry_schedule import RetrySchedule

HOST = socket.gethostname()


def beat(store, role: str, name: str, seconds_ago: float) -> None:
    """A heartbeat written ``seconds_ago`` seconds ago (the writer's clock is injected)."""
    Heartbeats(store, clock=lambda: time.time() - seconds_ago).beat(role, name)


def test_health_follows_the_heartbeat_of_this_hosts_process(store, cli):
    assert cli("health", "worker")[0] == 1
    assert "no worker on host" in cli("health", "worker")[1]

    beat(store, "worker", f"relay-1@{HOST}", seconds_ago=3)
    code, out, _ = cli("health", "worker")
    assert (code, out.strip()) == (0, f"OK: relay-1@{HOST} beat 3 s ago")

    beat(store, "worker", f"relay-1@{HOST}", seconds_ago=45)  # stale: more than 30 s
    code, out, _ = cli("health", "worker")
    assert code == 1 and f"no worker on host {HOST} beat within 30 s (last: relay-1@{HOST} 45 s ago)" in out
    assert cli("health", "worker", "--within", "60")[0] == 0


def test_health_by_name_and_on_any_host(store, cli):
    beat(store, "scheduler", "scheduler-9@elsewhere", seconds_ago=1)
    assert cli("health", "scheduler")[0] == 1  # not on this host
    assert cli("health", "scheduler", "--any-host")[0] == 0
    assert cli("health", "scheduler", "--name", "scheduler-9@elsewhere")[0] == 0
    assert cli("health", "scheduler", "--name", "scheduler-1@elsewhere")[0] == 1
    report = json.loads(cli("health", "scheduler", "--any-host", "--json")[1])
    assert report["alive"] and report["beats"][0]["name"] == "scheduler-9@elsewhere"
    assert cli("health", "worker", "--any-host")[0] == 1


def test_health_of_an_unreachable_store_fails(monkeypatch, cli):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    code, _, err = cli("health", "worker")
    assert code == 3 and "cannot reach Redis" in err


def test_status_flags_what_needs_a_person_and_fails_on_attention(store, cli):
    now = time.time()
    beat(store, "scheduler", f"scheduler-1@{HOST}", seconds_ago=300)
    beat(store, "worker", f"relay-1@{HOST}", seconds_ago=7200)
    RetrySchedule(store).schedule("receipt.create:R-1", {"task": "trademax.receipt.create", "event": {}},
                                  now - 7200)
    letters = DeadLetters(store, delivery_ref=delivery_ref)
    letters.add("receipt.create", "R-2", {"transaction_id": "R-2"}, "permanent", ["refused"])

    code, out, _ = cli("status", "--json", "--fail-on-attention")
    report = json.loads(out)
    assert code == 1
    assert [a["flag"] for a in report["attention"]] == ["no_worker", "no_scheduler", "overdue_retries",
                                                        "dead_letters"]
    assert report["workers"] == [] and report["worker_heartbeats"][0]["alive"] is False
    assert report["scheduler"]["name"] == f"scheduler-1@{HOST}" and not report["scheduler"]["alive"]
    assert report["scheduled_retries"]["most_overdue_seconds"] >= 7200

    code, out, _ = cli("status")
    assert code == 0  # without --fail-on-attention the report is not an error
    assert "Scheduled retries:     1 (next due 2 h ago)" in out
    assert f"Scheduler:             last tick 5 min ago (scheduler-1@{HOST})" in out
    assert "Workers alive:         0" in out
    assert "No worker is alive (last heartbeat 2 h ago" in out
    assert "The scheduler has not ticked for 5 min" in out
    assert "A scheduled retry is 2 h overdue" in out


def test_status_with_live_processes_and_nothing_parked_needs_no_one(store, cli):
    beat(store, "scheduler", f"scheduler-1@{HOST}", seconds_ago=2)
    beat(store, "worker", f"relay-1@{HOST}", seconds_ago=1)
    RetrySchedule(store).schedule("receipt.create:R-1", {"task": "trademax.receipt.create", "event": {}},
                                  time.time() - 20)  # due 20 s ago: late, but not yet overdue
    code, out, _ = cli("status", "--fail-on-attention")
    assert code == 0, out
    assert "Scheduler:             last tick 2 s ago" in out and "Workers alive:         1 (relay-1@" in out
    assert out.rstrip().endswith("Nothing needs a person right now.")


def test_status_flags_redis_memory_at_80_percent_of_maxmemory(store, cli):
    used = int(store.info("memory")["used_memory"])
    store.config_set("maxmemory", str(int(used / 0.9)))
    try:
        report = json.loads(cli("status", "--json")[1])
    finally:
        store.config_set("maxmemory", "0")
    assert report["redis_memory"]["used_fraction"] >= 0.8
    assert "memory" in [a["flag"] for a in report["attention"]]
    assert "MiB used, no maxmemory set" in cli("status")[1]


def test_dead_purge_deletes_only_closed_letters_past_the_cutoff(store, cli):
    letters = DeadLetters(store, clock=lambda: time.time() - 100 * 86400, delivery_ref=delivery_ref)
    old = letters.add("receipt.create", "R-1", {}, "permanent", ["refused"])
    letters.discard(old, actor="ann", reason="cancelled")
    kept = letters.add("receipt.create", "R-2", {}, "permanent", ["refused"])
    with pytest.raises(SystemExit) as refused:  # --closed is required
        cli("dead", "purge", "--older-than", "90d")
    assert refused.value.code == 2
    code, out, _ = cli("dead", "purge", "--closed", "--dry-run")
    assert code == 0 and "Would delete 1 closed dead letter" in out and old in out and "Dry run" in out
    report = json.loads(cli("dead", "purge", "--closed", "--older-than", "90d", "--json")[1])
    assert report["deleted"] == [old] and not report["dry_run"]
    after = DeadLetters(store, delivery_ref=delivery_ref)
    assert after.get(old) is None and after.get(kept).status == "open"


# The probes: this host's own files, no store -------------------------------------------------------------

def probe_file(var_dir, role: str, name: str, kind: str, seconds_ago: float) -> None:
    from worker.observe.probe_files import ProbeFiles

    ProbeFiles(var_dir, role, name).ready() if kind == "ready" else ProbeFiles(var_dir, role, name).alive()
    at = time.time() - seconds_ago
    os.utime(var_dir / "health" / role / f"{name}.{kind}", (at, at))


def test_liveness_and_readiness_read_this_hosts_own_files_without_any_store(monkeypatch, tmp_path, cli):
    var_dir = tmp_path / "var"
    monkeypatch.setenv("WMS_RELAY_VAR_DIR", str(var_dir))
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing there: the probes never ask it
    code, out, _ = cli("health", "worker", "--liveness")
    assert code == 1 and "has a probe file here (not started yet, or it stopped cleanly)" in out

    probe_file(var_dir, "worker", f"relay-1@{HOST}", "alive", seconds_ago=4)
    code, out, _ = cli("health", "worker", "--liveness")
    assert (code, out.strip()) == (0, f"OK: relay-1@{HOST} ran its loop 4 s ago")
    assert cli("health", "worker", "--readiness")[0] == 1  # the store never took a beat

    probe_file(var_dir, "worker", f"relay-1@{HOST}", "ready", seconds_ago=45)
    code, out, _ = cli("health", "worker", "--readiness")
    assert code == 1 and f"(last: relay-1@{HOST} 45 s ago)" in out
    assert cli("health", "worker", "--readiness", "--within", "60")[0] == 0
    assert cli("health", "worker", "--liveness")[0] == 0  # ready() touched .alive just now
    assert cli("health", "scheduler", "--liveness")[0] == 1

    probe_file(var_dir, "scheduler", "scheduler-1@elsewhere", "alive", seconds_ago=1)
    assert cli("health", "scheduler", "--liveness")[0] == 1  # another host's file is not ours
    assert cli("health", "scheduler", "--liveness", "--name", "scheduler-1@elsewhere")[0] == 0
    report = json.loads(cli("health", "scheduler", "--liveness", "--name", "scheduler-1@elsewhere",
                            "--json")[1])
    assert report["probe"] == "liveness" and report["alive"] and report["processes"][0]["age_seconds"] <= 2
    code, _, err = cli("health", "worker", "--liveness", "--any-host")
    assert code == 2 and "--any-host asks the store" in err


def test_the_probes_know_the_var_dir_roles_and_staleness_the_rest_of_wms_relay_knows():
    from worker.commands import health
    from worker.settings import Settings
    from worker.store import heartbeats

    assert health.ROLES == heartbeats.ROLES and health.STALE_AFTER_SECONDS == heartbeats.STALE_AFTER_SECONDS
    for env in ({}, {"WMS_RELAY_VAR_DIR": ""}, {"WMS_RELAY_VAR_DIR": "/srv/relay/var"}):
        assert str(Settings.from_env(env).var_dir) == (env.get("WMS_RELAY_VAR_DIR") or "var")


def test_a_probe_imports_neither_celery_nor_redis_nor_the_settings(tmp_path):
    """What keeps a probe at a Python start and one stat (benchmarks/probes.py measures the CPU)."""
    code = ("import sys; from worker.cli import main; main(['health', 'worker', '--liveness']); "
            "print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('celery', 'kombu', 'redis', 'worker')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "WMS_RELAY_VAR_DIR": str(tmp_path)})
    loaded = done.stdout.strip().splitlines()[-1]
    assert loaded == "['worker', 'worker.cli', 'worker.commands', 'worker.commands.health', " \
                     "'worker.observe', 'worker.observe.probe_files']", done.stdout + done.stderr
