"""Check the Caliper vocabulary against the IMS example fixtures in the shared corpus."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from caliper_store.vocab import (
    SUPPORTED_VERSIONS,
    VOCABULARIES,
    term_from_iri,
    v1p0,
    vendor_of,
    vendors,
    version_of_context,
)

# The corpus sits next to the repository (/work/shared/corpus for /work/main); tests/vocab is
# three levels below that common parent.
CORPUS = Path(
    os.environ.get(
        "CALIPER_STORE_CORPUS", str(Path(__file__).resolve().parents[3] / "shared" / "corpus")
    )
)
V1P2_CONTEXT = "http://purl.imsglobal.org/ctx/caliper/v1p2"
IMS_FOLDERS = {"1.0": "ims/v1p0", "1.1": "ims/v1p1", "1.2": "ims/v1p2"}

# Terms an IMS fixture takes from another JSON-LD context it declares next to the Caliper one,
# with that context: caliperEventSubmittedMultiContext.json (v1p1) adds schema.org and types
# its object as a schema.org Thesis. They are not Caliper terms and stay out of the vocabulary.
EXTERNAL_CONTEXT_TERMS = {"Thesis": "https://schema.org/docs/jsonldcontext.json"}

Item = dict[str, Any]


def ims_fixtures(version: str) -> list[tuple[str, Any]]:
    """Load every fixture of one Caliper version, or skip when the corpus is not there."""
    folder = CORPUS / IMS_FOLDERS[version]
    if not folder.is_dir():
        pytest.skip(reason=f"IMS fixtures not found at {folder} (set CALIPER_STORE_CORPUS)")
    files = sorted(folder.glob("*.json"))
    if not files:
        pytest.skip(reason=f"no IMS fixtures in {folder}")
    return [(path.name, json.loads(path.read_text(encoding="utf-8"))) for path in files]


def is_envelope(document: Any) -> bool:
    return isinstance(document, dict) and "sensor" in document and "data" in document


def items_of(document: Any) -> list[Item]:
    """The events and entity describes of a fixture: an envelope's data, or the bare item."""
    if is_envelope(document):
        return [item for item in document["data"] if isinstance(item, dict)]
    return [document] if isinstance(document, dict) else []


def type_of(node: Item) -> str | None:
    value = node.get("type", node.get("@type"))
    return value if isinstance(value, str) else None


def is_event(item: Item) -> bool:
    return "action" in item


def entities_of(item: Item) -> Iterator[tuple[str, Item]]:
    """Every typed object inside an item (the item itself too when it is a describe).

    Custom data under `extensions` is not Caliper vocabulary and is left out.
    """

    def walk(node: Any, path: str) -> Iterator[tuple[str, Item]]:
        if isinstance(node, dict):
            if type_of(node) is not None:
                yield path, node
            for key, value in node.items():
                if key != "extensions":
                    yield from walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{path}[{index}]")

    if not is_event(item) and type_of(item) is not None:
        yield "$", item
    for key, value in item.items():
        if key != "extensions":
            yield from walk(value, f"$.{key}")


