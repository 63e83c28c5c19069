"""What the lifespan builds and every handler reaches through ``request.state``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.requests import Request

from caliper_store.config import Settings
from caliper_store.ingest import IngestLimits
from caliper_store.privacy import Privacy
from caliper_store.storage import ApiKey, GroupCommitWriter, Store, utc_text
from caliper_store.web.auth import KeyAuthenticator, require_scope
from caliper_store.web.budget import InflightBudget


@dataclass(frozen=True, slots=True)
class AppContext:
    """The long-lived objects of one server process."""

    settings: Settings
    store: Store
    writer: GroupCommitWriter
    authenticator: KeyAuthenticator
    limits: IngestLimits
    budget: InflightBudget
    # The ingest rules and pseudonym secret (privacy.load_privacy), checked at start.
    privacy: Privacy


def context_of(request: Request) -> AppContext:
    """The AppContext the lifespan put in the request state."""
    context: AppContext = request.state.context
    return context


async def admin_of(request: Request) -> tuple[AppContext, ApiKey]:
    """The app's context and the request's key, which must hold the admin scope (403 if not)."""
    context = context_of(request)
    key = await context.authenticator.authenticate(request, is_cached=False)
    require_scope(key, "admin")
    return context, key


def utc_now_text() -> str:
    """Now, as the fixed-width UTC text the store keeps."""
    return utc_text(datetime.now(UTC))
