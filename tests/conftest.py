"""Fixtures shared by the whole suite, and Hypothesis' profiles.

Hypothesis runs with the ``ci`` profile when ``CI`` is set (``.ci/run`` sets it): derandomized, so a CI
run generates the same examples every time and a failure reproduces with the same command, with no example
database; elsewhere the ``dev`` profile draws fresh examples each run and prints the seed of a failure
(``--hypothesis-seed=N`` reruns it).  ``HYPOTHESIS_PROFILE`` picks one explicitly."""
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings

# Both from Hypothesis' "default" profile: Hypothesis itself switches to its own "ci" profile when CI is
# set, and "dev" must not inherit that.  Neither judges wall-clock time (no deadline, no "too slow" health
# check): the machines are shared and the suite never asserts speed.
_UNTIMED = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True, database=None,
                          print_blob=True, **_UNTIMED)
settings.register_profile("dev", parent=settings.get_profile("default"), print_blob=True, **_UNTIMED)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))

# A test that configures the process-wide Celery app without a REDIS_URL starts the embedded store; it
# must never start one in the checkout's own var/ (the developer's store) nor leave it running: the whole
# run gets a private data directory, and the server in it, if any, is stopped when the run ends.
_RUN_VAR_DIR = Path(tempfile.mkdtemp(prefix="wms-relay-tests-")) / "var"
os.environ.setdefault("WMS_RELAY_VAR_DIR", str(_RUN_VAR_DIR))


def pytest_sessionfinish(session, exitstatus):
    import shutil

    from worker.store import embedded

    try:
        embedded.stop(_RUN_VAR_DIR)
    finally:
        shutil.rmtree(_RUN_VAR_DIR.parent, ignore_errors=True)


pytest_plugins = ["tests.fixtures.clock", "tests.fixtures.redis_server", "tests.fixtures.sandbox",
                  "tests.fixtures.pipeline"]
