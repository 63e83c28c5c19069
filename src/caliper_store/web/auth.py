"""API key authentication: the key from ``Authorization`` (Bearer or bare), checked against hashes.

Ingest uses a short-lived cache of active keys to keep the database off the hot path; the
group-commit writer checks every key again inside its transaction, so a deactivated key is
refused at once all the same. Other routes look the key up every time.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from caliper_store.errors import Forbidden, MalformedRequest, Unauthorized
from caliper_store.storage import ApiKey, KeyRegistry, hash_key

CACHE_TTL_S = 5.0
MAX_CACHED_KEYS = 10_000


def presented_key(request: Request) -> str:
    """The key in ``Authorization``: ``Bearer <key>`` or, as Moodle sends it, the bare key.

    Raises:
        MalformedRequest: two Authorization headers; which one counts would be a guess.
        Unauthorized: no key.
    """
    sent = request.headers.getlist("authorization")
    if len(sent) > 1:
        raise MalformedRequest(
            f"the request has {len(sent)} Authorization headers; send one", field="Authorization"
        )
    header = sent[0].strip() if sent else ""
    scheme, _, rest = header.partition(" ")
    key = rest.strip() if scheme.lower() == "bearer" else header
    if not key:
        raise Unauthorized("send the API key in Authorization: Bearer <key>", field="Authorization")
    return key


def require_scope(key: ApiKey, scope: str) -> None:
    """Refuse a key that lacks ``scope``."""
    if scope not in key.scopes:
        raise Forbidden(f"this API key has no {scope!r} scope", field="Authorization")


def require_read(key: ApiKey) -> None:
    """Refuse a key that may not read events: it needs ``read``, or ``admin``, which implies it.

    Ingest keys sit in producers' configurations; they never read anything back.
    """
    if "read" not in key.scopes and "admin" not in key.scopes:
        raise Forbidden("this API key has no 'read' scope", field="Authorization")


@dataclass
class _Cached:
    key: ApiKey
    until: float


class KeyAuthenticator:
    """Turns a request into the ApiKey that sent it, or raises Unauthorized."""

    def __init__(self, registry: KeyRegistry) -> None:
        self._registry = registry
        self._cache: dict[str, _Cached] = {}
        self._lookups: dict[str, asyncio.Future[ApiKey | None]] = {}

    async def authenticate(self, request: Request, *, is_cached: bool) -> ApiKey:
        """The active key that sent this request.

        Args:
            request: the incoming request.
            is_cached: ingest only; the writer re-checks the key in its transaction.
        """
        key = presented_key(request)
        digest = hash_key(key)
        if is_cached:
            cached = self._cache.get(digest)
            if cached is not None and cached.until > time.monotonic():
                return cached.key
            found = await self._shared_lookup(key, digest)
        else:
            found = await run_in_threadpool(self._registry.authenticate, key)
        if found is None or not found.is_active:
            self._cache.pop(digest, None)
            raise Unauthorized(
                "the API key is unknown, deactivated or revoked", field="Authorization"
            )
        if len(self._cache) >= MAX_CACHED_KEYS:
            self._cache.clear()
        self._cache[digest] = _Cached(found, time.monotonic() + CACHE_TTL_S)
        return found

    async def _shared_lookup(self, key: str, digest: str) -> ApiKey | None:
        # When an entry expires, every in-flight request of that producer misses at once (64
        # database lookups at once under load, every CACHE_TTL_S); one lookup serves them all.
        pending = self._lookups.get(digest)
        if pending is None:
            pending = asyncio.ensure_future(run_in_threadpool(self._registry.authenticate, key))
            self._lookups[digest] = pending
            pending.add_done_callback(lambda _: self._lookups.pop(digest, None))
        return await asyncio.shield(pending)

    def forget(self, request: Request) -> None:
        """Drop the request's key from the cache (the writer found it inactive)."""
        try:
            self._cache.pop(hash_key(presented_key(request)), None)
        except (Unauthorized, MalformedRequest):
            return
