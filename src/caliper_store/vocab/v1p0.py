"""Caliper 1.0 terms as data: contexts, event types, actions per event type, entity types, IRIs.

Caliper 1.0 wrote types and actions as full IRIs (``@type``, ``action``); these tables keep the
short terms and the IRI namespaces that expand them. Sources: IMS caliper-python at 1.0
(``caliper/constants.py`` ENTITY_TYPES and EVENT_TYPES, ``caliper/profiles.py`` action lists),
the 1.0-to-1.1 change log in IMSGlobal/caliper-spec ``caliper-spec.md`` (Appendix H.2), and
the 1.0 fixtures of IMSGlobal/caliper-common-fixtures.
"""

from __future__ import annotations

from typing import Final

VERSION: Final = "1.0"

# The one 1.0 JSON-LD context (caliper-python 1.0 EVENT_CONTEXTS / ENTITY_CONTEXTS).
CONTEXTS: Final = frozenset({"http://purl.imsglobal.org/ctx/caliper/v1/Context"})

# 1.0 has no event `id` and spells the type key `@type` (caliper-spec.md H.2.5: `id` and
# `type` are new in 1.1, `@type` deprecated).
REQUIRED_EVENT_PROPERTIES: Final = ("@type", "actor", "action", "object", "eventTime")

# IRI namespaces (caliper-python 1.0 constants): events and most entities, LIS entities,
# the W3C Organization, and actions.
TYPE_IRI_BASE: Final = "http://purl.imsglobal.org/caliper/v1/"
LIS_TYPE_IRI_BASE: Final = "http://purl.imsglobal.org/caliper/v1/lis/"
W3C_TYPE_IRI_BASE: Final = "http://purl.imsglobal.org/caliper/v1/w3c/"
ACTION_IRI_BASE: Final = "http://purl.imsglobal.org/vocab/caliper/v1/action#"

# Action IRIs whose fragment is spelt differently from the term: caliper-python 1.0 writes
# `action#EnteredFullscreen`, while the term (and caliper-js 1.0) use `EnteredFullScreen`.
ACTION_IRI_SPELLINGS: Final = {
    "EnteredFullscreen": "EnteredFullScreen",
    "ExitedFullscreen": "ExitedFullScreen",
}

# caliper-python 1.0 profiles.py, CaliperProfile._actions (53 actions).
ACTIONS: Final = frozenset(
    {
        "Abandoned",
        "Activated",
        "Attached",
        "Bookmarked",
        "ChangedResolution",
        "ChangedSize",
        "ChangedSpeed",
        "ChangedVolume",
        "Classified",
        "ClosedPopout",
        "Commented",
        "Completed",
        "Deactivated",
        "Described",
        "DisabledClosedCaptioning",
        "Disliked",
        "EnabledClosedCaptioning",
        "Ended",
        "EnteredFullScreen",
        "ExitedFullScreen",
        "ForwardedTo",
        "Graded",
        "Hid",
        "Highlighted",
        "Identified",
        "JumpedTo",
        "Liked",
        "Linked",
        "LoggedIn",
        "LoggedOut",
        "Muted",
        "NavigatedTo",
        "OpenedPopout",
        "Paused",
        "Questioned",
        "Ranked",
        "Recommended",
        "Replied",
        "Restarted",
        "Resumed",
        "Reviewed",
        "Rewound",
        "Searched",
        "Shared",
        "Showed",
        "Skipped",
        "Started",
        "Submitted",
        "Subscribed",
        "Tagged",
        "TimedOut",
        "Unmuted",
        "Viewed",
    }
)

