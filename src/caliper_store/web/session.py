"""Dashboard sessions: a read or admin key, checked once at login, then a signed cookie.

The cookie holds the key's id and the login time, signed with ``session_secret`` (itsdangerous,
HMAC-SHA1 over the payload and a timestamp), never the key itself. It is HttpOnly (no script
can read it), SameSite=Strict (no other site's page can send it, so no form elsewhere can act
with it) and Secure when the request came over HTTPS. Every page checks the signature, the age
(``session_max_age_hours``) and that the key is still active, so revoking a key ends its
sessions at their next request.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from caliper_store.errors import NotFound
from caliper_store.storage import ApiKey, KeyRegistry

COOKIE_NAME = "caliper_store_session"
SALT = "caliper-store dashboard session"


@dataclass(frozen=True, slots=True)
class Session:
    """Who is logged in: the key they logged in with."""

    key: ApiKey

    @property
    def is_admin(self) -> bool:
        """Whether the key may replay and discard quarantined items."""
        return "admin" in self.key.scopes


def may_read(key: ApiKey) -> bool:
    """Whether a key may see the dashboard: read or admin scope, and active."""
    return key.is_active and bool({"read", "admin"} & set(key.scopes))


class SessionSigner:
    """Makes and checks session cookies for one secret."""

    def __init__(self, secret: str, *, max_age_hours: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=SALT)
        self.max_age_s = max_age_hours * 3600

    def cookie_value(self, key: ApiKey) -> str:
        """The signed value naming this key."""
        return str(self._serializer.dumps({"key": key.id}))

    def key_id(self, value: str) -> int | None:
        """The key id of a cookie value that is signed by us and young enough, else None."""
        try:
            payload = self._serializer.loads(value, max_age=self.max_age_s)
        except BadSignature:  # also SignatureExpired
            return None
        key_id = payload.get("key") if isinstance(payload, dict) else None
        return key_id if isinstance(key_id, int) else None


async def current_session(
    request: Request, signer: SessionSigner, keys: KeyRegistry
) -> Session | None:
    """The session of this request's cookie, or None (no cookie, bad, old, or key revoked)."""
    value = request.cookies.get(COOKIE_NAME)
    if not value:
        return None
    key_id = signer.key_id(value)
    if key_id is None:
        return None
    try:
        key = await run_in_threadpool(keys.get, key_id)
    except NotFound:
        return None
    return Session(key) if may_read(key) else None


async def check_login(keys: KeyRegistry, presented: str) -> ApiKey | None:
    """The key a login form presented, if it exists, is active and may read."""
    if not presented or len(presented) > 200:
        return None
    key = await run_in_threadpool(keys.authenticate, presented.strip())
    if key is None or not may_read(key):
        return None
    return key


def set_session_cookie(
    response: Response, request: Request, signer: SessionSigner, key: ApiKey
) -> None:
    """Log ``key`` in on this response."""
    response.set_cookie(
        COOKIE_NAME,
        signer.cookie_value(key),
        max_age=signer.max_age_s,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    """Log out on this response."""
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
