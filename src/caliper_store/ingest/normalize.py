"""Normalization of one item of any Caliper version into an event, entity or quarantine row.

The raw item is kept exactly as parsed; only the extracted columns are normalized: 1.0's
``@id``/``@type`` and IRI actions become 1.1+ terms, ``urn:uuid:`` and plain UUID ids become one
form, and times become UTC. Validation against the vocabulary happens here too, because the
vocabulary decides both what a term means and whether it is an extension.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from caliper_store.ingest.codec import dump_json
from caliper_store.ingest.limits import ItemLimits, check_structure
from caliper_store.ingest.times import parse_time
from caliper_store.privacy import KeyRules
from caliper_store.storage import (
    DroppedRow,
    EntityRow,
    EventRow,
    Item,
    QuarantineRow,
    Reason,
    actor_login,
    content_hash,
    group_name,
)
from caliper_store.vocab import VOCABULARIES, Vocabulary, term_from_iri, version_of_context

# Namespace of the deterministic ids given to events sent without one (Moodle, Caliper 1.0).
DERIVED_ID_NAMESPACE = uuid.UUID("7b0f6c52-3f57-4c1e-9d0c-2a7d1e0c5f11")
CALIPER_CONTEXT_MARK = "purl.imsglobal.org/ctx/caliper/"
UUID_CHARS = 36
UUID_FORM = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
URN_UUID = "urn:uuid:"
DEFAULT_VERSION = "1.1"

# Where producers put the external (SIS) id of the actor.
CANVAS_EXTENSION = "com.instructure.canvas"
BLACKBOARD_EXTERNAL_ID = "bb:user.externalId"


@dataclass(frozen=True, slots=True)
class _ItemFacts:
    """What normalize_item learned about an item before telling events from entities."""

    index: int
    path: str
    raw: str
    digest: str
    version: str
    vocabulary: Vocabulary
    type_term: str | None
    warnings: list[Reason]
    max_id_chars: int


@dataclass(frozen=True, slots=True)
class ItemContext:
    """What the envelope tells about its items."""

    version: str | None
    limits: ItemLimits
    # The ingest rules of the key that sent the items (None: no rule applies to it).
    rules: KeyRules | None = None


def normalize_id(value: str) -> str:
    """One spelling per event id: ``urn:uuid:`` plus lower-case UUID, other ids unchanged."""
    if len(value) == UUID_CHARS + len(URN_UUID) and value[:9].lower() == URN_UUID:
        candidate = value[9:]
    elif len(value) == UUID_CHARS:
        candidate = value
    else:
        return value
    if UUID_FORM.fullmatch(candidate):
        return URN_UUID + candidate.lower()
    return value


def derive_event_id(digest: str) -> str:
    """A deterministic id from an event's canonical content: re-sends of id-less events dedupe."""
    return URN_UUID + str(uuid.uuid5(DERIVED_ID_NAMESPACE, digest))


def _reference(value: Any) -> tuple[str | None, str | None, bool]:
    """Read an entity reference: an object with id/type, or a bare IRI string.

    Returns:
        The id, the type term, and whether the value was present but unreadable.
    """
    if value is None:
        return None, None, False
    if isinstance(value, str):
        return (value or None), None, not value
    if isinstance(value, dict):
        ref_id = value.get("id", value.get("@id"))
        ref_type = value.get("type", value.get("@type"))
        type_term = term_from_iri(ref_type) if isinstance(ref_type, str) and ref_type else None
        if isinstance(ref_id, str) and ref_id:
            return ref_id, type_term, False
        if isinstance(ref_id, int | float) and not isinstance(ref_id, bool):
            return str(ref_id), type_term, False
        return None, type_term, True
    return None, None, True


