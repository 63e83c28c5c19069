"""Known producer extensions to the Caliper vocabulary (Blackboard Learn, Canvas) as data.

Blackboard: the event pages of Blackboard's developer site, repository
blackboard/blackboard.github.io, ``caliper/events/*.md`` and ``standards/caliper/events/*.md``
(sample payloads of BlogEvent, CalculatedGradeSnapshotEvent, ContentEvent, CourseGroupEvent,
ForumEvent, LTIEvent, WikiEvent, in their older 1.0 form and their 2021 1.1 form).
Canvas: instructure/canvas-lms ``doc/api/data_services/json/caliper/event-types/*.json``
(the payloads in ``shared/corpus/canvas``).
"""

from __future__ import annotations

from typing import Final

BLACKBOARD: Final = "blackboard"

# Every Blackboard term lives under this host; `vendor_of` keys on it.
BLACKBOARD_IRI_PREFIXES: Final = (
    "http://caliper.blackboard.com/",
    "https://caliper.blackboard.com/",
)

# The JSON-LD context Blackboard puts first in `@context`: alone in its 1.0-style events,
# as `[this, "http://purl.imsglobal.org/ctx/caliper/v1p1"]` in its 1.1 events.
BLACKBOARD_CONTEXT: Final = "http://caliper.blackboard.com/ctx/caliper/v1/Context"

# The Caliper version a Blackboard-only `@context` implies: its IRIs sit under `caliper/v1`
# and its 1.0-style samples pair it with IMS 1.0 entity IRIs and `@type`/`@id` keys.
BLACKBOARD_CONTEXT_VERSION: Final = "1.0"

BLACKBOARD_TYPE_IRI_BASE: Final = "http://caliper.blackboard.com/caliper/v1/"
BLACKBOARD_ACTION_IRI_BASE: Final = "http://caliper.blackboard.com/vocab/caliper/v1/action#"

# Event types Blackboard defines (full IRIs; sent as `@type` or `type`).
BLACKBOARD_EVENT_TYPES: Final = frozenset(
    BLACKBOARD_TYPE_IRI_BASE + term
    for term in (
        "BlogEvent",
        "CalculatedGradeSnapshotEvent",
        "ContentEvent",
        "CourseGroupEvent",
        "ForumEvent",
        "LTIEvent",
        "WikiEvent",
    )
)

# Entity types Blackboard defines (objects and generated entities of the events above).
BLACKBOARD_ENTITY_TYPES: Final = frozenset(
    BLACKBOARD_TYPE_IRI_BASE + term
    for term in (
        "Blog",
        "BlogPost",
        "CalculatedGrade",
        "Content",
        "Forum",
        "ForumPost",
        "LTILaunchInfo",
        "LTILaunchReturnInfo",
        "MiniUser",
        "UpdatedContentProperties",
        "WikiPage",
        "WikiPost",
    )
)

# Actions of the 1.0-style events. Create, GradeCalculated, LTILaunch and LTILaunchReturn appear
# in sample payloads; Created, Updated and Deleted are named (as `.../action#...`) in the
# ContentEvent page's prose. The 2021 1.1-style events use IMS action terms instead
# (Created, Modified, Deleted, Commented, LoggedIn, LoggedOut, Graded).
BLACKBOARD_ACTIONS: Final = frozenset(
    BLACKBOARD_ACTION_IRI_BASE + term
    for term in (
        "Create",
        "Created",
        "Updated",
        "Deleted",
        "GradeCalculated",
        "LTILaunch",
        "LTILaunchReturn",
    )
)

# Canvas sends many events as the generic `Event` (or a NavigationEvent) whose object is a
# bare `Entity` with a Canvas URN, e.g. `urn:instructure:canvas:enrollment:<id>`
# (assignment_override_created, enrollment_created, group_category_created, asset_accessed).
CANVAS: Final = "canvas"
CANVAS_GENERIC_EVENT_TYPE: Final = "Event"
CANVAS_GENERIC_OBJECT_TYPE: Final = "Entity"
CANVAS_ID_PREFIX: Final = "urn:instructure:canvas:"
# Canvas nests its own fields under this key of `extensions`.
CANVAS_EXTENSIONS_KEY: Final = "com.instructure.canvas"

# (event type, action) pairs Canvas sends that the 1.1 specification does not list for that
# event type: discussion_topic_created is a ThreadEvent with action Created.
CANVAS_EVENT_ACTIONS: Final = {"ThreadEvent": frozenset({"Created"})}
