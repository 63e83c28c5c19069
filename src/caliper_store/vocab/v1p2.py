"""Caliper 1.2 terms as data: contexts, profiles, event types, actions per event type, entity types.

Sources: IMSGlobal/caliper-spec ``caliper-spec-v1p2.html`` (the 1.2 specification: the
profile, event, entity and action sections, each pulled in from one file under ``fragments/``)
and IMS's reference sensor caliper-python ``caliper/constants.py`` (CALIPER_PROFILES,
EVENT_TYPES, ENTITY_TYPES, CALIPER_ACTIONS and the *_EVENT_ACTIONS lists), read through the
jonespm/caliper-python fork. Where the two differ, both are accepted and the comment says
which one a term comes from.
"""

from __future__ import annotations

from typing import Final

VERSION: Final = "1.2"

# caliper-spec-v1p2.html, "JSON-LD Context" and the Envelope `dataVersion` property.
CORE_CONTEXT: Final = "http://purl.imsglobal.org/ctx/caliper/v1p2"
CONTEXTS: Final = frozenset({CORE_CONTEXT})

# fragments/events/caliper-event-event.html: id, type, actor, action, object, eventTime.
REQUIRED_EVENT_PROPERTIES: Final = ("id", "type", "actor", "action", "object", "eventTime")

# Type and action IRIs keep the 1.1 form (fragments/events/*.html give
# http(s)://purl.imsglobal.org/caliper/<Event>).
TYPE_IRI_BASE: Final = "http://purl.imsglobal.org/caliper/"
ACTION_IRI_BASE: Final = "http://purl.imsglobal.org/caliper/actions/"
ACTION_IRI_SPELLINGS: Final = {
    "EnteredFullscreen": "EnteredFullScreen",
    "ExitedFullscreen": "ExitedFullScreen",
}

# caliper-spec-v1p2.html "Profiles" (fragments/profiles/*.html) = caliper-python
# CALIPER_PROFILES.
PROFILES: Final = frozenset(
    {
        "AnnotationProfile",
        "AssessmentProfile",
        "AssignableProfile",
        "FeedbackProfile",
        "ForumProfile",
        "GeneralProfile",
        "GradingProfile",
        "MediaProfile",
        "ReadingProfile",
        "ResourceManagementProfile",
        "SearchProfile",
        "SessionProfile",
        "SurveyProfile",
        "ToolLaunchProfile",
        "ToolUseProfile",
    }
)

# caliper-spec-v1p2.html appendix "Actions" (one fragments/actions/*.html each, 80 actions).
SPEC_ACTIONS: Final = frozenset(
    {
        "Abandoned",
        "Accepted",
        "Activated",
        "Added",
        "Archived",
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
        "Copied",
        "Created",
        "Deactivated",
        "Declined",
        "Deleted",
        "Described",
        "DisabledClosedCaptioning",
        "Disliked",
        "Downloaded",
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
        "Launched",
        "Liked",
        "Linked",
        "LoggedIn",
        "LoggedOut",
        "MarkedAsRead",
        "MarkedAsUnread",
        "Modified",
        "Muted",
        "NavigatedTo",
        "OpenedPopout",
        "OptedIn",
        "OptedOut",
        "Paused",
        "Posted",
        "Printed",
        "Published",
        "Questioned",
        "Ranked",
        "Recommended",
        "Removed",
        "Reset",
        "Restarted",
        "Restored",
        "Resumed",
        "Retrieved",
        "Returned",
        "Reviewed",
        "Rewound",
        "Saved",
        "Searched",
        "Sent",
        "Shared",
        "Showed",
        "Skipped",
        "Started",
        "Submitted",
        "Subscribed",
        "Tagged",
        "TimedOut",
        "Unmuted",
        "Unpublished",
        "Unsubscribed",
        "Uploaded",
        "Used",
        "Viewed",
    }
)

# In caliper-python CALIPER_ACTIONS but not in the 1.2 spec (a 1.0 action carried over).
SENSOR_ONLY_ACTIONS: Final = frozenset({"Replied"})

ACTIONS: Final = SPEC_ACTIONS | SENSOR_ONLY_ACTIONS

