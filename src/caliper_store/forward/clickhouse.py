"""ClickHouse, the way past one database: a forwarding sink, and a source reports can run on.

``chdb:///path`` is embedded ClickHouse (the chdb package) for one analytics host and for
tests; ``clickhouse://user:pass@host:8123/db`` (``clickhouses://`` for TLS) a server, through
clickhouse-connect. The table is created when missing: a ReplacingMergeTree partitioned by
month and ordered for course and time queries, the event id last in its key, so a re-sent
event collapses into one row at merge time, and queries read with ``FINAL``. A re-sent batch
carries the same ``insert_deduplication_token`` (its first and last seq), which a non-replicated
table honours with ``non_replicated_deduplication_window``. On a cluster, give
``?engine=ReplicatedReplacingMergeTree&cluster=NAME`` in the URL (Aspects' layout, ARCHITECTURE.md
section 9). chDB locks its folder to one process: run the forwarder and report commands on
it one at a time.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from caliper_store.errors import ConfigurationError, DestinationUnavailable, InvalidQuery
from caliper_store.forward.sinks import Answer
from caliper_store.storage import (
    EVENT_TIME_MICROS,
    RECEIVED_AT_MICROS,
    Condition,
    EventRecord,
    GroupRollup,
    group_name,
    iri_key,
)

DEFAULT_DATABASE = "caliper"
DEFAULT_TABLE = "caliper_events"
DEDUPLICATION_WINDOW = 1000

# The table's columns and their ClickHouse types, in insert order; ``seq`` is the store's.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "String"),
    ("seq", "UInt64"),
    ("event_type", "LowCardinality(String)"),
    ("action", "LowCardinality(String)"),
    ("actor_id", "String"),
    ("actor_type", "LowCardinality(Nullable(String))"),
    ("actor_external_id", "Nullable(String)"),
    ("object_id", "String"),
    ("object_type", "LowCardinality(Nullable(String))"),
    ("group_id", "String"),
    ("group_name", "Nullable(String)"),
    ("membership_role", "LowCardinality(Nullable(String))"),
    ("session_id", "Nullable(String)"),
    ("ed_app_id", "Nullable(String)"),
    ("sensor", "Nullable(String)"),
    ("api_key_id", "UInt32"),
    ("caliper_version", "LowCardinality(String)"),
    ("is_extension", "Bool"),
    ("has_derived_id", "Bool"),
    ("event_time", "DateTime64(6, 'UTC')"),
    ("received_at", "DateTime64(6, 'UTC')"),
    ("raw", "String CODEC(ZSTD(3))"),
)
# Columns that are empty text in ClickHouse (a sort key cannot be Nullable) and None here.
_EMPTY_IS_NONE = frozenset({"group_id"})


@dataclass(frozen=True, slots=True)
class Place:
    """Where the table is: the database, the table, its engine and cluster."""

    database: str
    table: str
    engine: str
    cluster: str | None

    @property
    def name(self) -> str:
        """The table's qualified name."""
        return f"{_identifier(self.database)}.{_identifier(self.table)}"

    def create_sql(self) -> list[str]:
        """The statements that create the database and the table if missing."""
        on_cluster = f" ON CLUSTER {_identifier(self.cluster)}" if self.cluster else ""
        columns = ",\n  ".join(f"{name} {kind}" for name, kind in COLUMNS)
        settings = ""
        if not self.engine.startswith("Replicated"):
            settings = f"\nSETTINGS non_replicated_deduplication_window = {DEDUPLICATION_WINDOW}"
        return [
            f"CREATE DATABASE IF NOT EXISTS {_identifier(self.database)}{on_cluster}",
            f"CREATE TABLE IF NOT EXISTS {self.name}{on_cluster} (\n  {columns}\n)\n"
            f"ENGINE = {self.engine}\nPARTITION BY toYYYYMM(event_time)\n"
            f"ORDER BY (group_id, event_time, event_id){settings}",
        ]


class Connection(Protocol):
    """A ClickHouse to talk to: statements, inserts of JSON rows, queries of JSON rows."""

    def command(self, sql: str) -> None:
        """Run a statement."""

    def insert(self, table: str, rows: bytes, token: str) -> None:
        """Insert JSONEachRow rows under a deduplication token."""

    def rows(self, sql: str) -> list[dict[str, Any]]:
        """The rows of a query, as dicts."""

    def close(self) -> None:
        """Let go."""


class ChdbConnection:
    """Embedded ClickHouse in a folder (chDB), one session, used by one thread at a time."""

    def __init__(self, path: str) -> None:
        import chdb.session  # a 500 MB library: loaded only when a chdb URL is used

        opened: Any = chdb.session.Session  # untyped library
        self._session: Any = opened(path)
        self._error: type[Exception] = chdb.ChdbError
        self._lock = threading.Lock()

    def command(self, sql: str) -> None:
        """Run a statement."""
        self._query(sql, "CSV")

    def insert(self, table: str, rows: bytes, token: str) -> None:
        """Insert JSONEachRow rows under a deduplication token."""
        head = f"INSERT INTO {table} SETTINGS insert_deduplication_token = {_quote(token)} "
        self._query(head + "FORMAT JSONEachRow\n" + rows.decode("utf-8"), "CSV")

    def rows(self, sql: str) -> list[dict[str, Any]]:
        """The rows of a query, as dicts."""
        result = self._query(sql, "JSONEachRow")
        return [orjson.loads(line) for line in result.splitlines() if line.strip()]

    def close(self) -> None:
        """Close the session (and free the folder for another process)."""
        self._session.close()

    def _query(self, sql: str, output: str) -> str:
        with self._lock:
            try:
                return str(self._session.query(sql, output))
            except self._error as error:
                raise DestinationUnavailable(f"chDB: {str(error)[:300]}") from error


