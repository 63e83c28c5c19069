"""Realistic Caliper events for the benchmark: Learn-style batches and Canvas-style single events.

Events are built once as templates (a seeded random mix of users, courses, event kinds), serialized
with orjson and split around the event id. A request then costs a few byte concatenations plus a
fresh id per event, so the load generator spends its CPU on sockets, not on JSON.
"""

from __future__ import annotations

import os
import random
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

SCENARIOS = ("learn", "canvas")
CALIPER_V1P1 = "http://purl.imsglobal.org/ctx/caliper/v1p1"
BB_CONTEXT = "http://caliper.blackboard.com/ctx/caliper/v1p1/Context"
TEMPLATE_COUNT = 4096

_ID_MARKER = "@@EVENT-ID@@"
_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 CanvasStudent/7.8.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
)
_COURSE_SUBJECTS = (
    "Linear Algebra",
    "Organic Chemistry",
    "World History",
    "Microeconomics",
    "Data Structures",
    "Cell Biology",
    "Academic Writing",
    "Statistics for Social Sciences",
    "Complex Analysis",
    "Introduction to Psychology",
    "Thermodynamics",
    "Spanish II",
    "Ethics",
    "Marketing 101",
)
_CONTENT_TITLES = (
    "Week {n} Readings",
    "Lecture {n} Slides",
    "Assignment {n}",
    "Quiz {n}",
    "Lab {n} Instructions",
    "Discussion: Topic {n}",
    "Module {n} Overview",
    "Practice Problems Set {n}",
)


@dataclass(frozen=True, slots=True)
class EventTemplate:
    """One serialized event split around its id: the event is `pre + id + post`."""

    pre: bytes
    post: bytes


@dataclass(frozen=True, slots=True)
class Scenario:
    """A workload: which events, how many per envelope, how ids are spelled."""

    name: str
    events_per_envelope: int
    id_prefix: bytes
    templates: tuple[EventTemplate, ...]
    envelope_head: bytes
    envelope_tail: bytes

    @property
    def mean_event_bytes(self) -> float:
        """Mean serialized size of one event, id included."""
        total = sum(len(t.pre) + len(t.post) for t in self.templates)
        return total / len(self.templates) + len(self.id_prefix) + 36


class IdSource:
    """Event ids unique across the whole run, cheap to make, random in their leading digits.

    Shape: `xxxxxxxx-rrrr-4rrr-vrrr-cccccccccccc` (a valid UUID 4): `x` fresh random per id, so
    inserts land all over a B-tree as real UUIDs do; `r`/`v` random per run; `c` a counter, so two
    ids of one run can never collide.
    """

    def __init__(self) -> None:
        run = secrets.token_hex(6)
        variant = "89ab"[int(run[11], 16) % 4]
        self._middle = f"-{run[0:4]}-4{run[4:7]}-{variant}{run[7:10]}-".encode()
        self._next = 0

    @property
    def issued(self) -> int:
        """How many ids this source has handed out."""
        return self._next

    def take(self, count: int, prefix: bytes) -> list[bytes]:
        """Return `count` fresh ids, each starting with `prefix` (`urn:uuid:` or nothing)."""
        rnd = os.urandom(4 * count).hex().encode()
        start = self._next
        self._next += count
        middle = self._middle
        return [
            b"%s%s%s%012x" % (prefix, rnd[8 * i : 8 * i + 8], middle, start + i)
            for i in range(count)
        ]


