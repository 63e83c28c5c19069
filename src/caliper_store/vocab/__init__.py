"""The Caliper vocabulary per version, and the lookups ingest runs on every event.

The terms themselves are data in ``v1p0``, ``v1p1``, ``v1p2`` (one module per Caliper version)
and ``vendors`` (producer extensions). This module turns them into one `Vocabulary` per
version and precomputes the tables behind `version_of_context` and `term_from_iri`, which run
several times per event and so do dictionary lookups only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Final

from caliper_store.vocab import v1p0, v1p1, v1p2, vendors

__all__ = [
    "CORE_CONTEXTS",
    "SUPPORTED_VERSIONS",
    "VOCABULARIES",
    "Vocabulary",
    "term_from_iri",
    "vendor_of",
    "version_of_context",
]


@dataclass(frozen=True)
class Vocabulary:
    """The terms of one Caliper version: event types with their actions, entities, contexts."""

    version: str
    contexts: frozenset[str]
    event_actions: Mapping[str, frozenset[str]]
    entity_types: frozenset[str]
    profiles: frozenset[str]
    required_event_properties: tuple[str, ...]

    def is_event_type(self, term: str) -> bool:
        """Tell whether `term` names an event type of this version (``"SessionEvent"``)."""
        return term in self.event_actions

    def is_entity_type(self, term: str) -> bool:
        """Tell whether `term` names an entity type of this version (``"Person"``)."""
        return term in self.entity_types

    def allows_action(self, event_type: str, action: str) -> bool:
        """Tell whether this version lists `action` for `event_type`; False if either is unknown."""
        allowed = self.event_actions.get(event_type)
        return allowed is not None and action in allowed

    @cached_property
    def actions(self) -> frozenset[str]:
        """Every action that some event type of this version allows."""
        return frozenset[str]().union(*self.event_actions.values())


SUPPORTED_VERSIONS: Final[tuple[str, ...]] = ("1.0", "1.1", "1.2")

# The one context IRI that names each version, as the 1.2 endpoint configuration lists them.
CORE_CONTEXTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        v1p0.VERSION: "http://purl.imsglobal.org/ctx/caliper/v1/Context",
        v1p1.VERSION: v1p1.CORE_CONTEXT,
        v1p2.VERSION: v1p2.CORE_CONTEXT,
    }
)

_SCHEMES: Final = ("http://", "https://")


def _strip_scheme(iri: str) -> str:
    """Drop the scheme and any trailing slash, so http/https and `/`-ended forms compare equal."""
    for scheme in _SCHEMES:
        if iri.startswith(scheme):
            iri = iri[len(scheme) :]
            break
    return iri.rstrip("/")


def _context_forms(contexts: Iterable[str]) -> frozenset[str]:
    """Spell each context IRI with http and https, with and without a trailing slash."""
    forms: set[str] = set()
    for context in contexts:
        bare = _strip_scheme(context)
        for scheme in _SCHEMES:
            forms.add(scheme + bare)
            forms.add(scheme + bare + "/")
    return frozenset(forms)


def _v1p1_event_actions() -> dict[str, frozenset[str]]:
    # Deprecated actions are still 1.1 (caliper-spec.md Appendix B: SHOULD NOT, not MUST NOT).
    return {
        event_type: actions | v1p1.DEPRECATED_EVENT_ACTIONS.get(event_type, frozenset())
        for event_type, actions in v1p1.SUPPORTED_EVENT_ACTIONS.items()
    }


VOCABULARIES: Final[Mapping[str, Vocabulary]] = MappingProxyType(
    {
        v1p0.VERSION: Vocabulary(
            version=v1p0.VERSION,
            contexts=_context_forms(v1p0.CONTEXTS),
            event_actions=MappingProxyType(dict(v1p0.EVENT_ACTIONS)),
            entity_types=v1p0.ENTITY_TYPES,
            profiles=v1p0.PROFILES,
            required_event_properties=v1p0.REQUIRED_EVENT_PROPERTIES,
        ),
        v1p1.VERSION: Vocabulary(
            version=v1p1.VERSION,
            contexts=_context_forms(v1p1.CONTEXTS),
            event_actions=MappingProxyType(_v1p1_event_actions()),
            entity_types=v1p1.ENTITY_TYPES,
            profiles=v1p1.PROFILES,
            required_event_properties=v1p1.REQUIRED_EVENT_PROPERTIES,
        ),
        v1p2.VERSION: Vocabulary(
            version=v1p2.VERSION,
            contexts=_context_forms(v1p2.CONTEXTS),
            event_actions=MappingProxyType(dict(v1p2.EVENT_ACTIONS)),
            entity_types=v1p2.ENTITY_TYPES,
            profiles=v1p2.PROFILES,
            required_event_properties=v1p2.REQUIRED_EVENT_PROPERTIES,
        ),
    }
)

# --- contexts -------------------------------------------------------------------------------

# Scheme-less, slash-less context IRI -> version.
_CONTEXT_VERSIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        _strip_scheme(context): vocabulary.version
        for vocabulary in VOCABULARIES.values()
        for context in vocabulary.contexts
    }
)

# Forms not listed one by one: any 1.1/1.2 profile `-extension` context
# (caliper-spec.md 6.1.2; caliper-python builds `.../v1p2/<Profile>-extension`), and any
# 1.0 context document under `.../ctx/caliper/v1/`.
_CONTEXT_PREFIX_VERSIONS: Final = (
    (_strip_scheme(v1p1.CORE_CONTEXT) + "/", v1p1.VERSION),
    (_strip_scheme(v1p2.CORE_CONTEXT) + "/", v1p2.VERSION),
    ("purl.imsglobal.org/ctx/caliper/v1/", v1p0.VERSION),
)

# Producer contexts that stand for a Caliper version when no IMS context is given.
_VENDOR_CONTEXT_VERSIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        form: vendors.BLACKBOARD_CONTEXT_VERSION
        for form in _context_forms([vendors.BLACKBOARD_CONTEXT])
    }
)


# Every listed spelling of every context (http/https, with/without `/`) -> version.
_CONTEXT_FORM_VERSIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        context: vocabulary.version
        for vocabulary in VOCABULARIES.values()
        for context in vocabulary.contexts
    }
)


# Every IMS Caliper context IRI contains this; anything else is rejected without more work.
_IMS_CONTEXT_MARK: Final = "purl.imsglobal.org/ctx/caliper/"


def _ims_context_version(iri: str) -> str | None:
    version = _CONTEXT_FORM_VERSIONS.get(iri)
    if version is not None:
        return version
    if _IMS_CONTEXT_MARK not in iri:
        return None
    key = _strip_scheme(iri)
    version = _CONTEXT_VERSIONS.get(key)
    if version is not None:
        return version
    for prefix, prefix_version in _CONTEXT_PREFIX_VERSIONS:
        if key.startswith(prefix):
            return prefix_version
    return None


def version_of_context(context: object) -> str | None:
    """Tell which Caliper version an item's ``@context`` or an envelope's ``dataVersion`` names.

    Args:
        context: The raw value: a context IRI, a list of them (Blackboard sends
            ``[its own context, the v1p1 context]``; inline JSON-LD context objects in the list
            are skipped), or anything else.

    Returns:
        ``"1.0"``, ``"1.1"`` or ``"1.2"`` for the first IMS Caliper context found, accepting
        http or https, a trailing slash and the 1.1 profile ``-extension`` contexts. Failing
        that, the version a known producer context implies (Blackboard's alone means 1.0).
        None when nothing names a Caliper version.
    """
    if isinstance(context, str):
        return _ims_context_version(context) or _vendor_context_version(context)
    if not isinstance(context, (list, tuple)):
        return None
    fallback: str | None = None
    for iri in context:
        if isinstance(iri, str):
            version = _ims_context_version(iri)
            if version is not None:
                return version
            if fallback is None:
                fallback = _vendor_context_version(iri)
    return fallback


def _vendor_context_version(iri: str) -> str | None:
    return _VENDOR_CONTEXT_VERSIONS.get(iri)


# --- IRIs to terms --------------------------------------------------------------------------


def _https_too(iri_terms: Mapping[str, str]) -> dict[str, str]:
    both = dict(iri_terms)
    for iri, term in iri_terms.items():
        if iri.startswith("http://"):
            both["https://" + iri[len("http://") :]] = term
    return both


def _iri_terms() -> dict[str, str]:
    """Map every known IMS type and action IRI of every version to its term."""
    terms: dict[str, str] = {}
    # 1.0: types under caliper/v1/ (LIS and W3C entities in their own folders), IRI actions.
    for term in v1p0.EVENT_ACTIONS.keys() | v1p0.ENTITY_TYPES:
        terms[v1p0.TYPE_IRI_BASE + term] = term
    for term in v1p0.LIS_ENTITY_TYPES:
        terms[v1p0.LIS_TYPE_IRI_BASE + term] = term
    for term in v1p0.W3C_ENTITY_TYPES:
        terms[v1p0.W3C_TYPE_IRI_BASE + term] = term
    for term in v1p0.ACTIONS:
        terms[v1p0.ACTION_IRI_BASE + term] = term
    for spelling, term in v1p0.ACTION_IRI_SPELLINGS.items():
        terms[v1p0.ACTION_IRI_BASE + spelling] = term
    # 1.1 and 1.2: types under caliper/, actions under caliper/actions/.
    later = (
        (v1p1.TYPE_IRI_BASE, v1p1.ACTION_IRI_BASE, v1p1.ACTION_IRI_SPELLINGS, v1p1.VERSION),
        (v1p2.TYPE_IRI_BASE, v1p2.ACTION_IRI_BASE, v1p2.ACTION_IRI_SPELLINGS, v1p2.VERSION),
    )
    for type_base, action_base, spellings, version in later:
        vocabulary = VOCABULARIES[version]
        for term in vocabulary.event_actions.keys() | vocabulary.entity_types:
            terms[type_base + term] = term
        for term in vocabulary.actions:
            terms[action_base + term] = term
        for spelling, term in spellings.items():
            terms[action_base + spelling] = term
    # LIS roles and statuses, common in every event's membership.
    for term in v1p1.ROLES:
        terms[v1p1.ROLE_IRI_BASE + term] = term
    for term in v1p1.STATUSES:
        terms[v1p1.STATUS_IRI_BASE + term] = term
    return _https_too(terms)


_TERMS: Final[Mapping[str, str]] = MappingProxyType(_iri_terms())

_IMS_HOSTS: Final = ("http://purl.imsglobal.org/", "https://purl.imsglobal.org/")

# IMS namespaces whose last segment is the term, for IRIs not in _TERMS (terms added after
# these tables, LIS roles and statuses). Longest first, so `.../caliper/v1/lis/` wins over
# `.../caliper/v1/` and `.../caliper/`. LIS forms: caliper-spec.md Appendix E and F.
_IMS_TERM_PREFIXES: Final = tuple(
    sorted(
        (
            scheme + base.removeprefix("http://")
            for scheme in _SCHEMES
            for base in (
                v1p0.TYPE_IRI_BASE,
                v1p0.LIS_TYPE_IRI_BASE,
                v1p0.W3C_TYPE_IRI_BASE,
                v1p0.ACTION_IRI_BASE,
                v1p1.TYPE_IRI_BASE,
                v1p1.ACTION_IRI_BASE,
                v1p1.ROLE_IRI_BASE,
                v1p1.SUBROLE_IRI_BASE,
                v1p1.STATUS_IRI_BASE,
            )
        ),
        key=len,
        reverse=True,
    )
)


def term_from_iri(value: str) -> str:
    """Reduce an IMS Caliper IRI to its term; return anything else unchanged.

    ``http://purl.imsglobal.org/caliper/v1/lis/Person`` becomes ``Person``,
    ``http://purl.imsglobal.org/vocab/caliper/v1/action#LoggedIn`` becomes ``LoggedIn``, the
    1.1/1.2 forms (``.../caliper/SessionEvent``, ``.../caliper/actions/LoggedIn``) and LIS role
    and status IRIs likewise. A plain term, or an IRI outside the IMS namespaces (Blackboard's,
    IDPF's EPUB types), comes back as given.
    """
    term = _TERMS.get(value)
    if term is not None:
        return term
    if not value.startswith(_IMS_HOSTS):
        return value
    for prefix in _IMS_TERM_PREFIXES:
        if value.startswith(prefix):
            rest = value[len(prefix) :]
            return rest if rest and "/" not in rest else value
    return value


def vendor_of(term: str) -> str | None:
    """Name the producer that defines `term` (``"blackboard"``), or None for any other term."""
    if term.startswith(vendors.BLACKBOARD_IRI_PREFIXES):
        return vendors.BLACKBOARD
    return None