class ServerConnection:
    """A ClickHouse server over HTTP (clickhouse-connect)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def command(self, sql: str) -> None:
        """Run a statement."""
        self._call(self._client.command, sql)

    def insert(self, table: str, rows: bytes, token: str) -> None:
        """Insert JSONEachRow rows under a deduplication token."""
        self._call(
            self._client.raw_insert,
            table,
            insert_block=rows,
            fmt="JSONEachRow",
            settings={"insert_deduplication_token": token},
        )

    def rows(self, sql: str) -> list[dict[str, Any]]:
        """The rows of a query, as dicts."""
        result = self._call(self._client.raw_query, sql, fmt="JSONEachRow")
        return [orjson.loads(line) for line in bytes(result).splitlines() if line.strip()]

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        from clickhouse_connect.driver.exceptions import ClickHouseError

        try:
            return method(*args, **kwargs)
        except (ClickHouseError, OSError) as error:
            raise DestinationUnavailable(f"ClickHouse: {str(error)[:300]}") from error


def connect(url: str) -> tuple[Connection, Place]:
    """Open the ClickHouse of a URL and create its table if missing.

    Raises:
        ConfigurationError: the driver is not installed (``pip install caliper_store[clickhouse]``).
        InvalidQuery: the URL is not a ClickHouse URL.
    """
    parts = urlsplit(url)
    options = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    scheme = parts.scheme.lower()
    database = options.get("database", DEFAULT_DATABASE)
    connection: Connection
    try:
        if scheme == "chdb":
            if not parts.path:
                raise InvalidQuery(
                    "a chdb URL names a folder: chdb:///var/lib/caliper-ch", field="url"
                )
            connection = ChdbConnection(unquote(parts.path))
        elif scheme in ("clickhouse", "clickhouses"):
            import clickhouse_connect

            database = parts.path.strip("/") or database
            client = clickhouse_connect.get_client(
                host=parts.hostname or "localhost",
                port=parts.port or (8443 if scheme == "clickhouses" else 8123),
                username=unquote(parts.username or "default"),
                password=unquote(parts.password or ""),
                secure=scheme == "clickhouses",
            )
            connection = ServerConnection(client)
        else:
            raise InvalidQuery(f"{scheme}:// is not a ClickHouse URL", field="url")
    except ImportError as error:
        raise ConfigurationError(
            "ClickHouse needs its driver: pip install 'caliper_store[clickhouse]'"
        ) from error
    place = Place(
        database,
        options.get("table", DEFAULT_TABLE),
        options.get("engine", "ReplacingMergeTree"),
        options.get("cluster"),
    )
    for statement in place.create_sql():
        connection.command(statement)
    return connection, place


class ClickHouseSink:
    """Forwards stored events into the ClickHouse table, each batch once."""

    def __init__(self, connection: Connection, place: Place) -> None:
        self._connection = connection
        self._place = place

    @classmethod
    def connect(cls, url: str) -> ClickHouseSink:
        """The sink of a ``chdb://`` or ``clickhouse://`` URL."""
        return cls(*connect(url))

    def deliver(self, records: Sequence[EventRecord]) -> Answer:
        """Insert the events; a re-sent batch (the same seqs) is dropped by its token.

        Raises:
            DestinationUnavailable: ClickHouse failed; the relay tries again.
        """
        rows = b"".join(
            orjson.dumps(_row(record), option=orjson.OPT_APPEND_NEWLINE) for record in records
        )
        token = hashlib.sha256(b",".join(b"%d" % r.seq for r in records)).hexdigest()[:32]
        self._connection.insert(self._place.name, rows, token)
        return Answer(200)

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()


def _row(record: EventRecord) -> dict[str, Any]:
    row = {name: getattr(record, name) for name, _ in COLUMNS if name != "group_name"}
    row["group_id"] = record.group_id or ""
    document = orjson.loads(record.raw or "{}")
    row["group_name"] = group_name(document.get("group")) if isinstance(document, dict) else None
    return row