def _item_version(
    item: dict[str, Any], envelope_version: str | None
) -> tuple[str | None, Reason | None]:
    context = item.get("@context")
    if context is not None:
        version = version_of_context(context)
        if version is not None:
            return version, None
        if CALIPER_CONTEXT_MARK in dump_json(context):
            return None, Reason(
                "unsupported_version",
                "@context",
                "the item's @context names an unknown Caliper version",
            )
    if envelope_version is not None:
        return envelope_version, None
    if "@type" in item or "@id" in item:
        return "1.0", None
    return DEFAULT_VERSION, Reason(
        "version_assumed",
        "@context",
        f"no @context or dataVersion; read as Caliper {DEFAULT_VERSION}",
    )


def _actor_external_id(item: dict[str, Any], actor: Any) -> str | None:
    extensions = item.get("extensions")
    if isinstance(extensions, dict):
        learn = extensions.get(BLACKBOARD_EXTERNAL_ID)
        if isinstance(learn, str | int) and learn != "":
            return str(learn)
        canvas = extensions.get(CANVAS_EXTENSION)
        if isinstance(canvas, dict):
            sis_id = canvas.get("user_sis_id")
            if isinstance(sis_id, str | int) and sis_id != "":
                return str(sis_id)
    if isinstance(actor, dict):
        actor_extensions = actor.get("extensions")
        if isinstance(actor_extensions, dict):
            # Learn and Canvas attach them to the actor too (Canvas's live events always).
            learn = actor_extensions.get(BLACKBOARD_EXTERNAL_ID)
            if isinstance(learn, str | int) and learn != "":
                return str(learn)
            canvas = actor_extensions.get(CANVAS_EXTENSION)
            if isinstance(canvas, dict):
                for name in ("sis_id", "user_sis_id"):
                    sis_id = canvas.get(name)
                    if isinstance(sis_id, str | int) and sis_id != "":
                        return str(sis_id)
        sourced_id = actor.get("sourcedId")
        if isinstance(sourced_id, str) and sourced_id:
            return sourced_id
    return None


def _membership_role(membership: Any) -> str | None:
    if not isinstance(membership, dict):
        return None
    roles = membership.get("roles")
    if isinstance(roles, str):
        roles = [roles]
    if not isinstance(roles, list):
        return None
    terms = [term_from_iri(role) for role in roles if isinstance(role, str) and role]
    return ",".join(terms) or None


def normalize_item(item: Any, index: int, context: ItemContext) -> Item:
    """Turn one element of ``data`` into the row that will be stored.

    Never raises for bad input: what cannot be stored as an event or entity becomes a
    :class:`QuarantineRow` carrying every reason found. The key's ingest rules change the item
    before it is read into columns, so every column and the raw JSON hold what they left; an
    event a rule drops becomes a :class:`DroppedRow`.
    """
    path = f"data[{index}]"
    raw = dump_json(item)
    if not isinstance(item, dict):
        return QuarantineRow(
            index, raw, [Reason("not_an_object", path, "the item is not a JSON object")]
        )
    rules = context.rules
    broken = check_structure(item, raw, context.limits, path)
    if broken is not None:
        if rules is not None and rules.transforms:
            return QuarantineRow(index, WITHHELD_RAW, [broken, _withheld(path)])
        return QuarantineRow(index, raw, [broken])
    if rules is not None and rules.transforms and rules.transform(item, raw):
        raw = dump_json(item)

    warnings: list[Reason] = []
    version, version_problem = _item_version(item, context.version)
    if version is None:
        assert version_problem is not None
        return QuarantineRow(index, raw, [_at(version_problem, path)])
    if version_problem is not None:
        warnings.append(_at(version_problem, path))
    vocabulary = VOCABULARIES[version]

    raw_type = item.get("type", item.get("@type"))
    type_term = term_from_iri(raw_type) if isinstance(raw_type, str) and raw_type else None
    is_event = "action" in item or (
        type_term is not None
        and (vocabulary.is_event_type(type_term) or type_term.endswith("Event"))
    )
    facts = _ItemFacts(
        index=index,
        path=path,
        raw=raw,
        digest=content_hash(item),
        version=version,
        vocabulary=vocabulary,
        type_term=type_term,
        warnings=warnings,
        max_id_chars=context.limits.max_id_chars,
    )
    if not is_event:
        return _normalize_entity(item, facts)
    row = _normalize_event(item, facts)
    if rules is not None and isinstance(row, EventRow):
        rule = rules.dropping_rule(row)
        if rule is not None:
            return DroppedRow(index, row.event_id, rule)
    return row


