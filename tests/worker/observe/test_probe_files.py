"""A process's probe files say what the liveness and readiness probes need and nothing else: ``.alive``
is touched by the loop, ``.ready`` (and ``.alive``) once the store took a beat, a clean stop removes both
(and a late touch from a reconnect thread does not bring them back), and ``ages`` finds a process by
name or host, freshest first, judged on the reader's clock."""
from __future__ import annotations

import os

import pytest

from worker.observe.probe_files import ProbeFiles, ages


def test_ready_touches_both_files_alive_only_its_own(tmp_path):
    files = ProbeFiles(tmp_path, "worker", "relay-1@pod-a")
    files.alive()
    assert [name for name, _ in ages(tmp_path, "worker", "alive")] == ["relay-1@pod-a"]
    assert ages(tmp_path, "worker", "ready") == []
    files.ready()
    assert [name for name, _ in ages(tmp_path, "worker", "ready")] == ["relay-1@pod-a"]
    assert (tmp_path / "health" / "worker").stat().st_mode & 0o777 == 0o700


def test_ages_are_seconds_since_the_touch_freshest_first_by_name_or_host(tmp_path):
    for name, seconds_ago in (("relay-1@pod-a", 40), ("relay-2@pod-a", 3), ("relay-3@pod-b", 1)):
        ProbeFiles(tmp_path, "worker", name).alive()
        path = tmp_path / "health" / "worker" / f"{name}.alive"
        os.utime(path, (1_000_000 - seconds_ago, 1_000_000 - seconds_ago))
    found = ages(tmp_path, "worker", "alive", host="pod-a", now=1_000_000)
    assert found == [("relay-2@pod-a", 3.0), ("relay-1@pod-a", 40.0)]
    assert ages(tmp_path, "worker", "alive", name="relay-3@pod-b", now=1_000_000) == [("relay-3@pod-b", 1.0)]
    assert ages(tmp_path, "scheduler", "alive") == []  # another role, another directory


def test_leave_removes_both_and_a_late_touch_does_not_bring_them_back(tmp_path):
    files = ProbeFiles(tmp_path, "scheduler", "scheduler-9@pod-a")
    files.ready()
    files.leave()
    files.alive()  # the wait-for-broker thread, one beat late
    assert ages(tmp_path, "scheduler", "alive") == [] and ages(tmp_path, "scheduler", "ready") == []
    files.leave()  # twice is harmless


@pytest.mark.parametrize("name", ["../escape", ".hidden", "a/b"])
def test_a_node_name_that_is_not_a_plain_file_name_is_refused(tmp_path, name):
    with pytest.raises(ValueError):
        ProbeFiles(tmp_path, "worker", name)
