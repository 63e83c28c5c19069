"""A person's rights: find every trace of one person, export it, erase it.

Given one id (an actor id, an external or SIS id, a login, or a pseudonym; with a pseudonym
secret set, the clear id is also looked for as its pseudonym), the person's ids are linked
through the events: events with one of them as actor give the actor's external ids, events with
one of them as external id give actor ids, and the logins actors were seen with
(``actor_logins``) link logins and actor ids both ways, until no new id turns up.

Then every event that names the person: as actor, as object, by external id (all indexed),
or anywhere else in the event (a member, an attempt's assignee, a grade's scored attempt): the
raw JSON of the events of the person's courses is searched for each id as a JSON string. An
event that names the person outside their courses in a place no column holds is not found.
Quarantined items and entity descriptions are searched whole.

Erase removes all of it (and the person's logins) in paced batches (``purge_batch_ms``), each
one short transaction that also takes the events out of the rollups, so ingest waits at most one
batch at a time; the audit row names the person only by an HMAC of the given id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from caliper_store.privacy.pseudonyms import Pseudonymizer, is_pseudonym
from caliper_store.storage import Condition, Snapshot, Store

# How many rounds of linking ids through the events: an actor id gives its external ids, an
# external id gives the actor ids that carried it, and so on.
MAX_LINK_ROUNDS = 4
_ACTOR_COLUMNS = ("seq", "actor_id", "actor_external_id", "group_id")


@dataclass
class PersonTraces:
    """Everything of one person the store holds, found from one given id."""

    given: str
    ids: set[str] = field(default_factory=set)
    actor_ids: set[str] = field(default_factory=set)
    external_ids: set[str] = field(default_factory=set)
    logins: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    event_seqs: set[int] = field(default_factory=set)
    quarantine_ids: set[int] = field(default_factory=set)
    entity_seqs: set[int] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        """Which ids were used and how much was found (never the events themselves)."""
        return {
            "given": self.given,
            "idsUsed": sorted(self.ids),
            "actorIds": sorted(self.actor_ids),
            "externalIds": sorted(self.external_ids),
            "logins": sorted(self.logins),
            "courses": len(self.groups),
            "events": len(self.event_seqs),
            "quarantined": len(self.quarantine_ids),
            "entities": len(self.entity_seqs),
        }


def _marks(ids: set[str]) -> list[str]:
    """Each id as its JSON string, as it appears inside raw JSON."""
    return [orjson.dumps(value).decode() for value in ids]


def _names_any(raw: str, marks: list[str]) -> bool:
    return any(mark in raw for mark in marks)


def _link(snapshot: Snapshot, traces: PersonTraces) -> None:
    frontier = set(traces.ids)
    for _ in range(MAX_LINK_ROUNDS):
        if not frontier:
            return
        values = tuple(sorted(frontier))
        found: set[str] = set()
        for login, login_actor in snapshot.login_pairs(values):
            found |= {login, login_actor}
            traces.logins.add(login)
            traces.actor_ids.add(login_actor)
        for column in ("actor_id", "actor_external_id"):
            for seq, actor_id, external_id, group_id in snapshot.events(
                [Condition(column, "in", values)], _ACTOR_COLUMNS
            ):
                traces.event_seqs.add(int(seq))  # type: ignore[call-overload]
                found.add(str(actor_id))
                traces.actor_ids.add(str(actor_id))
                if external_id is not None:
                    found.add(str(external_id))
                    traces.external_ids.add(str(external_id))
                if group_id is not None:
                    traces.groups.add(str(group_id))
        frontier = found - traces.ids
        traces.ids |= found


def find_person(
    snapshot: Snapshot, given: str, pseudonymizer: Pseudonymizer | None
) -> PersonTraces:
    """Every event, quarantined item and entity that names the person ``given`` identifies."""
    traces = PersonTraces(given, ids={given})
    if pseudonymizer is not None and not is_pseudonym(given):
        traces.ids.add(pseudonymizer.pseudonym(given))
    _link(snapshot, traces)
    values = tuple(sorted(traces.ids))
    for (seq,) in snapshot.events([Condition("object_id", "in", values)], ("seq",)):
        traces.event_seqs.add(int(seq))  # type: ignore[call-overload]
    marks = _marks(traces.ids)
    if traces.groups:
        for seq, raw in snapshot.events(
            [Condition("group_id", "in", tuple(sorted(traces.groups)))], ("seq",), with_raw=True
        ):
            if _names_any(str(raw), marks):
                traces.event_seqs.add(int(seq))  # type: ignore[call-overload]
    for item_id, _, _, _, _, raw in snapshot.quarantine_items():
        if _names_any(raw, marks):
            traces.quarantine_ids.add(item_id)
    for seq, entity_id, _, raw in snapshot.entity_items():
        if entity_id in traces.ids or _names_any(raw, marks):
            traces.entity_seqs.add(seq)
    return traces


def export_lines(store: Store, traces: PersonTraces) -> Iterator[bytes]:
    """The person's events, quarantined items, entities and logins as NDJSON lines."""
    with store.snapshot(is_time_limited=False) as snapshot:
        seqs = sorted(traces.event_seqs)
        for start in range(0, len(seqs), 1000):
            chunk = seqs[start : start + 1000]
            raws = snapshot.raw_events(chunk)
            for seq in chunk:
                if seq in raws:
                    line = {"kind": "event", "seq": seq, "event": orjson.loads(raws[seq])}
                    yield orjson.dumps(line) + b"\n"
        for item_id, key_id, received_at, status, reasons, raw in snapshot.quarantine_items():
            if item_id in traces.quarantine_ids:
                line = {
                    "kind": "quarantined",
                    "id": item_id,
                    "receivedAt": received_at,
                    "status": status,
                    "reasons": json.loads(reasons),
                    "item": _json_or_text(raw),
                    "keyId": key_id,
                }
                yield orjson.dumps(line) + b"\n"
        for seq, entity_id, entity_type, raw in snapshot.entity_items():
            if seq in traces.entity_seqs:
                line = {
                    "kind": "entity",
                    "id": entity_id,
                    "type": entity_type,
                    "entity": _json_or_text(raw),
                }
                yield orjson.dumps(line) + b"\n"
        pairs = snapshot.login_pairs(sorted(traces.logins | traces.actor_ids))
        for login, actor_id in sorted(pairs):
            yield orjson.dumps({"kind": "login", "login": login, "actorId": actor_id}) + b"\n"


