"""The benchmarks' and integration tests' process settings are settings the service accepts: a combination
Settings refuses makes every worker exit at start (the throughput benchmark once did, after the harness's
short settings gained a stranded-event threshold its own longer timeouts did not allow)."""
from __future__ import annotations

from benchmarks._harness import FAST_SETTINGS, process_settings
from benchmarks.throughput import BENCH_SETTINGS
from tests.fixtures.pipeline import FAST_SETTINGS as PIPELINE_SETTINGS
from worker.settings import Settings


def test_the_harness_settings_are_valid():
    assert Settings.from_env(FAST_SETTINGS).stranded_after_seconds == 30


def test_the_throughput_benchmark_runs_on_the_service_defaults(monkeypatch):
    for name, value in FAST_SETTINGS.items():
        monkeypatch.setenv(name, value)  # even with the short settings exported in the shell
    env = process_settings(BENCH_SETTINGS, short_timeouts=False)
    settings = Settings.from_env(env)
    defaults = Settings(log_level="INFO")
    for name in ("connect_timeout", "read_timeout", "claim_lease_seconds", "visibility_timeout_seconds",
                 "retry_base_seconds", "retry_cap_seconds", "dependency_wait_seconds",
                 "stranded_after_seconds", "worker_concurrency"):
        assert getattr(settings, name) == getattr(defaults, name), name


def test_the_integration_pipeline_settings_are_valid():
    assert Settings.from_env(PIPELINE_SETTINGS).stranded_after_seconds == 15
