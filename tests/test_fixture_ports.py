"""tests/fixtures/ports.py: the ports test servers get are never handed to two test processes at once
(pytest-xdist's workers, other checkouts' suites), and a reservation past its hold is taken over."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.fixtures import ports

ROOT = Path(__file__).resolve().parents[1]
PICK = "from tests.fixtures.ports import free_port; print(' '.join(str(free_port()) for _ in range(40)))"


def test_processes_picking_at_once_are_never_given_the_same_port():
    pickers = [subprocess.Popen([sys.executable, "-c", PICK], cwd=ROOT, stdout=subprocess.PIPE, text=True)
               for _ in range(4)]
    given = [picker.communicate(timeout=60)[0].split() for picker in pickers]
    assert all(len(mine) == 40 for mine in given)
    every = [port for mine in given for port in mine]
    assert len(set(every)) == len(every)


def test_a_fresh_reservation_is_skipped_and_a_stale_one_taken_over(tmp_path, monkeypatch):
    monkeypatch.setattr(ports, "RESERVATIONS", tmp_path)
    port = ports.free_port()
    reservation = tmp_path / str(port)
    assert reservation.exists()
    assert not ports._reserve(reservation)  # another process asking for it now is refused
    old = time.time() - ports.HOLD_SECONDS - 1
    os.utime(reservation, (old, old))
    assert ports._reserve(reservation)  # past its hold: taken over, and held afresh
    assert time.time() - reservation.stat().st_mtime < ports.HOLD_SECONDS
    assert sorted(p.name for p in tmp_path.iterdir()) == [str(port)]