def build_scenario(name: str, *, seed: int = 1, template_count: int = TEMPLATE_COUNT) -> Scenario:
    """Build the templates of one scenario (`learn` or `canvas`)."""
    rng = random.Random(f"{name}:{seed}")
    now = datetime.now(UTC)
    if name == "learn":
        world: _LearnWorld | _CanvasWorld = _LearnWorld(rng)
        per_envelope, prefix, sensor = 100, b"", _LearnWorld.SENSOR
    elif name == "canvas":
        world = _CanvasWorld(rng)
        per_envelope, prefix, sensor = 1, b"urn:uuid:", _CanvasWorld.ACCOUNT_URL
    else:
        raise ValueError(f"unknown scenario {name!r}; choose from {SCENARIOS}")
    templates = []
    for _ in range(template_count):
        event_time = now - timedelta(seconds=rng.uniform(0, 3600))
        templates.append(_split_template(world.event(_iso(event_time))))
    head = b'{"sensor":%s,"sendTime":%s,"dataVersion":%s,"data":[' % (
        orjson.dumps(sensor),
        orjson.dumps(_iso(now)),
        orjson.dumps(CALIPER_V1P1),
    )
    return Scenario(name, per_envelope, prefix, tuple(templates), head, b"]}")


class EnvelopeSource:
    """Hands out envelope bodies as lists of byte pieces, each event with a fresh id."""

    def __init__(self, scenario: Scenario, ids: IdSource) -> None:
        self.scenario = scenario
        self._ids = ids
        self._cursor = 0
        templates = scenario.templates
        self._pre = [t.pre for t in templates]
        self._post = [t.post for t in templates]
        id_len = len(scenario.id_prefix) + 36
        self._event_len = [len(t.pre) + len(t.post) + id_len for t in templates]
        self._frame_len = len(scenario.envelope_head) + len(scenario.envelope_tail)

    def next_body(self) -> tuple[list[bytes], int, int]:
        """Return (pieces of one envelope body, body length in bytes, number of events)."""
        scenario = self.scenario
        n = scenario.events_per_envelope
        count = len(self._pre)
        start = self._cursor
        self._cursor = (start + n) % count
        ids = self._ids.take(n, scenario.id_prefix)
        pieces = [scenario.envelope_head]
        length = self._frame_len + n - 1
        for k in range(n):
            i = (start + k) % count
            if k:
                pieces.append(b",")
            pieces += (self._pre[i], ids[k], self._post[i])
            length += self._event_len[i]
        pieces.append(scenario.envelope_tail)
        return pieces, length, n

    def next_rows(self, count: int) -> list[tuple[str, str]]:
        """Return `count` events as (id, raw JSON) rows, for the bare database ceilings."""
        ids = self._ids.take(count, self.scenario.id_prefix)
        size = len(self._pre)
        start = self._cursor
        self._cursor = (start + count) % size
        rows = []
        for k, event_id in enumerate(ids):
            i = (start + k) % size
            rows.append((event_id.decode(), (self._pre[i] + event_id + self._post[i]).decode()))
        return rows


def _split_template(event: dict[str, Any]) -> EventTemplate:
    raw = orjson.dumps(event)
    pre, marker, post = raw.partition(orjson.dumps(_ID_MARKER))
    if not marker or _ID_MARKER.encode() in post:
        raise AssertionError("the id marker must appear exactly once in a template")
    return EventTemplate(pre + b'"', b'"' + post)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _ipv4(rng: random.Random) -> str:
    return ".".join(
        str(rng.randint(low, high)) for low, high in ((11, 223), (0, 255), (0, 255), (1, 254))
    )