def contexts_of(node: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    """Every `@context` value in a document, top-level and nested."""
    if isinstance(node, dict):
        if "@context" in node:
            yield path, node["@context"]
        for key, value in node.items():
            if key not in ("@context", "extensions"):
                yield from contexts_of(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from contexts_of(value, f"{path}[{index}]")


def declares_context(item: Item, context_iri: str) -> bool:
    context = item.get("@context")
    return context == context_iri or (isinstance(context, list) and context_iri in context)


# --- the vocabulary against the IMS fixtures -------------------------------------------------


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_fixture_event_types_and_actions_are_known_and_allowed(version: str) -> None:
    vocabulary = VOCABULARIES[version]
    problems: list[str] = []
    events = 0
    for name, document in ims_fixtures(version):
        for item in filter(is_event, items_of(document)):
            events += 1
            event_type, action = type_of(item), item.get("action")
            if event_type is None or not vocabulary.is_event_type(event_type):
                problems.append(f"{name}: unknown event type {event_type!r}")
            elif not isinstance(action, str) or action not in vocabulary.actions:
                problems.append(f"{name}: unknown action {action!r}")
            elif not vocabulary.allows_action(event_type, action):
                problems.append(f"{name}: {event_type} does not allow {action}")
    assert events > 0
    assert problems == []


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_fixture_entity_types_are_known(version: str) -> None:
    vocabulary = VOCABULARIES[version]
    problems: list[str] = []
    entities = 0
    for name, document in ims_fixtures(version):
        for item in items_of(document):
            for path, entity in entities_of(item):
                entities += 1
                entity_type = type_of(entity)
                assert entity_type is not None
                if vocabulary.is_entity_type(entity_type):
                    continue
                external_context = EXTERNAL_CONTEXT_TERMS.get(entity_type)
                if external_context is None or not declares_context(item, external_context):
                    problems.append(f"{name} {path}: unknown entity type {entity_type!r}")
    assert entities > 0
    assert problems == []


def test_v1p0_fixture_events_map_to_known_types_and_actions() -> None:
    vocabulary = VOCABULARIES["1.0"]
    problems: list[str] = []
    events = 0
    for name, document in ims_fixtures("1.0"):
        for item in filter(is_event, items_of(document)):
            events += 1
            raw_type, raw_action = item.get("@type"), item.get("action")
            assert isinstance(raw_type, str), name
            assert isinstance(raw_action, str), name
            event_type, action = term_from_iri(raw_type), term_from_iri(raw_action)
            if not vocabulary.is_event_type(event_type):
                problems.append(f"{name}: {raw_type} is not a 1.0 event type")
            elif not vocabulary.allows_action(event_type, action):
                problems.append(f"{name}: {raw_action} not allowed for {event_type}")
    assert events > 0
    assert problems == []


def test_v1p0_fixture_entity_types_map_to_known_entities() -> None:
    vocabulary = VOCABULARIES["1.0"]
    problems: list[str] = []
    for name, document in ims_fixtures("1.0"):
        for item in items_of(document):
            for path, entity in entities_of(item):
                raw_type = type_of(entity)
                assert raw_type is not None
                term = v1p0.EPUB_TYPE_IRIS.get(raw_type, term_from_iri(raw_type))
                if not vocabulary.is_entity_type(term):
                    problems.append(f"{name} {path}: {raw_type} is not a 1.0 entity type")
    assert problems == []


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_version_of_context_reads_every_fixture_context(version: str) -> None:
    problems: list[str] = []
    seen = 0
    for name, document in ims_fixtures(version):
        if is_envelope(document) and "dataVersion" in document:
            seen += 1
            if version_of_context(document["dataVersion"]) != version:
                problems.append(f"{name}: dataVersion {document['dataVersion']!r}")
        for path, context in contexts_of(document):
            seen += 1
            if version_of_context(context) != version:
                problems.append(f"{name} {path}: @context {context!r}")
    assert seen > 0
    assert problems == []


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_version_of_context_reads_the_array_context_fixture(version: str) -> None:
    fixtures = dict(ims_fixtures(version))
    envelope = fixtures["caliperEnvelopeEventContextArray.json"]
    context = envelope["data"][0]["@context"]
    assert isinstance(context, list)
    assert any(isinstance(part, dict) for part in context)
    assert version_of_context(context) == version


# --- the public API --------------------------------------------------------------------------


def test_vocabularies_cover_the_supported_versions() -> None:
    assert SUPPORTED_VERSIONS == ("1.0", "1.1", "1.2")
    assert tuple(VOCABULARIES) == SUPPORTED_VERSIONS
    for version, vocabulary in VOCABULARIES.items():
        assert vocabulary.version == version
        assert vocabulary.is_event_type("Event")
        assert vocabulary.is_entity_type("Entity")
        # The generic Event takes every action of its version.
        assert vocabulary.event_actions["Event"] == vocabulary.actions


def test_required_event_properties_follow_each_version() -> None:
    required = ("id", "type", "actor", "action", "object", "eventTime")
    assert VOCABULARIES["1.1"].required_event_properties == required
    assert VOCABULARIES["1.2"].required_event_properties == required
    assert "id" not in VOCABULARIES["1.0"].required_event_properties
    assert "@type" in VOCABULARIES["1.0"].required_event_properties


def test_profiles_exist_only_from_1_2() -> None:
    assert VOCABULARIES["1.0"].profiles == frozenset()
    assert VOCABULARIES["1.1"].profiles == frozenset()
    assert "GeneralProfile" in VOCABULARIES["1.2"].profiles
    assert len(VOCABULARIES["1.2"].profiles) == 15


def test_allows_action_is_false_for_unknown_terms() -> None:
    vocabulary = VOCABULARIES["1.2"]
    assert vocabulary.allows_action("SessionEvent", "LoggedIn")
    assert not vocabulary.allows_action("SessionEvent", "Viewed")
    assert not vocabulary.allows_action("NoSuchEvent", "LoggedIn")
    assert not vocabulary.allows_action("SessionEvent", "NoSuchAction")


def test_deprecated_1_1_actions_are_still_allowed() -> None:
    vocabulary = VOCABULARIES["1.1"]
    assert vocabulary.allows_action("MediaEvent", "Rewound")
    assert vocabulary.allows_action("AnnotationEvent", "Liked")
    assert not VOCABULARIES["1.2"].allows_action("MediaEvent", "Rewound")


def test_extension_terms_of_1_1_are_known() -> None:
    vocabulary = VOCABULARIES["1.1"]
    assert vocabulary.allows_action("ToolLaunchEvent", "Launched")
    assert vocabulary.allows_action("SurveyInvitationEvent", "Sent")
    assert vocabulary.is_entity_type("AggregateMeasureCollection")


@pytest.mark.parametrize(
    ("iri", "term"),
    [
        ("http://purl.imsglobal.org/caliper/v1/SessionEvent", "SessionEvent"),
        ("http://purl.imsglobal.org/caliper/v1/lis/Person", "Person"),
        ("http://purl.imsglobal.org/caliper/v1/w3c/Organization", "Organization"),
        ("http://purl.imsglobal.org/vocab/caliper/v1/action#LoggedIn", "LoggedIn"),
        (v1p0.ACTION_IRI_BASE + "EnteredFullscreen", "EnteredFullScreen"),
        ("http://purl.imsglobal.org/caliper/MediaEvent", "MediaEvent"),
        ("https://purl.imsglobal.org/caliper/FeedbackEvent", "FeedbackEvent"),
        ("http://purl.imsglobal.org/caliper/actions/Paused", "Paused"),
        ("http://purl.imsglobal.org/caliper/actions/ExitedFullscreen", "ExitedFullScreen"),
        ("http://purl.imsglobal.org/vocab/lis/v2/membership#Learner", "Learner"),
        (
            "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant",
            "Instructor#TeachingAssistant",
        ),
        ("http://purl.imsglobal.org/vocab/lis/v2/status#Active", "Active"),
        # An IMS IRI for a term these tables do not list still reduces to its last segment.
        ("http://purl.imsglobal.org/caliper/v1/SomeFutureEvent", "SomeFutureEvent"),
    ],
)
def test_term_from_iri_reduces_ims_iris(iri: str, term: str) -> None:
    assert term_from_iri(iri) == term


@pytest.mark.parametrize(
    "value",
    [
        "SessionEvent",
        "Person",
        "",
        "http://www.idpf.org/epub/vocab/structure/#volume",
        "http://caliper.blackboard.com/caliper/v1/ForumEvent",
        "http://caliper.blackboard.com/vocab/caliper/v1/action#GradeCalculated",
        "urn:instructure:canvas:user:21070000000000001",
        "http://purl.imsglobal.org/caliper/profiles/nested/path",
    ],
)
def test_term_from_iri_leaves_other_values_unchanged(value: str) -> None:
    assert term_from_iri(value) == value


@pytest.mark.parametrize(
    ("context", "version"),
    [
        ("http://purl.imsglobal.org/ctx/caliper/v1/Context", "1.0"),
        ("http://purl.imsglobal.org/ctx/caliper/v1p1", "1.1"),
        ("https://purl.imsglobal.org/ctx/caliper/v1p1/", "1.1"),
        ("http://purl.imsglobal.org/ctx/caliper/v1p1/ToolLaunchProfile-extension", "1.1"),
        ("http://purl.imsglobal.org/ctx/caliper/v1p2/", "1.2"),
        ("https://purl.imsglobal.org/ctx/caliper/v1p2", "1.2"),
        ([vendors.BLACKBOARD_CONTEXT, "http://purl.imsglobal.org/ctx/caliper/v1p1"], "1.1"),
        ([{"query": "http://schema.org/query"}, V1P2_CONTEXT], "1.2"),
        # Blackboard's 1.0-style events carry only Blackboard's context.
        (vendors.BLACKBOARD_CONTEXT, "1.0"),
    ],
)
def test_version_of_context_accepts_every_caliper_form(context: object, version: str) -> None:
    assert version_of_context(context) == version


@pytest.mark.parametrize(
    "context",
    [
        None,
        {"@vocab": "http://purl.imsglobal.org/ctx/caliper/v1p1"},
        [],
        [{"query": "http://schema.org/query"}],
        "https://schema.org/docs/jsonldcontext.json",
        "http://purl.imsglobal.org/ctx/caliper/v2p0",
        42,
    ],
)
def test_version_of_context_returns_none_without_a_caliper_context(context: object) -> None:
    assert version_of_context(context) is None


def test_vendor_of_flags_blackboard_terms_only() -> None:
    blackboard_terms = vendors.BLACKBOARD_EVENT_TYPES | vendors.BLACKBOARD_ENTITY_TYPES
    blackboard_terms |= vendors.BLACKBOARD_ACTIONS
    assert blackboard_terms
    for term in blackboard_terms:
        assert vendor_of(term) == "blackboard"
    assert vendor_of(vendors.BLACKBOARD_CONTEXT) == "blackboard"
    assert vendor_of("ForumEvent") is None
    assert vendor_of("http://purl.imsglobal.org/caliper/ForumEvent") is None
    assert vendor_of(vendors.CANVAS_ID_PREFIX + "user:1") is None