# What quarantine keeps of an item the rules could not be run on (too deep, too long): the
# rules exist so that what they remove is never written, and such an item can never be stored.
WITHHELD_RAW = "null"


def _withheld(path: str) -> Reason:
    return Reason(
        "withheld_by_rules",
        path,
        "the ingest rules cannot run on an item that breaks a structural limit, so its "
        "content is not kept",
    )


def _at(reason: Reason, path: str) -> Reason:
    return Reason(reason.code, f"{path}.{reason.field}", reason.message)


def _normalize_event(item: dict[str, Any], facts: _ItemFacts) -> Item:
    index, path, raw, digest = facts.index, facts.path, facts.raw, facts.digest
    version, vocabulary, warnings = facts.version, facts.vocabulary, facts.warnings
    type_term, max_id_chars = facts.type_term, facts.max_id_chars
    reasons: list[Reason] = []

    sent_id = item.get("id", item.get("@id"))
    event_id: str | None = None
    if isinstance(sent_id, str) and sent_id:
        event_id = normalize_id(sent_id)
    elif sent_id is not None and sent_id != "":
        reasons.append(Reason("invalid_id", f"{path}.id", "the event id is not a string"))
    elif "id" in vocabulary.required_event_properties:
        warnings.append(
            Reason("missing_id", f"{path}.id", "no event id; one is derived from the content")
        )

    if type_term is None:
        type_term = "Event"
        warnings.append(Reason("missing_type", f"{path}.type", "no event type; read as Event"))

    actor_id, actor_type, actor_broken = _reference(item.get("actor"))
    if actor_id is None:
        reasons.append(
            Reason(
                "invalid_actor" if actor_broken else "missing_actor",
                f"{path}.actor",
                "the actor has no id" if actor_broken else "the event has no actor",
            )
        )

    raw_action = item.get("action")
    action = term_from_iri(raw_action) if isinstance(raw_action, str) and raw_action else None
    if action is None:
        code = "missing_action" if raw_action in (None, "") else "invalid_action"
        reasons.append(Reason(code, f"{path}.action", "the event has no action string"))

    object_id, object_type, object_broken = _reference(item.get("object"))
    if object_id is None:
        reasons.append(
            Reason(
                "invalid_object" if object_broken else "missing_object",
                f"{path}.object",
                "the object has no id" if object_broken else "the event has no object",
            )
        )

    raw_time = item.get("eventTime")
    event_time, is_naive = parse_time(raw_time)
    if event_time is None:
        code = "missing_event_time" if raw_time in (None, "") else "unparseable_event_time"
        reasons.append(Reason(code, f"{path}.eventTime", "eventTime must be an ISO 8601 date-time"))
    elif is_naive:
        warnings.append(
            Reason("naive_event_time", f"{path}.eventTime", "eventTime has no offset; read as UTC")
        )

    group_id, _, group_broken = _reference(item.get("group"))
    session_id, _, session_broken = _reference(item.get("session"))
    ed_app_id, _, ed_app_broken = _reference(item.get("edApp"))
    for name, broken in (
        ("group", group_broken),
        ("session", session_broken),
        ("edApp", ed_app_broken),
    ):
        if broken:
            warnings.append(
                Reason(f"invalid_{name.lower()}", f"{path}.{name}", f"{name} has no id")
            )

    for name, value in (
        ("id", event_id),
        ("actor", actor_id),
        ("object", object_id),
        ("group", group_id),
        ("session", session_id),
        ("edApp", ed_app_id),
    ):
        if value is not None and len(value) > max_id_chars:
            reasons.append(
                Reason(
                    "id_too_long",
                    f"{path}.{name}",
                    f"the {name} id is longer than max_id_chars={max_id_chars}",
                )
            )
    external_id = _actor_external_id(item, item.get("actor"))
    membership_role = _membership_role(item.get("membership"))
    # Every other text copied into a column is bounded too: a type or action of a mebibyte
    # would otherwise sit in the row and in the indexes beside the raw event.
    for name, value in (
        ("type", type_term),
        ("action", action),
        ("actor.type", actor_type),
        ("object.type", object_type),
        ("externalId", external_id),
        ("membership.roles", membership_role),
    ):
        if value is not None and len(value) > max_id_chars:
            reasons.append(
                Reason(
                    "term_too_long",
                    f"{path}.{name}",
                    f"the {name} is longer than max_id_chars={max_id_chars}",
                )
            )
    if reasons:
        kept_id = event_id if event_id is not None and len(event_id) <= max_id_chars else None
        return QuarantineRow(index, raw, reasons, event_id=kept_id, caliper_version=version)
    assert actor_id is not None
    assert action is not None
    assert object_id is not None
    assert event_time is not None

    is_extension = False
    if not vocabulary.is_event_type(type_term):
        is_extension = True
        warnings.append(
            Reason(
                "extension_type",
                f"{path}.type",
                f"{type_term!r} is not a Caliper {version} event type",
            )
        )
    if action not in vocabulary.actions:
        is_extension = True
        warnings.append(
            Reason(
                "extension_action",
                f"{path}.action",
                f"{action!r} is not a Caliper {version} action",
            )
        )
    elif not is_extension and not vocabulary.allows_action(type_term, action):
        warnings.append(
            Reason(
                "action_not_allowed",
                f"{path}.action",
                f"Caliper {version} does not list {action!r} for {type_term}",
            )
        )

    return EventRow(
        index=index,
        event_id=event_id or derive_event_id(digest),
        has_derived_id=event_id is None,
        content_hash=digest,
        caliper_version=version,
        event_type=type_term,
        action=action,
        actor_id=actor_id,
        actor_type=actor_type,
        actor_external_id=external_id,
        object_id=object_id,
        object_type=object_type,
        group_id=group_id,
        membership_role=membership_role,
        session_id=session_id,
        ed_app_id=ed_app_id,
        event_time=event_time,
        is_extension=is_extension,
        raw=raw,
        group_name=group_name(item.get("group")),
        actor_login=actor_login(item),
        warnings=warnings,
    )


