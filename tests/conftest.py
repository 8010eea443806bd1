pytest_plugins = ["tests.fixtures.redis_server", "tests.fixtures.sandbox", "tests.fixtures.pipeline"]
