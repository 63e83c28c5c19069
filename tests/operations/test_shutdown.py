"""SIGTERM under load: every request the server read is answered after its commit, then it exits.

And a rolling restart of two processes over one database loses nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from caliper_store.storage import Store
from tests.conftest import start_server
from tests.fixtures.payloads import canvas_event, envelope
from tests.fixtures.polling import wait_for
from tests.fixtures.server import ServerProcess

NOW = "2024-01-01T00:00:00.000000Z"
SENDERS = 4
EVENTS_PER_ENVELOPE = 10


@dataclass
class Outcomes:
    """What the senders saw: ids acknowledged, ids whose request got no answer, other answers."""

    acknowledged: set[str] = field(default_factory=set)
    unanswered: set[str] = field(default_factory=set)
    other_statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def send_until_refused(base_url: str, key: str, outcomes: Outcomes) -> None:
    """Post envelopes of new events until the server stops taking connections."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    with httpx.Client(base_url=base_url, timeout=60) as http:
        while True:
            events = [canvas_event(user=n) for n in range(EVENTS_PER_ENVELOPE)]
            ids = {str(event["id"]) for event in events}
            try:
                answer = http.post(
                    "/caliper", content=orjson.dumps(envelope(events)), headers=headers
                )
            except httpx.ConnectError:
                return  # nobody listens any more: the request was never read
            except httpx.TransportError:
                with outcomes.lock:
                    outcomes.unanswered |= ids
                continue  # a connection closed before it carried this request; try a new one
            with outcomes.lock:
                if answer.status_code == 200:
                    outcomes.acknowledged |= ids
                else:
                    outcomes.other_statuses.append(answer.status_code)


def test_sigterm_under_load_answers_what_it_read_and_loses_nothing(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    running = start_server(tmp_path, database_url)
    key, _ = store.keys.create(label="Canvas", now=NOW)
    outcomes = Outcomes()
    senders = [
        threading.Thread(target=send_until_refused, args=(running.base_url, key, outcomes))
        for _ in range(SENDERS)
    ]
    for sender in senders:
        sender.start()
    wait_for(lambda: len(outcomes.acknowledged) >= 500, "500 acknowledged events")
    assert running.stop(), running.log()  # SIGTERM, then a clean exit within the wait
    for sender in senders:
        sender.join()

    stored = set(store.iter_event_ids())
    assert outcomes.other_statuses == []
    assert outcomes.acknowledged <= stored  # acknowledged means committed
    # A request that got no answer was never read: had it been, it would be stored.
    assert not (outcomes.unanswered & stored)
    assert len(stored) == len(outcomes.acknowledged)


def send_with_failover(
    servers: list[ServerProcess], key: str, envelopes: int, outcomes: Outcomes
) -> None:
    """Post envelopes, each until some server acknowledges it (the same ids every attempt)."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    turn = 0
    for _ in range(envelopes):
        events = [canvas_event(user=n) for n in range(EVENTS_PER_ENVELOPE)]
        body = orjson.dumps(envelope(events))
        while True:
            server = servers[turn % len(servers)]
            turn += 1
            try:
                answer = httpx.post(server.base_url + "/caliper", content=body, headers=headers)
            except httpx.TransportError:
                continue  # that one is restarting: the other takes it
            if answer.status_code == 200:
                break
            with outcomes.lock:
                outcomes.other_statuses.append(answer.status_code)
        with outcomes.lock:
            outcomes.acknowledged |= {str(event["id"]) for event in events}


def more_acknowledged_than(outcomes: Outcomes, count: int) -> Callable[[], bool]:
    """A condition: more than ``count`` events acknowledged."""
    return lambda: len(outcomes.acknowledged) > count


def test_a_rolling_restart_of_two_processes_under_load_loses_nothing(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    first = start_server(tmp_path, database_url)
    (tmp_path / "second").mkdir()
    second = start_server(tmp_path / "second", database_url)
    key, _ = store.keys.create(label="Canvas", now=NOW)
    outcomes = Outcomes()
    envelopes = 150
    senders = [
        threading.Thread(
            target=send_with_failover, args=([first, second], key, envelopes, outcomes)
        )
        for _ in range(SENDERS)
    ]
    for sender in senders:
        sender.start()
    for server in (first, second):
        wait_for(more_acknowledged_than(outcomes, len(outcomes.acknowledged) + 200), "ingest")
        assert server.stop(), server.log()
        server.restart()
    for sender in senders:
        sender.join()
    assert outcomes.other_statuses == []
    stored = list(store.iter_event_ids())
    assert len(stored) == len(set(stored)) == SENDERS * envelopes * EVENTS_PER_ENVELOPE
    assert set(stored) == outcomes.acknowledged
    assert first.stop(), first.log()
    assert second.stop(), second.log()