# Allowed actions per event: the "value range is limited to" sentence of each
# fragments/events/caliper-event-*.html, united with caliper-python's *_EVENT_ACTIONS.
EVENT_ACTIONS: Final = {
    # caliper-event-event.html: any action of the specification (GeneralProfile).
    "Event": ACTIONS,
    "AnnotationEvent": frozenset({"Bookmarked", "Highlighted", "Shared", "Tagged"}),
    # Reset: spec only (caliper-python leaves it out).
    "AssessmentEvent": frozenset(
        {"Started", "Paused", "Resumed", "Restarted", "Reset", "Submitted"}
    ),
    "AssessmentItemEvent": frozenset({"Started", "Skipped", "Completed"}),
    # Reviewed: spec only.
    "AssignableEvent": frozenset(
        {"Activated", "Deactivated", "Started", "Completed", "Submitted", "Reviewed"}
    ),
    "FeedbackEvent": frozenset({"Commented", "Ranked"}),
    "ForumEvent": frozenset({"Subscribed", "Unsubscribed"}),
    "GradeEvent": frozenset({"Graded"}),
    "MediaEvent": frozenset(
        {
            "Started",
            "Ended",
            "Paused",
            "Resumed",
            "Restarted",
            "ForwardedTo",
            "JumpedTo",
            "ChangedResolution",
            "ChangedSize",
            "ChangedSpeed",
            "ChangedVolume",
            "EnabledClosedCaptioning",
            "DisabledClosedCaptioning",
            "EnteredFullScreen",
            "ExitedFullScreen",
            "Muted",
            "Unmuted",
            "OpenedPopout",
            "ClosedPopout",
        }
    ),
    "MessageEvent": frozenset({"MarkedAsRead", "MarkedAsUnread", "Posted"}),
    "NavigationEvent": frozenset({"NavigatedTo"}),
    # Completed: caliper-python only (the spec lists Started and Submitted); the IMS v1p1 and
    # v1p2 fixtures send QuestionnaireEvent Completed.
    "QuestionnaireEvent": frozenset({"Started", "Submitted", "Completed"}),
    # Submitted: caliper-python only (the spec lists Started, Skipped, Completed).
    "QuestionnaireItemEvent": frozenset({"Started", "Skipped", "Completed", "Submitted"}),
    "ResourceManagementEvent": frozenset(
        {
            "Archived",
            "Copied",
            "Created",
            "Deleted",
            "Described",
            "Downloaded",
            "Modified",
            "Printed",
            "Published",
            "Restored",
            "Retrieved",
            "Saved",
            "Unpublished",
            "Uploaded",
        }
    ),
    "SearchEvent": frozenset({"Searched"}),
    "SessionEvent": frozenset({"LoggedIn", "LoggedOut", "TimedOut"}),
    "SurveyEvent": frozenset({"OptedIn", "OptedOut"}),
    "SurveyInvitationEvent": frozenset({"Accepted", "Declined", "Sent"}),
    "ThreadEvent": frozenset({"MarkedAsRead", "MarkedAsUnread"}),
    "ToolLaunchEvent": frozenset({"Launched", "Returned"}),
    "ToolUseEvent": frozenset({"Used"}),
    "ViewEvent": frozenset({"Viewed"}),
}

# caliper-spec-v1p2.html appendix "Entities" (one fragments/entities/*.html each), the base
# Entity, the TextPositionSelector ("Selectors") and SystemIdentifier ("System Identifiers").
SPEC_ENTITY_TYPES: Final = frozenset(
    {
        "Entity",
        "Agent",
        "AggregateMeasure",
        "AggregateMeasureCollection",
        "Annotation",
        "Assessment",
        "AssessmentItem",
        "AssignableDigitalResource",
        "Attempt",
        "AudioObject",
        "BookmarkAnnotation",
        "Chapter",
        "Collection",
        "Comment",
        "CourseOffering",
        "CourseSection",
        "DateTimeQuestion",
        "DateTimeResponse",
        "DigitalResource",
        "DigitalResourceCollection",
        "Document",
        "FillinBlankResponse",
        "Forum",
        "Frame",
        "Group",
        "HighlightAnnotation",
        "ImageObject",
        "LearningObjective",
        "LikertScale",
        "Link",
        "LtiLink",
        "LtiSession",
        "MediaLocation",
        "MediaObject",
        "Membership",
        "Message",
        "MultipleChoiceResponse",
        "MultipleResponseResponse",
        "MultiselectQuestion",
        "MultiselectResponse",
        "MultiselectScale",
        "NumericScale",
        "OpenEndedQuestion",
        "OpenEndedResponse",
        "Organization",
        "Page",
        "Person",
        "Query",
        "Question",
        "Questionnaire",
        "QuestionnaireItem",
        "Rating",
        "RatingScaleQuestion",
        "RatingScaleResponse",
        "Response",
        "Result",
        "Scale",
        "Score",
        "SearchResponse",
        "SelectTextResponse",
        "Session",
        "SharedAnnotation",
        "SoftwareApplication",
        "Survey",
        "SurveyInvitation",
        "TagAnnotation",
        "Thread",
        "TrueFalseResponse",
        "VideoObject",
        "WebPage",
        "TextPositionSelector",
        "SystemIdentifier",
    }
)

# In caliper-python ENTITY_TYPES but not in the 1.2 spec: the 1.1-deprecated EPUB and Reading
# entities, and two aggregate types of a draft Tool Use profile.
SENSOR_ONLY_ENTITY_TYPES: Final = frozenset(
    {
        "AggregateProgress",
        "AggregateTimeOnTask",
        "EpubChapter",
        "EpubPart",
        "EpubSubChapter",
        "EpubVolume",
        "Reading",
    }
)

ENTITY_TYPES: Final = SPEC_ENTITY_TYPES | SENSOR_ONLY_ENTITY_TYPES
