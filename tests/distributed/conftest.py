"""A throwaway Redis for the session (tests/support/redis.py), emptied for each test, and a
fresh PostgreSQL journal per test (the session cluster of tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis as redis_client

from tests.support.postgres import Postgres
from tests.support.redis import Redis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Redis]:
    with Redis() as server:
        yield server


@pytest.fixture
def broker(redis_server: Redis) -> Iterator[str]:
    """The broker's URL, its database empty."""
    client = redis_client.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    yield redis_server.url


@pytest.fixture
def pg_journal(postgres_cluster: Postgres) -> str:
    return postgres_cluster.database()
