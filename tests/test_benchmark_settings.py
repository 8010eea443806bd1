"""The benchmarks' and integration tests' process settings are settings the service accepts: a combination
Settings refuses makes every worker exit at start (the throughput benchmark once did, after the harness's
short settings gained a stranded-event threshold its own longer timeouts did not allow)."""
from __future__ import annotations

from benchmarks._harness import FAST_SETTINGS
from benchmarks.throughput import DEFAULT_SETTINGS
from tests.fixtures.pipeline import FAST_SETTINGS as PIPELINE_SETTINGS
from worker.settings import Settings


def test_the_harness_settings_are_valid():
    assert Settings.from_env(FAST_SETTINGS).stranded_after_seconds == 30


def test_the_throughput_benchmark_runs_on_the_service_defaults_it_names():
    settings = Settings.from_env({**FAST_SETTINGS, **DEFAULT_SETTINGS})
    assert settings.stranded_after_seconds == Settings().stranded_after_seconds
    assert settings.visibility_timeout_seconds == Settings().visibility_timeout_seconds


def test_the_integration_pipeline_settings_are_valid():
    assert Settings.from_env(PIPELINE_SETTINGS).stranded_after_seconds == 15
