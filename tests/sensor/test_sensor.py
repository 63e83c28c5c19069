"""The sensor against a real caliper-store server over real HTTP."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
from itertools import pairwise
from pathlib import Path

import pytest

from caliper_store.errors import DeliveryFailed
from caliper_store.sensor import (
    AsyncSensor,
    DiskQueue,
    RetryPolicy,
    Sensor,
    SensorOptions,
    new_event_id,
)
from caliper_store.storage import Store
from tests.conftest import start_server
from tests.fixtures.payloads import canvas_event
from tests.fixtures.polling import wait_for
from tests.fixtures.proxy import proxy_to
from tests.fixtures.server import ServerProcess

SENDER = Path(__file__).with_name("sender_child.py")


@pytest.fixture
def key(store: Store) -> str:
    created, _ = store.keys.create(label="sensor", now="2024-01-01T00:00:00.000000Z")
    return created


def events(count: int) -> list[dict[str, object]]:
    return [canvas_event(event_id=new_event_id()) for _ in range(count)]


def options(**changes: object) -> SensorOptions:
    return SensorOptions(sensor_id="urn:test:sensor", want_receipts=True, **changes)  # type: ignore[arg-type]  # test shorthand


def stored_ids(store: Store) -> list[str]:
    return list(store.iter_event_ids())


def test_batches_by_count_leave_the_rest_for_the_flush(
    server: ServerProcess, store: Store, key: str
) -> None:
    sensor = Sensor(
        server.base_url + "/caliper", key, options(batch_events=10, batch_interval_s=None)
    )
    sent = events(25)
    sensor.send(*sent)
    wait_for(lambda: sensor.stats.envelopes == 2, "two full envelopes")
    assert len(sensor.queue) == 5
    assert len(stored_ids(store)) == 20
    sensor.close()
    assert (sensor.stats.envelopes, sensor.stats.stored) == (3, 25)
    assert sorted(stored_ids(store)) == sorted(str(e["id"]) for e in sent)


def test_batches_by_time_send_a_part_batch_once_the_interval_is_up(
    server: ServerProcess, store: Store, key: str
) -> None:
    with Sensor(
        server.base_url + "/caliper", key, options(batch_events=1000, batch_interval_s=0.2)
    ) as sensor:
        sensor.send(*events(7))
        wait_for(lambda: sensor.stats.delivered == 7, "the interval's envelope")
        assert sensor.stats.envelopes == 1
    assert len(stored_ids(store)) == 7


def test_503_with_retry_after_is_retried_after_at_least_that_long(
    server: ServerProcess, store: Store, key: str
) -> None:
    with proxy_to(server.base_url) as (url, proxy):
        proxy.refuse_next, proxy.retry_after = 2, "1"
        with Sensor(url + "/caliper", key, options(batch_events=50)) as sensor:
            sensor.send(*events(30))
            sensor.flush()
        assert proxy.statuses == [503, 503, 200]
        gaps = [later - earlier for earlier, later in pairwise(proxy.seen_at)]
        assert min(gaps) >= 1.0
    assert sensor.stats.retries == 2
    assert len(stored_ids(store)) == 30


def test_a_refused_key_is_reported_once_and_the_events_kept_with_the_answer(
    server: ServerProcess,
) -> None:
    with proxy_to(server.base_url) as (url, proxy):
        sensor = Sensor(url + "/caliper", "not-a-key", options(batch_events=5))
        sensor.send(*events(5))
        sensor.close()
        assert proxy.statuses == [401]
    assert sensor.stats.rejected == 5
    assert {(r.status, len(r.body) > 0) for r in sensor.queue.rejected} == {(401, True)}


def test_flush_reports_an_unreachable_store_and_keeps_the_events(tmp_path: Path) -> None:
    queue_path = tmp_path / "queue.db"
    retry = RetryPolicy(max_attempts=2, base_delay_s=0.01)
    sensor = Sensor("http://127.0.0.1:9/caliper", "k", options(retry=retry), queue=queue_path)
    sensor.send(*events(3))
    with pytest.raises(DeliveryFailed) as failed:
        sensor.flush()
    assert failed.value.undelivered == 3
    with pytest.raises(DeliveryFailed):
        sensor.close()
    assert len(DiskQueue(queue_path)) == 3


def test_async_sensor_batches_and_flushes(server: ServerProcess, store: Store, key: str) -> None:
    sent = events(23)

    async def run() -> int:
        async with AsyncSensor(
            server.base_url + "/caliper", key, options(batch_events=10, concurrency=2)
        ) as sensor:
            await sensor.send(*sent)
            await sensor.flush()
            return sensor.stats.envelopes

    assert asyncio.run(run()) == 3
    assert sorted(stored_ids(store)) == sorted(str(e["id"]) for e in sent)


def test_a_sender_killed_mid_delivery_and_restarted_delivers_every_event_once(
    tmp_path: Path, database_url: str, store: Store, key: str
) -> None:
    running = start_server(tmp_path, database_url)
    queue_path = tmp_path / "queue.db"
    ids_path = tmp_path / "ids.txt"
    url = running.base_url + "/caliper"
    total = 3000
    child = subprocess.Popen(
        [sys.executable, str(SENDER), url, key, str(queue_path), str(ids_path), str(total)]
    )
    wait_for(lambda: len(stored_ids(store)) >= 200, "the sender's first deliveries")
    child.send_signal(signal.SIGKILL)
    child.wait()
    left = len(DiskQueue(queue_path))
    assert left > 0, "the sender finished before it was killed: the test proved nothing"
    resumed = subprocess.run(
        [sys.executable, str(SENDER), url, key, str(queue_path), str(ids_path), "0"],
        check=True,
        timeout=120,
    )
    assert resumed.returncode == 0
    sent = ids_path.read_text().split()
    stored = stored_ids(store)
    assert len(sent) == total
    assert sorted(stored) == sorted(sent)
    assert len(DiskQueue(queue_path)) == 0
    assert running.stop(), running.log()


def test_many_threads_may_send_at_once(server: ServerProcess, store: Store, key: str) -> None:
    sent = [events(100) for _ in range(8)]
    with Sensor(
        server.base_url + "/caliper", key, options(batch_events=50, concurrency=3)
    ) as sensor:
        threads = [threading.Thread(target=sensor.send, args=batch) for batch in sent]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(stored_ids(store)) == sorted(str(e["id"]) for batch in sent for e in batch)