class _LearnWorld:
    """Blackboard Learn (SaaS) shapes: caliper-mapping ids, flat `bb:` extensions, plain UUIDs."""

    SITE = "54b54b42-dd02-42f8-88ed-07bd719bfb7c"
    BASE = f"https://caliper-mapping.cloudbb.blackboard.com/v1/sites/{SITE}"
    SENSOR = SITE
    USERS = 4000
    COURSES = 300

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.users = [(rng.getrandbits(128).to_bytes(16).hex(), n) for n in range(self.USERS)]
        self.courses = [
            (rng.getrandbits(128).to_bytes(16).hex(), n, rng.choice(_COURSE_SUBJECTS))
            for n in range(self.COURSES)
        ]

    def event(self, event_time: str) -> dict[str, Any]:
        rng = self.rng
        user_hex, user_n = rng.choice(self.users)
        course_hex, course_n, subject = self.courses[(user_n * 7 + rng.randrange(5)) % self.COURSES]
        is_instructor = user_n % 40 == 0
        ip = _ipv4(rng)
        agent = rng.choice(_USER_AGENTS)
        user_id = f"{self.BASE}/users/{user_hex}"
        course_id = f"{self.BASE}/courses/{course_hex}"
        context: str | list[str] = (
            [BB_CONTEXT, CALIPER_V1P1] if rng.random() < 0.7 else CALIPER_V1P1
        )
        kind = rng.choices(("nav", "view", "grade"), weights=(55, 35, 10))[0]
        content_pk = f"_{rng.randint(1000, 999999)}_1"
        title = rng.choice(_CONTENT_TITLES).format(n=rng.randint(1, 14))
        event: dict[str, Any] = {
            "@context": context,
            "type": {"nav": "NavigationEvent", "view": "ViewEvent", "grade": "GradeEvent"}[kind],
            "id": _ID_MARKER,
            "actor": {
                "id": user_id,
                "type": "Person",
                "extensions": {
                    "bb:user.id": f"_{user_n + 100}_1",
                    "bb:user.externalId": f"s{1000000 + user_n * 37}",
                },
            },
            "action": {"nav": "NavigatedTo", "view": "Viewed", "grade": "Graded"}[kind],
        }
        if kind == "grade":
            item = f"{self.BASE}/gradableItems/{content_pk}"
            attempt = f"{item}/attempts/_{rng.randint(1000, 999999)}_1"
            max_score = rng.choice((10, 20, 50, 100))
            event["actor"] = {
                "id": f"{self.BASE}/applications/learn",
                "type": "SoftwareApplication",
            }
            event["object"] = {
                "id": attempt,
                "type": "Attempt",
                "assignee": {"id": user_id, "type": "Person"},
                "assignable": {"id": item, "type": "AssignableDigitalResource", "name": title},
                "count": rng.randint(1, 3),
                "dateCreated": event_time,
                "extensions": {"bb:user.externalId": f"s{1000000 + user_n * 37}"},
            }
            event["generated"] = {
                "id": f"{attempt}/score",
                "type": "Score",
                "attempt": attempt,
                "maxScore": max_score,
                "scoreGiven": round(rng.uniform(0, max_score), 1),
                "scoredBy": f"{self.BASE}/applications/learn",
                "dateCreated": event_time,
            }
        else:
            event["object"] = {
                "id": f"{self.BASE}/content/{content_pk}",
                "type": "WebPage" if kind == "nav" else "DigitalResource",
                "name": title,
                "extensions": {
                    "bb:content.handler": rng.choice(
                        (
                            "resource/x-bb-document",
                            "resource/x-bb-file",
                            "resource/x-bb-forumlink",
                            "resource/x-bb-assignment",
                            "resource/x-bb-externallink",
                        )
                    ),
                    "bb:content.isFolder": False,
                },
            }
        event["eventTime"] = event_time
        event["edApp"] = {
            "id": f"{self.BASE}/applications/learn",
            "type": "SoftwareApplication",
            "name": "Blackboard Learn",
            "version": "3900.82.0-rel.39+4a8b1f2",
        }
        event["group"] = {
            "id": course_id,
            "type": "CourseOffering",
            "courseNumber": f"{subject[:4].upper()}{100 + course_n}-2024FA-{1 + course_n % 4:03d}",
            "name": subject,
            "extensions": {
                "bb:course.id": f"_{course_n + 2000}_1",
                "bb:course.externalId": f"{subject[:4].upper()}_{100 + course_n}_2024FA",
            },
        }
        if rng.random() < 0.5:
            event["membership"] = {
                "id": f"{course_id}/members/{user_hex}",
                "type": "Membership",
                "member": user_id,
                "organization": course_id,
                "roles": ["Instructor"] if is_instructor else ["Learner"],
                "status": "Active",
            }
        session = rng.getrandbits(128).to_bytes(16).hex().upper()
        event["session"] = {"id": f"{self.BASE}/sessions/{session}", "type": "Session"}
        event["extensions"] = {
            "bb:request.headers.ipAddress": ip,
            "bb:request.headers.agent": agent,
        }
        return event


