"""Caliper 1.1 terms as data: contexts, event types, actions per event type, entity types, IRIs.

Core terms come from IMSGlobal/caliper-spec ``caliper-spec.md`` (the 1.1 specification):
Appendix A (actions), Appendix B (event subtypes with their supported and deprecated actions),
Appendix C/D (entities, selectors). 1.1 was extended by profile "extension" contexts
(``.../ctx/caliper/v1p1/<Profile>-extension``) whose terms were folded into 1.2 unchanged; those
terms are taken from the 1.2 fragments in ``fragments/`` (their figures are still named
``*-v1p1-extension.png``), checked against the v1p1 fixtures of IMSGlobal/caliper-common-fixtures.
"""

from __future__ import annotations

from typing import Final

VERSION: Final = "1.1"

# caliper-spec.md 4.1 (core context) and 6.1.2 (ping example lists a `-extension` context);
# the extension contexts below are the ones the v1p1 fixtures use.
CORE_CONTEXT: Final = "http://purl.imsglobal.org/ctx/caliper/v1p1"
EXTENSION_CONTEXTS: Final = frozenset(
    f"{CORE_CONTEXT}/{profile}-extension"
    for profile in (
        "FeedbackProfile",
        "ResourceManagementProfile",
        "SearchProfile",
        "SurveyProfile",
        "ToolLaunchProfile",
        "ToolUseProfile",
    )
)
CONTEXTS: Final = frozenset({CORE_CONTEXT}) | EXTENSION_CONTEXTS

# caliper-spec.md 2.1: id, type, actor, action, object and eventTime are required.
REQUIRED_EVENT_PROPERTIES: Final = ("id", "type", "actor", "action", "object", "eventTime")

# caliper-spec.md Appendix A/B give IRIs of these forms (e.g. .../caliper/MediaEvent,
# .../caliper/actions/Paused); the 1.2 fragments also write them with https.
TYPE_IRI_BASE: Final = "http://purl.imsglobal.org/caliper/"
ACTION_IRI_BASE: Final = "http://purl.imsglobal.org/caliper/actions/"

# Appendix A spells two action IRIs differently from their terms.
ACTION_IRI_SPELLINGS: Final = {
    "EnteredFullscreen": "EnteredFullScreen",
    "ExitedFullscreen": "ExitedFullScreen",
}

# caliper-spec.md Appendix A (64 actions).
CORE_ACTIONS: Final = frozenset(
    {
        "Abandoned",
        "Activated",
        "Added",
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
        "Created",
        "Deactivated",
        "Deleted",
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
        "MarkedAsRead",
        "MarkedAsUnread",
        "Modified",
        "Muted",
        "NavigatedTo",
        "OpenedPopout",
        "Paused",
        "Posted",
        "Questioned",
        "Ranked",
        "Recommended",
        "Removed",
        "Reset",
        "Restarted",
        "Resumed",
        "Retrieved",
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
        "Unsubscribed",
        "Used",
        "Viewed",
    }
)

# Actions added by the 1.1 profile extensions (Survey, Resource Management, Tool Launch).
EXTENSION_ACTIONS: Final = frozenset(
    {
        "Accepted",
        "Archived",
        "Copied",
        "Declined",
        "Downloaded",
        "Launched",
        "OptedIn",
        "OptedOut",
        "Printed",
        "Published",
        "Restored",
        "Returned",
        "Saved",
        "Sent",
        "Unpublished",
        "Uploaded",
    }
)

ACTIONS: Final = CORE_ACTIONS | EXTENSION_ACTIONS

# "Supported Actions" per event, caliper-spec.md Appendix B. OutcomeEvent and ReadingEvent
# are deprecated in 1.1 but still defined (B.10, B.11).
SUPPORTED_EVENT_ACTIONS: Final = {
    # The generic Event (Basic Profile) takes any action of the version.
    "Event": ACTIONS,
    "AnnotationEvent": frozenset({"Bookmarked", "Highlighted", "Shared", "Tagged"}),
    "AssessmentEvent": frozenset(
        {"Started", "Paused", "Resumed", "Restarted", "Reset", "Submitted"}
    ),
    "AssessmentItemEvent": frozenset({"Started", "Skipped", "Completed"}),
    "AssignableEvent": frozenset(
        {"Activated", "Deactivated", "Started", "Completed", "Submitted", "Reviewed"}
    ),
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
    "OutcomeEvent": frozenset({"Graded"}),
    "ReadingEvent": frozenset({"NavigatedTo", "Searched", "Viewed"}),
    "SessionEvent": frozenset({"LoggedIn", "LoggedOut", "TimedOut"}),
    # B.13 lists MarkedAsRead/MarkedAsUnRead; the H.2.3 change-log row also names Posted,
    # which looks copied from MessageEvent and is not taken here.
    "ThreadEvent": frozenset({"MarkedAsRead", "MarkedAsUnread"}),
    "ToolUseEvent": frozenset({"Used"}),
    "ViewEvent": frozenset({"Viewed"}),
    # Profile extensions. Allowed actions as in the 1.2 fragments (fragments/events/*.html),
    # widened by the IMS reference sensor (caliper-python caliper/constants.py), whose lists the
    # v1p1 fixtures follow: QuestionnaireEvent Completed, QuestionnaireItemEvent Submitted.
    "FeedbackEvent": frozenset({"Commented", "Ranked"}),
    "QuestionnaireEvent": frozenset({"Started", "Submitted", "Completed"}),
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
    "SurveyEvent": frozenset({"OptedIn", "OptedOut"}),
    "SurveyInvitationEvent": frozenset({"Accepted", "Declined", "Sent"}),
    "ToolLaunchEvent": frozenset({"Launched", "Returned"}),
}

