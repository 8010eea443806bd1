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
# run gets a private data directory, and the server in it, if any, is stopped when the run ends.  Each
# pytest-xdist worker is a run of its own: it inherits the directory the controlling process made (its
# environment is the controller's), so it makes its own instead — one worker's end must not stop the
# server another is still using.  A WMS_RELAY_VAR_DIR set before pytest started is kept.
_RUN_VAR_DIR = Path(tempfile.mkdtemp(prefix="wms-relay-tests-")) / "var"
_OURS = "WMS_RELAY_TESTS_OWN_VAR_DIR"
if "WMS_RELAY_VAR_DIR" not in os.environ or os.environ.get(_OURS) == os.environ["WMS_RELAY_VAR_DIR"]:
    os.environ["WMS_RELAY_VAR_DIR"] = os.environ[_OURS] = str(_RUN_VAR_DIR)


def pytest_sessionfinish(session, exitstatus):
    import shutil

    from worker.store import embedded

    try:
        embedded.stop(_RUN_VAR_DIR)
    finally:
        shutil.rmtree(_RUN_VAR_DIR.parent, ignore_errors=True)


pytest_plugins = ["tests.fixtures.clock", "tests.fixtures.redis_server", "tests.fixtures.sandbox",
                  "tests.fixtures.pipeline"]
