"""Fixtures of the deployment tests: a real redis-server (see deploy_helpers.py).

`redis_server` starts Debian's redis-server on a free loopback port with its own temporary
folder (no system service is used). Without the binary the tests that need it are skipped,
unless SVDSCOPE_REQUIRE_REDIS is set (`make test` sets it): then they fail.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from deploy_helpers import REDIS_DATABASES, start_redis, stop_process


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server for the session: its base URL redis://127.0.0.1:PORT."""
    proc, port = start_redis(
        tmp_path_factory.mktemp("redis"), extra=["--databases", str(REDIS_DATABASES)]
    )
    try:
        yield f"redis://127.0.0.1:{port}"
    finally:
        stop_process(proc)


_databases = itertools.count(1)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """redis://127.0.0.1:PORT/N: a database of the session's redis-server for one test."""
    db = next(_databases)
    if db >= REDIS_DATABASES:
        pytest.fail("more tests use redis_url than the fixture's redis-server has databases")
    return f"{redis_server}/{db}"
