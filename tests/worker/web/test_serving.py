"""worker.web.serving's limits for a door: the settings reach waitress's options (connection limit, idle
timeout, its cleanup interval, poll()), are checked at start-up, and the open-file limit fits them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from worker.settings import Settings, SettingsError
from worker.web.serving import DoorLimits, waitress_options

ROOT = Path(__file__).resolve().parents[3]


def test_the_settings_reach_waitress():
    limits = DoorLimits.from_settings(Settings.from_env({"WEB_CONNECTION_LIMIT": "2500",
                                                         "WEB_CHANNEL_TIMEOUT_SECONDS": "30"}))
    options = waitress_options(limits, threads=8, max_body_bytes=1024)
    assert (options["connection_limit"], options["channel_timeout"], options["cleanup_interval"]) == (
        2500, 30, 5)
    assert options["asyncore_use_poll"] is True and options["max_request_body_size"] == 1024
    assert DoorLimits.from_settings(Settings()) == DoorLimits(1000, 15)
    assert DoorLimits(10, 2).cleanup_interval == 1 and DoorLimits(10, 9).cleanup_interval == 3


@pytest.mark.parametrize("name, value", [("WEB_CONNECTION_LIMIT", "5"), ("WEB_CHANNEL_TIMEOUT_SECONDS", "0"),
                                         ("WEB_CONNECTION_LIMIT", "lots")])
def test_bad_limits_stop_start_up_naming_the_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_the_open_file_limit_is_raised_to_fit_or_the_limit_lowered_to_fit_it():
    """Run in a child process: the limits it sets are its own (a lowered hard limit cannot be raised)."""
    script = """
import resource, sys
from worker.web.serving import DoorLimits, fit_descriptors
resource.setrlimit(resource.RLIMIT_NOFILE, (300, 4000))
fitted = fit_descriptors(DoorLimits(1000, 15))
print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], fitted.connection_limit)
resource.setrlimit(resource.RLIMIT_NOFILE, (300, 600))
squeezed = fit_descriptors(DoorLimits(1000, 15))
print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], squeezed.connection_limit, squeezed.channel_timeout)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    raised, squeezed = (line.split() for line in done.stdout.splitlines())
    assert raised == ["3256", "1000"]  # the soft limit raised to fit 1,000 connections
    assert squeezed == ["600", "114", "15"]  # the hard limit holds 114: a warning names both
    assert "WEB_CONNECTION_LIMIT=1000" in done.stderr