class ClickHouseSource:
    """The events in ClickHouse, read the way reports read a store's snapshot.

    Implements what ``student-activity`` and ``courses`` read (the events in (eventTime, seq)
    order under the same filters, raw events by seq, the newest arrival, the course names);
    courses are counted from the events, as the store counts them for a period. Key labels
    are not in ClickHouse: they are given (from the store, when it is at hand).
    """

    has_rollups = False

    def __init__(self, connection: Connection, place: Place, key_labels: dict[int, str]) -> None:
        self._connection = connection
        self._place = place
        self._labels = key_labels

    @classmethod
    def connect(cls, url: str, key_labels: dict[int, str]) -> ClickHouseSource:
        """The source of a ``chdb://`` or ``clickhouse://`` URL."""
        return cls(*connect(url), key_labels)

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()

    def events(
        self,
        conditions: Sequence[Condition],
        columns: Sequence[str],
        *,
        with_raw: bool = False,
        is_newest_first: bool = False,
    ) -> Iterator[tuple[object, ...]]:
        """The chosen columns of every matching event, in (event_time, seq) order."""
        chosen = [*columns, "raw"] if with_raw else list(columns)
        order = "DESC" if is_newest_first else "ASC"
        sql = (
            f"SELECT {', '.join(_select(name) for name in chosen)} "
            f"FROM {self._place.name} FINAL {_where(conditions)} "
            f"ORDER BY event_time {order}, seq {order}"
        )
        for row in self._connection.rows(sql):
            yield tuple(_value(name, row[name]) for name in chosen)

    def raw_events(self, seqs: Sequence[int]) -> dict[int, str]:
        """The raw JSON of the events with these seqs."""
        if not seqs:
            return {}
        wanted = ", ".join(str(int(seq)) for seq in sorted(set(seqs)))
        sql = f"SELECT seq, raw FROM {self._place.name} FINAL WHERE seq IN ({wanted})"
        return {int(row["seq"]): row["raw"] for row in self._connection.rows(sql)}

    def newest_received_at(self) -> str | None:
        """When the newest event in ClickHouse reached the store."""
        rows = self._connection.rows(
            f"SELECT {_select('received_at')} FROM {self._place.name} "
            "ORDER BY received_at DESC LIMIT 1"
        )
        return _value("received_at", rows[0]["received_at"]) if rows else None  # type: ignore[return-value]  # a text time

    def group_rollups(self) -> list[GroupRollup]:
        """Every course with its count, first and last event, and newest name."""
        sql = (
            f"SELECT group_id, count() AS events, {_time_text('min(event_time)', 'first')}, "
            f"{_time_text('max(event_time)', 'last')}, "
            "argMaxIf(group_name, event_time, group_name IS NOT NULL) AS name, "
            f"{_time_text('maxIf(event_time, group_name IS NOT NULL)', 'named_at')} "
            f"FROM {self._place.name} FINAL WHERE group_id != '' GROUP BY group_id"
        )
        found = []
        for row in self._connection.rows(sql):
            found.append(
                GroupRollup(
                    iri_key(row["group_id"]) or 0,
                    row["group_id"],
                    int(row["events"]),
                    row["first"],
                    row["last"],
                    row["name"] or None,
                    row["named_at"] if row["name"] else None,
                )
            )
        return found

    def key_labels(self) -> dict[int, str]:
        """The labels of the store's keys, as given."""
        return dict(self._labels)


_TIME_COLUMNS = frozenset({"event_time", "received_at"})


def _select(column: str) -> str:
    """A column as the store spells its values: times as UTC text with microseconds."""
    if column == EVENT_TIME_MICROS:
        return f"toUnixTimestamp64Micro(event_time) AS {EVENT_TIME_MICROS}"
    if column == RECEIVED_AT_MICROS:
        return f"toUnixTimestamp64Micro(received_at) AS {RECEIVED_AT_MICROS}"
    return _time_text(column, column) if column in _TIME_COLUMNS else column


def _time_text(expression: str, alias: str) -> str:
    """A DateTime64 expression as the store's UTC text (``2026-12-02T10:00:00.000000Z``)."""
    return f"formatDateTime({expression}, '%Y-%m-%dT%H:%i:%S.%fZ') AS {alias}"


def _value(name: str, value: Any) -> object:
    if name in _EMPTY_IS_NONE and value == "":
        return None
    if name in ("seq", "api_key_id", EVENT_TIME_MICROS, RECEIVED_AT_MICROS):
        return int(value)
    return value


def _where(conditions: Sequence[Condition]) -> str:
    clauses = []
    for condition in conditions:
        column = _identifier(condition.column)
        literals = [_literal(condition.column, value) for value in condition.values]
        if condition.op == "in":
            clauses.append(f"{column} IN ({', '.join(literals)})")
        else:
            clauses.append(f"{column} {condition.op} {literals[0]}")
    return "WHERE " + " AND ".join(clauses) if clauses else ""


def _literal(column: str, value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    if column in _TIME_COLUMNS:
        return f"parseDateTime64BestEffort({_quote(value)}, 6, 'UTC')"
    return _quote(value)


def _quote(text: str) -> str:
    """A ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _identifier(name: str) -> str:
    """A ClickHouse identifier in backquotes.

    Raises:
        InvalidQuery: a name with a backquote or control character.
    """
    if not name or any(char == "`" or ord(char) < 32 for char in name):
        raise InvalidQuery(
            f"{name!r} cannot name a ClickHouse database, table or cluster", field="url"
        )
    return f"`{name}`"