class _CanvasWorld:
    """Canvas live-events shapes, as in /work/shared/corpus/canvas: URNs, nested extensions."""

    HOST = "oxana.instructure.com"
    ACCOUNT_URL = f"http://{HOST}/"
    ROOT_ACCOUNT_UUID = "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"
    SHARD = "2107000000"
    USERS = 5000
    COURSES = 400
    ASSETS = (
        ("course", "home", "Entity"),
        ("course", "modules", "Entity"),
        ("course", "assignments", "Entity"),
        ("course", "grades", "Entity"),
        ("course", "files", "Entity"),
        ("course", "syllabus", "Entity"),
        ("assignment", None, "AssignableDigitalResource"),
        ("attachment", None, "Entity"),
        ("wiki_page", None, "Page"),
        ("discussion_topic", None, "Thread"),
        ("quizzes:quiz", None, "Entity"),
        ("context_external_tool", None, "Entity"),
    )

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.sessions = [rng.getrandbits(128).to_bytes(16).hex() for _ in range(2000)]

    def urn(self, kind: str, n: int) -> str:
        return f"urn:instructure:canvas:{kind}:{self.SHARD}{n:07d}"

    def event(self, event_time: str) -> dict[str, Any]:
        rng = self.rng
        user_n = rng.randrange(1, self.USERS + 1)
        course_n = (user_n * 13 + rng.randrange(4)) % self.COURSES + 500
        user = self.urn("user", user_n)
        course = self.urn("course", course_n)
        kind = rng.choices(
            ("asset", "modified", "session", "submitted", "graded"), weights=(72, 8, 8, 7, 5)
        )[0]
        actor: dict[str, Any] = {
            "id": user,
            "type": "Person",
            "extensions": {
                "com.instructure.canvas": {
                    "user_login": f"student{user_n}@example.edu",
                    "user_sis_id": f"{user_n:06d}-S",
                    "root_account_id": f"{self.SHARD}0000001",
                    "root_account_lti_guid": f"{self.ROOT_ACCOUNT_UUID}.{self.HOST}",
                    "root_account_uuid": self.ROOT_ACCOUNT_UUID,
                    "entity_id": f"{self.SHARD}{user_n:07d}",
                }
            },
        }
        entity_n = rng.randrange(1, 400000)
        group = {
            "id": course,
            "type": "CourseOffering",
            "extensions": {
                "com.instructure.canvas": {
                    "context_type": "Course",
                    "entity_id": f"{self.SHARD}{course_n:07d}",
                }
            },
        }
        path = f"/api/v1/courses/{course_n}"
        event: dict[str, Any] = {"@context": CALIPER_V1P1, "id": _ID_MARKER}
        if kind == "asset":
            asset_type, subtype, object_type = rng.choice(self.ASSETS)
            if asset_type == "course":
                entity_n = course_n
            obj_ext: dict[str, Any] = {
                "asset_name": rng.choice(_CONTENT_TITLES).format(n=rng.randint(1, 14)),
                "asset_type": asset_type,
                "entity_id": f"{self.SHARD}{entity_n:07d}",
                "context_account_id": f"{self.SHARD}0000079",
                "http_method": "GET",
            }
            if subtype:
                obj_ext["asset_subtype"] = subtype
            event |= {
                "type": "NavigationEvent",
                "actor": actor,
                "action": "NavigatedTo",
                "object": {
                    "id": self.urn(asset_type.replace("quizzes:", ""), entity_n),
                    "type": object_type,
                    "name": subtype or asset_type,
                    "extensions": {"com.instructure.canvas": obj_ext},
                },
            }
            path = f"/courses/{course_n}/{subtype or asset_type + 's'}/{entity_n}"
        elif kind == "modified":
            event |= {
                "type": "Event",
                "actor": actor,
                "action": "Modified",
                "object": {
                    "id": self.urn("wiki_page", entity_n),
                    "type": "Page",
                    "name": rng.choice(_CONTENT_TITLES).format(n=rng.randint(1, 14)),
                    "dateModified": event_time,
                    "extensions": {
                        "com.instructure.canvas": {
                            "entity_id": f"{self.SHARD}{entity_n:07d}",
                            "body": "<p>Updated reading list for this week.</p>",
                        }
                    },
                },
            }
            path = f"/api/v1/courses/{course_n}/pages/{entity_n}"
        elif kind == "session":
            action = rng.choice(("LoggedIn", "LoggedOut"))
            event |= {
                "type": "SessionEvent",
                "actor": actor,
                "action": action,
                "object": {
                    "id": self.ACCOUNT_URL,
                    "type": "SoftwareApplication",
                    "extensions": {
                        "com.instructure.canvas": {"redirect_url": f"https://{self.HOST}/"}
                    },
                },
            }
            group = {}
            path = "/login/saml" if action == "LoggedIn" else "/logout"
        elif kind == "submitted":
            assignment_n = rng.randrange(1, 40000)
            event |= {
                "type": "AssignableEvent",
                "actor": actor,
                "action": "Submitted",
                "object": {
                    "id": self.urn("submission", entity_n),
                    "type": "Attempt",
                    "dateCreated": event_time,
                    "extensions": {
                        "com.instructure.canvas": {
                            "submission_type": "online_text_entry",
                            "entity_id": f"{self.SHARD}{entity_n:07d}",
                        }
                    },
                    "assignee": {"id": user, "type": "Person"},
                    "assignable": {
                        "id": self.urn("assignment", assignment_n),
                        "type": "AssignableDigitalResource",
                    },
                    "count": rng.randint(1, 3),
                },
            }
            path = f"/api/v1/courses/{course_n}/assignments/{assignment_n}/submissions"
        else:
            grader_n = rng.randrange(1, self.USERS + 1)
            grade = str(rng.randint(0, 10))
            attempt = {
                "id": self.urn("submission", entity_n),
                "type": "Attempt",
                "extensions": {
                    "com.instructure.canvas": {
                        "grade": grade,
                        "entity_id": f"{self.SHARD}{entity_n:07d}",
                    }
                },
                "assignee": {"id": user, "type": "Person"},
                "assignable": {
                    "id": self.urn("assignment", rng.randrange(1, 40000)),
                    "type": "AssignableDigitalResource",
                },
            }
            event |= {
                "type": "GradeEvent",
                "actor": {"id": self.urn("user", grader_n), "type": "Person"},
                "action": "Graded",
                "object": attempt,
                "generated": {
                    "id": self.urn("submission", entity_n),
                    "type": "Score",
                    "attempt": attempt,
                    "maxScore": 10,
                    "scoreGiven": int(grade),
                    "scoredBy": self.urn("user", grader_n),
                },
            }
            path = f"/courses/{course_n}/gradebook/speed_grader"
        event["eventTime"] = event_time
        event["edApp"] = {"id": self.ACCOUNT_URL, "type": "SoftwareApplication"}
        if group:
            event["group"] = group
            event["membership"] = {
                "id": f"{course}:user:{self.SHARD}{user_n:07d}",
                "type": "Membership",
                "member": {"id": user, "type": "Person"},
                "organization": {"id": course, "type": "CourseOffering"},
                "roles": ["Learner"],
            }
        event["session"] = {
            "id": f"urn:instructure:canvas:session:{rng.choice(self.sessions)}",
            "type": "Session",
        }
        event["extensions"] = {
            "com.instructure.canvas": {
                "hostname": self.HOST,
                "request_id": str(_uuid_from(rng)),
                "user_agent": rng.choice(_USER_AGENTS),
                "client_ip": _ipv4(rng),
                "request_url": f"https://{self.HOST}{path}",
                "version": "1.0.0",
            }
        }
        return event


def _uuid_from(rng: random.Random) -> str:
    h = rng.getrandbits(128).to_bytes(16).hex()
    return f"{h[0:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