# Allowed actions per event type: the caliper-python 1.0 profile action lists, widened where
# the 1.1 change log (caliper-spec.md H.2.3) says a 1.0 action was later deprecated (Ranked on
# AnnotationEvent) and where 1.1 B.11 lists ReadingEvent's 1.0 actions (NavigatedTo).
EVENT_ACTIONS: Final = {
    # The generic Event takes any action of the version.
    "Event": ACTIONS,
    "AnnotationEvent": frozenset(
        {
            "Attached",
            "Bookmarked",
            "Classified",
            "Commented",
            "Described",
            "Disliked",
            "Highlighted",
            "Identified",
            "Liked",
            "Linked",
            "Questioned",
            "Ranked",
            "Recommended",
            "Replied",
            "Shared",
            "Subscribed",
            "Tagged",
        }
    ),
    "AssessmentEvent": frozenset({"Paused", "Restarted", "Started", "Submitted"}),
    "AssessmentItemEvent": frozenset({"Completed", "Reviewed", "Skipped", "Started", "Viewed"}),
    "AssignableEvent": frozenset(
        {
            "Abandoned",
            "Activated",
            "Completed",
            "Deactivated",
            "Hid",
            "Reviewed",
            "Showed",
            "Started",
        }
    ),
    "MediaEvent": frozenset(
        {
            "ChangedResolution",
            "ChangedSize",
            "ChangedSpeed",
            "ChangedVolume",
            "ClosedPopout",
            "DisabledClosedCaptioning",
            "EnabledClosedCaptioning",
            "Ended",
            "EnteredFullScreen",
            "ExitedFullScreen",
            "ForwardedTo",
            "JumpedTo",
            "Muted",
            "OpenedPopout",
            "Paused",
            "Resumed",
            "Rewound",
            "Started",
            "Unmuted",
        }
    ),
    "NavigationEvent": frozenset({"NavigatedTo"}),
    "OutcomeEvent": frozenset({"Graded"}),
    "ReadingEvent": frozenset({"NavigatedTo", "Searched", "Viewed"}),
    "SessionEvent": frozenset({"LoggedIn", "LoggedOut", "TimedOut"}),
    "ViewEvent": frozenset({"Viewed"}),
}

# Entity types living under the LIS and W3C namespaces (caliper-python 1.0 ENTITY_TYPES).
LIS_ENTITY_TYPES: Final = frozenset(
    {"CourseOffering", "CourseSection", "Group", "Membership", "Person"}
)
W3C_ENTITY_TYPES: Final = frozenset({"Organization"})

# caliper-python 1.0 ENTITY_TYPES (40 terms). `View` is listed there although no spec text
# describes a View entity; kept because 1.0 sensors built on it could emit it.
ENTITY_TYPES: Final = frozenset(
    {
        "Annotation",
        "Assessment",
        "AssessmentItem",
        "AssignableDigitalResource",
        "Attempt",
        "AudioObject",
        "BookmarkAnnotation",
        "CourseOffering",
        "CourseSection",
        "DigitalResource",
        "Entity",
        "EpubChapter",
        "EpubPart",
        "EpubSubChapter",
        "EpubVolume",
        "FillinBlankResponse",
        "Frame",
        "Group",
        "HighlightAnnotation",
        "ImageObject",
        "LearningObjective",
        "MediaLocation",
        "MediaObject",
        "Membership",
        "MultipleChoiceResponse",
        "MultipleResponseResponse",
        "Organization",
        "Person",
        "Reading",
        "Response",
        "Result",
        "SelectTextResponse",
        "Session",
        "SharedAnnotation",
        "SoftwareApplication",
        "TagAnnotation",
        "TrueFalseResponse",
        "VideoObject",
        "View",
        "WebPage",
    }
)

# 1.0 typed the EPUB entities with IDPF IRIs, outside the IMS namespace (caliper-python 1.0
# ENTITY_TYPES; the 1.0 fixtures use `.../structure/#volume`). `term_from_iri` leaves these
# unchanged; this table says which Caliper entity each one stands for.
EPUB_TYPE_IRIS: Final = {
    "http://www.idpf.org/epub/vocab/structure/#chapter": "EpubChapter",
    "http://www.idpf.org/epub/vocab/structure/#part": "EpubPart",
    "http://www.idpf.org/epub/vocab/structure/#subchapter": "EpubSubChapter",
    "http://www.idpf.org/epub/vocab/structure/#volume": "EpubVolume",
}

# Profiles became a property of the event only in 1.2.
PROFILES: Final[frozenset[str]] = frozenset()
