"""The logins actors were seen with (``actor_logins``), so that a person can be found by one.

A producer may send a person's login beside their id (Canvas's ``user_login``, on the actor or
the event). No column holds it, so a request to find or erase a person by login would have to
read every raw event; instead each commit keeps the pairs it stored (``login_rows``), in the
transaction that stores the events, and an erase or a purge removes them with the events.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from caliper_store.storage.rollups import StoredEvent
from caliper_store.storage.schema import utc_micros

CANVAS_EXTENSION = "com.instructure.canvas"
LOGIN_FIELD = "user_login"
# Longer values are no login: they are not kept.
MAX_LOGIN_CHARS = 256


def actor_login(event: dict[str, Any]) -> str | None:
    """The login an event gives for its actor, where producers put one."""
    places = []
    actor = event.get("actor")
    if isinstance(actor, dict) and isinstance(actor.get("extensions"), dict):
        places.append(actor["extensions"].get(CANVAS_EXTENSION))
    if isinstance(event.get("extensions"), dict):
        places.append(event["extensions"].get(CANVAS_EXTENSION))
    for place in places:
        if isinstance(place, dict):
            login = place.get(LOGIN_FIELD)
            if isinstance(login, str) and login.strip() and len(login) <= MAX_LOGIN_CHARS:
                return login
    return None


def newest_pairs(seen: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """``(login, actor id, newest eventTime)`` once per pair of ``seen`` triples, in key order.

    In key order, so that concurrent PostgreSQL writers lock the rows in one order.
    """
    newest: dict[tuple[str, str], str] = {}
    for login, actor_id, event_time in seen:
        pair = (login, actor_id)
        if pair not in newest or event_time > newest[pair]:
            newest[pair] = event_time
    return [(login, actor_id, time) for (login, actor_id), time in sorted(newest.items())]


def login_rows(stored: Iterable[StoredEvent], *, times_as_micros: bool) -> list[tuple[Any, ...]]:
    """``newest_pairs`` of these events, as ``login_upsert_sql`` binds them.

    SQLite binds times as integer microseconds.
    """
    pairs = newest_pairs(
        (event.actor_login, event.actor_id, event.event_time)
        for event in stored
        if event.actor_login is not None
    )
    if not times_as_micros:
        return list(pairs)
    return [(login, actor_id, utc_micros(time)) for login, actor_id, time in pairs]


def login_upsert_sql(mark: str, *, dialect_name: str) -> str:
    """The upsert of ``login_rows``, with the backend's parameter mark."""
    greatest = "GREATEST" if dialect_name == "postgresql" else "max"
    return (
        f"INSERT INTO actor_logins (login, actor_id, last_event_time) VALUES ({mark}, {mark}, "
        f"{mark}) ON CONFLICT (login, actor_id) DO UPDATE SET last_event_time = "
        f"{greatest}(actor_logins.last_event_time, excluded.last_event_time)"
    )