def _normalize_entity(item: dict[str, Any], facts: _ItemFacts) -> Item:
    index, path, raw, digest = facts.index, facts.path, facts.raw, facts.digest
    version, vocabulary, warnings = facts.version, facts.vocabulary, facts.warnings
    type_term, max_id_chars = facts.type_term, facts.max_id_chars
    entity_id, _, _ = _reference(item)
    reasons: list[Reason] = []
    if entity_id is None:
        reasons.append(
            Reason(
                "not_event_or_entity",
                path,
                "the item has no action (so it is no event) and no id (so it is no entity)",
            )
        )
    elif len(entity_id) > max_id_chars:
        reasons.append(
            Reason(
                "id_too_long",
                f"{path}.id",
                f"the entity id is longer than max_id_chars={max_id_chars}",
            )
        )
    if type_term is None:
        reasons.append(Reason("missing_type", f"{path}.type", "the entity has no type"))
    elif len(type_term) > max_id_chars:
        reasons.append(
            Reason(
                "term_too_long",
                f"{path}.type",
                f"the type is longer than max_id_chars={max_id_chars}",
            )
        )
    if reasons:
        kept_id = entity_id if entity_id is not None and len(entity_id) <= max_id_chars else None
        return QuarantineRow(index, raw, reasons, event_id=kept_id, caliper_version=version)
    assert entity_id is not None
    assert type_term is not None
    if not vocabulary.is_entity_type(type_term):
        warnings.append(
            Reason(
                "extension_type",
                f"{path}.type",
                f"{type_term!r} is not a Caliper {version} entity type",
            )
        )
    return EntityRow(
        index=index,
        entity_id=entity_id,
        content_hash=digest,
        caliper_version=version,
        entity_type=type_term,
        raw=raw,
        warnings=warnings,
    )
