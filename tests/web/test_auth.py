"""The ingest key cache: a burst of requests with an expired entry makes one database lookup."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from starlette.requests import Request

from caliper_store.storage import ApiKey, KeyRegistry, Store
from caliper_store.storage.schema import utc_text
from caliper_store.web.auth import KeyAuthenticator


class CountingRegistry(KeyRegistry):
    """The real registry, counting how often ingest had to ask the database."""

    lookups = 0

    def authenticate(self, key: str) -> ApiKey | None:
        self.lookups += 1
        return super().authenticate(key)


def request_with(key: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "POST",
            "headers": [(b"authorization", f"Bearer {key}".encode())],
        }
    )


def test_a_burst_on_an_expired_cache_entry_asks_the_database_once(store: Store) -> None:
    secret, _ = store.keys.create(label="Canvas", now=utc_text(datetime.now(UTC)))
    registry = CountingRegistry(store.engine, retry_after_s=1)
    authenticator = KeyAuthenticator(registry)

    async def burst() -> list[ApiKey]:
        return await asyncio.gather(
            *(authenticator.authenticate(request_with(secret), is_cached=True) for _ in range(64))
        )

    keys = asyncio.run(burst())
    assert {key.label for key in keys} == {"Canvas"}
    assert registry.lookups == 1
    authenticator._cache.clear()  # as when the entry's time is up
    asyncio.run(burst())
    assert registry.lookups == 2
