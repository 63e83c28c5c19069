"""A sending program for the crash test: queue events on disk, deliver them, or resume.

Usage: sender_child.py URL KEY QUEUE IDS COUNT. With COUNT > 0 it queues COUNT new events
(writing their ids to IDS first) and delivers them in small envelopes; with 0 it only delivers
what the queue still holds, as a restarted sender does.
"""

from __future__ import annotations

import sys
from pathlib import Path

from caliper_store.sensor import Sensor, SensorOptions, caliper_event

url, key, queue_path, ids_path, count = sys.argv[1:6]
sensor = Sensor(
    url,
    key,
    SensorOptions(sensor_id="urn:test:crash", batch_events=5, batch_interval_s=0),
    queue=Path(queue_path),
)
made = [
    caliper_event(
        "NavigationEvent",
        actor={"id": f"urn:test:user:{n % 50}", "type": "Person"},
        action="NavigatedTo",
        object={"id": f"urn:test:page:{n}", "type": "WebPage"},
    )
    for n in range(int(count))
]
with Path(ids_path).open("a") as ids:
    ids.write("".join(f"{event['id']}\n" for event in made))
if made:
    sensor.send(*made)
sensor.close()
