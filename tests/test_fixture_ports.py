"""tests/fixtures/ports.py: the ports test servers get are never handed to two test processes at once
(pytest-xdist's workers, other checkouts' suites), a reservation past its hold is taken over, and
reservations past their hold are swept away instead of piling up in the temporary directory."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

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


def _aged(path: Path, seconds: float) -> Path:
    path.touch()
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_a_process_first_pick_sweeps_the_reservations_past_their_hold(tmp_path, monkeypatch):
    monkeypatch.setattr(ports, "RESERVATIONS", tmp_path)
    monkeypatch.setattr(ports, "_swept", set())
    for name in ("40001", "40002", "40003.4242.stale"):  # the last: a take-over interrupted mid-way
        _aged(tmp_path / name, ports.HOLD_SECONDS + 1)
    _aged(tmp_path / "40004", 1)  # another process's, still held
    port = ports.free_port()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"40004", str(port)})
    # Once per process: what passes its hold later waits for the next process's first pick.
    _aged(tmp_path / "40005", ports.HOLD_SECONDS + 1)
    ports.free_port()
    assert (tmp_path / "40005").exists()


class _LooksOld(type(Path())):
    """A reservation that looked past its hold at the sweep's first look, and was taken over (held
    afresh) by another process before the sweep moved it aside."""

    def stat(self, **kwargs):
        real = super().stat(**kwargs)
        return real if self.name.endswith(".swept") else SimpleNamespace(st_mtime=real.st_mtime - 1000)


class _Folder(type(Path())):
    def iterdir(self):
        return (_LooksOld(str(entry)) for entry in super().iterdir())


def test_a_reservation_taken_over_while_it_is_swept_is_put_back(tmp_path):
    held = _aged(tmp_path / "40006", 1)
    inode = held.stat().st_ino
    assert ports.sweep_stale(_Folder(str(tmp_path))) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["40006"] and held.stat().st_ino == inode