# "Deprecated Actions" per event, caliper-spec.md Appendix B: still valid 1.1 (SHOULD NOT be
# used), so a store accepts them.
DEPRECATED_EVENT_ACTIONS: Final = {
    "AnnotationEvent": frozenset(
        {
            "Attached",
            "Classified",
            "Commented",
            "Described",
            "Disliked",
            "Identified",
            "Liked",
            "Linked",
            "Questioned",
            "Ranked",
            "Recommended",
            "Subscribed",
        }
    ),
    "AssessmentItemEvent": frozenset({"Reviewed", "Viewed"}),
    "AssignableEvent": frozenset({"Abandoned", "Hid", "Showed"}),
    "MediaEvent": frozenset({"Rewound"}),
}

# caliper-spec.md Appendix C (48 entities, EpubChapter/EpubPart/EpubSubChapter/EpubVolume and
# Reading deprecated), the base Entity (2.2) and the TextPositionSelector (Appendix D).
CORE_ENTITY_TYPES: Final = frozenset(
    {
        "Entity",
        "Agent",
        "Annotation",
        "Assessment",
        "AssessmentItem",
        "AssignableDigitalResource",
        "Attempt",
        "AudioObject",
        "BookmarkAnnotation",
        "Chapter",
        "CourseOffering",
        "CourseSection",
        "DigitalResource",
        "DigitalResourceCollection",
        "Document",
        "EpubChapter",
        "EpubPart",
        "EpubSubChapter",
        "EpubVolume",
        "FillinBlankResponse",
        "Forum",
        "Frame",
        "Group",
        "HighlightAnnotation",
        "ImageObject",
        "LearningObjective",
        "LtiSession",
        "MediaLocation",
        "MediaObject",
        "Membership",
        "Message",
        "MultipleChoiceResponse",
        "MultipleResponseResponse",
        "Organization",
        "Page",
        "Person",
        "Reading",
        "Response",
        "Result",
        "Score",
        "SelectTextResponse",
        "Session",
        "SharedAnnotation",
        "SoftwareApplication",
        "TagAnnotation",
        "Thread",
        "TrueFalseResponse",
        "VideoObject",
        "WebPage",
        "TextPositionSelector",
    }
)

# Entities of the 1.1 profile extensions, as defined in the 1.2 fragments
# (fragments/entities/*.html): Survey (questionnaires, questions, responses, scales),
# Feedback (Comment, Rating), Search (Query, SearchResponse), Tool Launch (Link, LtiLink)
# and Tool Use (AggregateMeasure, AggregateMeasureCollection).
EXTENSION_ENTITY_TYPES: Final = frozenset(
    {
        "Survey",
        "SurveyInvitation",
        "Questionnaire",
        "QuestionnaireItem",
        "Question",
        "DateTimeQuestion",
        "MultiselectQuestion",
        "OpenEndedQuestion",
        "RatingScaleQuestion",
        "DateTimeResponse",
        "MultiselectResponse",
        "OpenEndedResponse",
        "RatingScaleResponse",
        "Scale",
        "LikertScale",
        "MultiselectScale",
        "NumericScale",
        "Comment",
        "Rating",
        "Query",
        "SearchResponse",
        "Link",
        "LtiLink",
        "AggregateMeasure",
        "AggregateMeasureCollection",
    }
)

ENTITY_TYPES: Final = CORE_ENTITY_TYPES | EXTENSION_ENTITY_TYPES

# Profiles became a property of the event only in 1.2.
PROFILES: Final[frozenset[str]] = frozenset()

# LIS membership roles and statuses (Appendix E, F) are IRIs in 1.0 and terms from 1.1 on:
# `Learner` is .../membership#Learner, `Instructor#TeachingAssistant` is
# .../membership/Instructor#TeachingAssistant, `Active` is .../status#Active.
ROLE_IRI_BASE: Final = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
SUBROLE_IRI_BASE: Final = "http://purl.imsglobal.org/vocab/lis/v2/membership/"
STATUS_IRI_BASE: Final = "http://purl.imsglobal.org/vocab/lis/v2/status#"
# Appendix E context roles and Appendix F statuses (sub-roles are read by prefix).
ROLES: Final = frozenset(
    {
        "Administrator",
        "ContentDeveloper",
        "Instructor",
        "Learner",
        "Manager",
        "Member",
        "Mentor",
        "Officer",
    }
)
STATUSES: Final = frozenset({"Active", "Inactive"})
