"""What the store takes on disk, per event: ``caliper-store stats --storage``.

Each backend measures its own relations (SQLite's ``dbstat``, PostgreSQL's size functions over
every partition); the figures per event, the compression ratio and the dictionaries are worked
out here once for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import zstandard
from sqlalchemy import func, select

from caliper_store.storage.schema import events, raw_dictionaries

if TYPE_CHECKING:
    from caliper_store.storage.base import Store

# The compression ratio is measured on the newest rows: reading every frame of a large store
# would take minutes, and the newest say what the current dictionary does.
RATIO_SAMPLE_EVENTS = 10_000
# Where each backend finds an event by its id: PostgreSQL's event_ids (the one index across
# partitions), SQLite's id hashes (sealed and recent) and the ids whose hash another id holds.
ID_TABLES = ("event_ids", "event_id_hashes", "recent_event_id_hashes", "event_id_collisions")

RelationKind = Literal["table", "index", "free", "wal"]


@dataclass(frozen=True, slots=True)
class RelationSize:
    """Bytes on disk of one table (with its TOAST), one index, the free pages or the WAL."""

    name: str
    table: str
    kind: RelationKind
    bytes: int


def _per_event(size: int, count: int) -> float | None:
    return round(size / count, 1) if count else None


def storage_usage(store: Store) -> dict[str, Any]:
    """Bytes on disk, in all and per stored event; compression ratio; dictionary versions."""
    sizes = store.relation_sizes()
    with store.engine.connect() as connection:
        by_dictionary: dict[int | None, int] = dict(
            connection.execute(
                select(events.c.raw_dictionary, func.count()).group_by(events.c.raw_dictionary)
            ).all()
        )
        frames = connection.scalars(
            select(events.c.raw_zstd)
            .where(events.c.raw_dictionary.is_not(None))
            .order_by(events.c.seq.desc())
            .limit(RATIO_SAMPLE_EVENTS)
        ).all()
        dictionaries = connection.execute(
            select(
                raw_dictionaries.c.id,
                raw_dictionaries.c.created_at,
                raw_dictionaries.c.level,
                raw_dictionaries.c.sample_events,
                raw_dictionaries.c.sample_bytes,
                raw_dictionaries.c.compressed_bytes,
                func.length(raw_dictionaries.c.content).label("size"),
            ).order_by(raw_dictionaries.c.id)
        ).all()
    total_events = sum(by_dictionary.values())  # one scan: every row names a dictionary or NULL
    raw_bytes = sum(zstandard.frame_content_size(bytes(frame)) for frame in frames)
    stored_bytes = sum(len(frame) for frame in frames)
    table_bytes = sum(
        size.bytes for size in sizes if size.table == "events" and size.kind == "table"
    )
    index_bytes = sum(
        size.bytes
        for size in sizes
        if size.table in ("events", *ID_TABLES) and size.kind == "index"
    )
    id_table_bytes = sum(
        size.bytes for size in sizes if size.table in ID_TABLES and size.kind == "table"
    )
    database_bytes = sum(size.bytes for size in sizes if size.kind != "wal")
    return {
        "backend": store.backend,
        "events": total_events,
        "database_bytes": database_bytes,
        "wal_bytes": sum(size.bytes for size in sizes if size.kind == "wal"),
        "per_event": {
            "everything": _per_event(database_bytes, total_events),
            "events_table": _per_event(table_bytes, total_events),
            "event_ids_table": _per_event(id_table_bytes, total_events) if id_table_bytes else None,
            "event_indexes": _per_event(index_bytes, total_events),
        },
        "relations": [
            {
                "name": size.name,
                "table": size.table,
                "kind": size.kind,
                "bytes": size.bytes,
                "per_event": _per_event(size.bytes, total_events),
            }
            for size in sorted(sizes, key=lambda size: -size.bytes)
        ],
        "compression": {
            "sampled_events": len(frames),
            "raw_bytes": raw_bytes,
            "stored_bytes": stored_bytes,
            "ratio": round(stored_bytes / raw_bytes, 4) if raw_bytes else None,
            "plain_events": int(by_dictionary.get(None, 0)),
        },
        "dictionaries": [
            {
                "id": 0,
                "created_at": None,
                "bytes": 0,
                "trained_ratio": None,
                "events": int(by_dictionary.get(0, 0)),
            }
        ]
        + [
            {
                "id": row.id,
                "created_at": row.created_at,
                "bytes": int(row.size),
                "level": row.level,
                "trained_ratio": round(row.compressed_bytes / max(row.sample_bytes, 1), 4),
                "events": int(by_dictionary.get(row.id, 0)),
            }
            for row in dictionaries
        ],
    }
