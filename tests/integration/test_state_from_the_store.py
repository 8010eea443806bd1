"""What support sees does not depend on the caller's environment (issue 22.1): a real worker with Stock2Shop
configured records its destinations' configuration with its heartbeat; Stock2Shop is paused; then
``wms-relay status --fail-on-attention``, a real desk process and a real ``wms-relay metrics`` process —
each with only the store configured, no STOCK2SHOP_* (or any destination's) variable — all say Stock2Shop
is on and paused.  Before any worker ran, ``status`` said it did not know which destinations were on."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from benchmarks._harness import Desk, _stop
from tests.fixtures.desk_client import signed_in
from tests.fixtures.pipeline import ROOT, make_pipeline, wait_until
from tests.fixtures.sandbox import CREDENTIALS
from tests.fixtures.ports import free_port
from worker.store.heartbeats import Heartbeats

pytestmark = pytest.mark.integration

DESTINATION_PREFIXES = ("TRADEMAX_", "KACHING_", "STOCKTRIM_", "STOCK2SHOP_")


def only_the_store(pipeline) -> dict[str, str]:
    """The environment of a support person's shell: the store, and no destination's variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(DESTINATION_PREFIXES)}
    return {**env, "REDIS_URL": pipeline.env["REDIS_URL"],
            "WMS_RELAY_VAR_DIR": pipeline.env["WMS_RELAY_VAR_DIR"]}


def wms_relay(env: dict, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "worker.cli", *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_status_desk_and_metrics_read_the_workers_configuration_not_the_callers_environment(
        redis_server, sandbox, tmp_path):
    pipeline = make_pipeline(redis_server, sandbox(), tmp_path, STOCK2SHOP_BASE_URL="http://127.0.0.1:9/",
                             STOCK2SHOP_LOCATIONS="nw=Main", **CREDENTIALS["stock2shop"])
    support = only_the_store(pipeline)
    desk = metrics = None
    try:
        before = json.loads(wms_relay(support, "status", "--json").stdout)
        assert before["destinations"]["stock2shop"]["on"] is None
        assert "no worker has recorded its configuration yet" in wms_relay(support, "status").stdout

        pipeline.start_scheduler()
        pipeline.start_worker()
        r = pipeline.redis()
        wait_until(lambda: Heartbeats(r).configurations("worker"), 30,
                   "the worker to record its configuration")
        paused = wms_relay(support, "pause", "stock2shop", "--until", "5m", "--reason", "stocktake",
                           "--actor", "alice")
        assert paused.returncode == 0, paused.stderr

        status = wms_relay(support, "status", "--fail-on-attention")
        assert status.returncode == 1, status.stdout + status.stderr
        said = "Stock2Shop is paused by alice: `wms-relay resume stock2shop` sends to it again."
        assert said in status.stdout
        row = next(line for line in status.stdout.splitlines() if line.startswith("  Stock2Shop ")
                   and "delivered" not in line and "rate" not in line)
        assert row.split()[1] == "yes", status.stdout
        flow = next(line for line in status.stdout.splitlines() if "PAUSED" in line)
        assert flow.split()[0] == "Stock2Shop" and "rate 1/s" in flow and "by alice: stocktake" in flow
        assert "Configuration:         recorded by test0-" in status.stdout
        report = json.loads(wms_relay(support, "status", "--json").stdout)
        assert report["destinations"]["stock2shop"]["on"] is True
        kaching = report["destinations"]["kaching"]
        assert kaching["on"] is False and kaching["flow"] is None
        assert report["destinations"]["stock2shop"]["flow"]["max_rps"] == 1.0
        assert {"flag": "paused", "destination": "stock2shop"}.items() <= next(
            item for item in report["attention"] if item["flag"] == "paused").items()

        from worker.web.desk.users import UsersFile

        UsersFile(tmp_path / "desk-users").add("maria", "viewer", "maria-password-1")
        desk = Desk({**support, "DESK_USERS_FILE": str(tmp_path / "desk-users")}, tmp_path / "desk.log")
        overview = signed_in(desk.url, "maria", "maria-password-1").get(desk.url, timeout=30).text
        assert "Stock2Shop is paused by alice" in overview
        row = overview.split('data-destination="stock2shop"', 1)[1].split("</tr>", 1)[0]
        assert "<td>yes</td>" in row and "PAUSED until" in row and "by alice: stocktake" in row

        port = free_port()
        metrics = subprocess.Popen([sys.executable, "-m", "worker.cli", "metrics", "--port", str(port)],
                                   cwd=ROOT, env=support, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        metrics.stderr.readline()  # "Metrics on http://...": it listens
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(body) for s in family.samples}
        stock2shop = (("destination", "stock2shop"),)
        assert samples[("wms_relay_destination_paused", stock2shop)] == 1
        assert samples[("wms_relay_destination_paused", (("destination", "kaching"),))] == 0
        assert samples[("wms_relay_destination_on", stock2shop)] == 1
        assert samples[("wms_relay_destination_on", (("destination", "kaching"),))] == 0
        assert samples[("wms_relay_worker_configurations", ())] == 1
    finally:
        if desk is not None:
            desk.stop()
        _stop(metrics)
        pipeline.stop()
