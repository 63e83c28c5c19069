"""Sessions: logins, logouts and timeouts per day, and each session with its duration."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from caliper_store.reports.measures import (
    MICROS_PER_SECOND,
    ReportEvent,
    day_of,
    read_events,
    rounded,
    time_conditions,
)
from caliper_store.reports.params import ReportQuery
from caliper_store.reports.report import Report, ReportSettings, as_of, method_of
from caliper_store.storage import Condition, Snapshot, micros_text

SESSION_ACTIONS = {"LoggedIn": "logins", "LoggedOut": "logouts", "TimedOut": "timeouts"}
END_ACTIONS = ("LoggedOut", "TimedOut")
# Actors whose events are read in one statement to find where unended sessions stopped.
ACTORS_PER_READ = 100
# A person's session ids whose events are read in one statement.
SESSIONS_PER_READ = 100

DEFINITIONS = {
    "session": "From a SessionEvent LoggedIn to the first LoggedOut or TimedOut of the same "
    "session id after it (whoever the actor of the end is: Caliper's TimedOut comes from the "
    "application). A session with no end closes at the last event of its person with that "
    "session id; one whose login carries no session id cannot be followed and only counts as "
    "a login.",
    "durationSeconds": "From the login's eventTime to the end's.",
    "days": "Logins, logouts and timeouts by the day (in tz) of their eventTime.",
}


@dataclass
class _Session:
    login: ReportEvent
    end: ReportEvent | None = None
    last_seen: ReportEvent | None = None

    @property
    def ended_by(self) -> ReportEvent:
        """The event the session ends with: its end, else its last event, else its login."""
        return self.end or self.last_seen or self.login


def _last_events(snapshot: Snapshot, open_sessions: list[_Session], until: str | None) -> None:
    """Set where each unended session stopped: its person's last event with its session id."""
    by_actor: dict[str, list[_Session]] = defaultdict(list)
    for session in open_sessions:
        by_actor[session.login.actor_id].append(session)
    actors = sorted(by_actor)
    for start in range(0, len(actors), ACTORS_PER_READ):
        chunk = actors[start : start + ACTORS_PER_READ]
        since = micros_text(
            min(s.login.event_time_micros for actor in chunk for s in by_actor[actor])
        )
        conditions = [Condition("actor_id", "in", tuple(chunk)), *time_conditions(since, until)]
        for event in read_events(snapshot, conditions):
            for session in by_actor[event.actor_id]:
                is_same = event.session_id == session.login.session_id
                if is_same and event.event_time_micros >= session.login.event_time_micros:
                    session.last_seen = event


def _session_events(snapshot: Snapshot, query: ReportQuery) -> list[ReportEvent]:
    """The period's logins, logouts and timeouts the report counts, in eventTime order.

    For one person: theirs, by the actor index, and the rest of their sessions' (an
    application's TimedOut has the application as its actor), by the session index (revision
    0011). Reading every SessionEvent of the store for one person took 0.8-3.4 s at 10 million
    events.
    """
    period = time_conditions(query.since, query.until)
    session_type = Condition("event_type", "in", ("SessionEvent",))
    if query.actor_id is None:
        return [
            e for e in read_events(snapshot, [session_type, *period]) if e.action in SESSION_ACTIONS
        ]
    own = [
        event
        for event in read_events(
            snapshot, [session_type, Condition("actor_id", "in", (query.actor_id,)), *period]
        )
        if event.action in SESSION_ACTIONS
    ]
    session_ids = sorted(
        {e.session_id for e in own if e.action == "LoggedIn" and e.session_id is not None}
    )
    others: list[ReportEvent] = []
    for start in range(0, len(session_ids), SESSIONS_PER_READ):
        chunk = tuple(session_ids[start : start + SESSIONS_PER_READ])
        conditions = [session_type, Condition("session_id", "in", chunk), *period]
        others.extend(
            event
            for event in read_events(snapshot, conditions)
            if event.action in SESSION_ACTIONS and event.actor_id != query.actor_id
        )
    return sorted([*own, *others], key=lambda event: (event.event_time_micros, event.seq))


def sessions(snapshot: Snapshot, query: ReportQuery, settings: ReportSettings) -> Report:
    """Per day, the session events; per session, when it began and ended and how long it ran."""
    zone = query.zone
    session_events = _session_events(snapshot, query)
    logins = [
        event
        for event in session_events
        if event.action == "LoggedIn" and query.actor_id in (None, event.actor_id)
    ]
    ends: dict[str, list[ReportEvent]] = defaultdict(list)
    for event in session_events:
        if event.action in END_ACTIONS and event.session_id is not None:
            ends[event.session_id].append(event)
    own_sessions = {login.session_id for login in logins if login.session_id is not None}
    days: dict[str, Counter[str]] = defaultdict(Counter)
    for event in session_events:
        is_own = query.actor_id in (None, event.actor_id) or (
            event.action != "LoggedIn" and event.session_id in own_sessions
        )
        if is_own:
            days[day_of(event.event_time_micros, zone).isoformat()][
                SESSION_ACTIONS[event.action]
            ] += 1
    found: list[_Session] = []
    by_session: dict[str, list[_Session]] = defaultdict(list)
    for login in logins:
        if login.session_id is None:
            continue
        session = _Session(login)
        found.append(session)
        by_session[login.session_id].append(session)
    for session_id, opened in by_session.items():
        ending = ends.get(session_id, [])
        for position, session in enumerate(opened):
            limit = (
                opened[position + 1].login.event_time_micros if position + 1 < len(opened) else None
            )
            session.end = next(
                (
                    end
                    for end in ending
                    if end.event_time_micros >= session.login.event_time_micros
                    and (limit is None or end.event_time_micros < limit)
                ),
                None,
            )
    _last_events(snapshot, [s for s in found if s.end is None], query.until)
    rows = [_row(session) for session in found]
    per_actor: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        per_actor[row["actorId"]].append(row["durationSeconds"])
    summary: dict[str, Any] = {
        "days": [
            {"date": day, **{name: counts[name] for name in SESSION_ACTIONS.values()}}
            for day, counts in sorted(days.items())
        ],
        "actors": [
            {
                "actorId": actor,
                "sessions": len(durations),
                "totalSeconds": rounded(sum(durations)),
            }
            for actor, durations in sorted(per_actor.items())
        ],
    }
    return Report("sessions", rows, method_of(query, DEFINITIONS), as_of(snapshot), summary)


def _row(session: _Session) -> dict[str, Any]:
    ended_by = session.ended_by
    seconds = (ended_by.event_time_micros - session.login.event_time_micros) / MICROS_PER_SECOND
    return {
        "actorId": session.login.actor_id,
        "sessionId": session.login.session_id,
        "startedAt": session.login.event_time,
        "endedAt": ended_by.event_time,
        "endedBy": session.end.action if session.end is not None else "lastEvent",
        "durationSeconds": rounded(seconds),
    }
