"""``make run`` runs ``wms-relay demo``: it must bring everything up on the embedded defaults, land every
sample event in the state the README promises, and stop every process it started."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.ports import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_demo_lands_every_sample_event_and_stops_cleanly(tmp_path):
    from worker.store.embedded import stop

    unset = ("REDIS_URL", "TRADEMAX_SECRET", "TRADEMAX_API_KEY", "KACHING_BASE_URL", "STOCKTRIM_BASE_URL",
             "STOCK2SHOP_BASE_URL")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["WMS_RELAY_VAR_DIR"] = str(tmp_path / "var")
    try:
        out = subprocess.run([sys.executable, "-m", "worker.cli", "demo", "--exit-when-done",
                              "--flower-port", str(free_port()), "--desk-port", str(free_port()),
                              "--ingest-port", str(free_port())],
                             cwd=ROOT, env=env, capture_output=True, timeout=240)
    finally:
        stop(tmp_path / "var")
    text = out.stdout.decode()
    assert out.returncode == 0, text + out.stderr.decode()
    outcomes = text.split("Outcomes:")[1].split("One count, every channel")[0]
    states = dict(re.findall(r"^\s+(\S+)\s+\S+\s+(\w+)", outcomes, flags=re.M))
    assert "waiting" in text.split("Outcomes:")[0]                  # the update waited for its create
    assert "retrying" in text.split("Outcomes:")[0]                 # the flaky receipt was retried
    delivered = [line for line in outcomes.splitlines() if " delivered " in line]
    assert len(delivered) == 9, outcomes
    assert states["receipt.create"] in ("delivered", "dead")
    assert "Dead letters waiting for a person: 1 " in text
    assert "Stopped: worker, scheduler, Flower, desk, ingest, sandboxes." in text
    assert re.search(r"Support desk: +http://127\.0\.0\.1:\d+/ \(sign in as demo", text)
    assert "Ingest (HTTP door):      http://127.0.0.1:" in text        # fed through the HTTP door
    assert "(HTTP 422)" in text and "(HTTP 202)" in text
    # The sample catalogs were loaded through `wms-relay catalog import` (the strict sandboxes need them)...
    assert re.search(r"^Catalog kaching: .*added [1-9]", text, flags=re.M), text
    assert re.search(r"^Catalog stock2shop: .*added [1-9]", text, flags=re.M), text
    # ...and the sample count reached all four channels, each sandbox holding it — at ka-ching and
    # Stock2Shop as the variant its catalog row names, at StockTrim (identity) as the artno itself.
    channels = text.split("One count, every channel")[1].split("Dead letters")[0]
    for title in ("Trademax", "StockTrim"):
        assert re.search(rf"^\s+{title}\s+delivered\s+.*its stock now: .*77", channels, flags=re.M), channels
    for title in ("ka-ching", "Stock2Shop"):
        assert re.search(rf"^\s+{title}\s+delivered\s+.*its stock now as CHAIR-OAK / CHAIR-OAK-NATURAL: .*77",
                         channels, flags=re.M), channels
    # The published draft (create + update, then publish) reached StockTrim as one sales order of its lines
    # as final: line 1000 and the update's line 2000.
    sales = text.split("as a StockTrim sales order")[1]
    assert re.search(r"^\s+StockTrim\s+delivered", sales, flags=re.M), sales
    assert re.findall(r"sales line\s+\S+:(\d+)\s+(\S+)\s+x (\d+)", sales) == [
        ("1000", "123-45", "12"), ("2000", "123-46", "12")], sales
    assert (tmp_path / "var" / "demo" / "worker.log").exists()