def _json_or_text(raw: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw


@dataclass(frozen=True, slots=True)
class ErasureResult:
    """What an erase removed (or, in a dry run, would remove)."""

    is_dry_run: bool
    events: int
    quarantined: int
    entities: int
    person_hmac: str
    # The (login, actor) pairs kept for finding people by login.
    login_pairs: int = 0

    def as_json(self) -> dict[str, Any]:
        """The counts, and the HMAC the audit row names the person by."""
        return {
            "dryRun": self.is_dry_run,
            "events": self.events,
            "quarantined": self.quarantined,
            "entities": self.entities,
            "loginPairs": self.login_pairs,
            "personHmac": self.person_hmac,
        }


def person_hmac(given: str, pseudonymizer: Pseudonymizer | None) -> str:
    """How the audit log names an erased person: an HMAC of the id, never the id.

    Under the pseudonym secret when one is set, so whoever holds it can later check whether a
    given person was erased; without one, under a random key used once and forgotten.
    """
    if pseudonymizer is not None:
        return pseudonymizer.digest(given)
    return hmac.new(secrets.token_bytes(32), given.encode("utf-8"), hashlib.sha256).hexdigest()


def erase_person(
    store: Store,
    traces: PersonTraces,
    *,
    pseudonymizer: Pseudonymizer | None,
    is_dry_run: bool,
    batch_events: int,
    batch_ms: int = 0,
    actor: str,
    at: str,
    on_batch: Callable[[int], None] | None = None,
) -> ErasureResult:
    """Remove every trace found, with one audit row; a dry run only counts them."""
    digest = person_hmac(traces.given, pseudonymizer)
    if is_dry_run:
        return ErasureResult(
            True,
            len(traces.event_seqs),
            len(traces.quarantine_ids),
            len(traces.entity_seqs),
            digest,
            len(traces.logins),
        )
    removed = store.remove_events(
        sorted(traces.event_seqs), batch_events=batch_events, batch_ms=batch_ms, on_batch=on_batch
    )
    quarantined = store.delete_rows("quarantine", sorted(traces.quarantine_ids), batch_events)
    entities = store.delete_rows("entities", sorted(traces.entity_seqs), batch_events)
    logins = store.forget_logins(traces.logins, traces.actor_ids)
    result = ErasureResult(False, removed.events, quarantined, entities, digest, logins)
    store.record_audit(
        at=at,
        actor=actor,
        action="erase",
        target=f"person hmac-sha256:{digest}",
        rows=removed.events + quarantined + entities + logins,
        detail={
            "events": removed.events,
            "quarantined": quarantined,
            "entities": entities,
            "loginPairs": logins,
            "idsUsed": len(traces.ids),
            "eventsByKey": {str(key): count for key, count in sorted(removed.by_key.items())},
        },
    )
    return result
