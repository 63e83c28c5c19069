"""Settings: every knob named, defaulted and explained once; read from flags, environment, file.

Precedence is flags > ``CALIPER_STORE_*`` environment variables > TOML file > defaults.
Only entry points (the CLI, the uvicorn factory) call :func:`load_settings`; everything else
receives the values it needs as arguments.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from caliper_store.errors import ConfigurationError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

ENV_PREFIX = "CALIPER_STORE_"
CONFIG_FILE_ENV = ENV_PREFIX + "CONFIG"
# orjson, which serializes every stored item, refuses more than 254 levels of nesting; an item
# deeper than that could be kept only in quarantine, so no setting may admit it.
MAX_PARSER_DEPTH = 254
MAX_ZSTD_LEVEL = 22
MAX_PORT = 65_535
LOG_FORMATS = ("auto", "json", "text")


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    """Every setting of the store, with its default and unit in its name."""

    database_url: str = _setting(
        "sqlite:///caliper.db",
        "Where events are kept: sqlite:///relative.db, sqlite:////absolute.db or postgresql://...",
    )
    host: str = _setting("127.0.0.1", "Interface the HTTP server listens on.")
    port: int = _setting(8080, "TCP port the HTTP server listens on.")
    workers: int = _setting(1, "Number of server processes (uvicorn workers).")
    log_level: str = _setting("info", "Logging level: debug, info, warning, error.")
    log_format: str = _setting(
        "auto",
        "Log lines as json (one object a line), text, or auto: text on a terminal, else json.",
    )
    metrics_port: int = _setting(
        0,
        "Also serve GET /metrics without a key on this port of 127.0.0.1 only, for a local "
        "Prometheus agent (0: off; /metrics on the main port always needs a read or admin key).",
    )
    shutdown_timeout_s: int = _setting(
        30,
        "On SIGTERM, seconds to finish the requests already read (each answered after its "
        "commit) before the remaining connections are closed.",
    )
    max_body_bytes: int = _setting(
        16 * 1024 * 1024, "Largest request body accepted; larger bodies get 413."
    )
    max_items_per_envelope: int = _setting(
        10_000, "Most items (events and entities) in one envelope; more gets 413."
    )
    max_nesting_depth: int = _setting(
        64, "Deepest JSON nesting accepted in one item; deeper items go to quarantine."
    )
    max_string_chars: int = _setting(
        1_048_576, "Longest string value accepted in one item; longer items go to quarantine."
    )
    max_id_chars: int = _setting(
        2_048,
        "Longest identifier (event, actor, object, group ids) accepted; longer is quarantined.",
    )
    max_request_memory_bytes: int = _setting(
        256 * 1024 * 1024,
        "Most memory one request's parsed JSON may take, bounded before it is parsed from the "
        "body's length and its count of JSON separators (each value costs at most about 80 "
        "bytes once parsed); more gets 413.",
    )
    max_inflight_bytes: int = _setting(
        512 * 1024 * 1024,
        "Most bytes all ingest requests of one server process may hold at once: bodies as they "
        "are read, then the bound on their parsed memory until they are answered. Beyond it "
        "ingest answers 503 with Retry-After.",
    )
    max_header_bytes: int = _setting(
        32 * 1024,
        "Largest request line plus headers accepted (the URL and each header line); more gets 431 "
        "and the connection closes, and the server stops reading at the limit.",
    )
    max_header_count: int = _setting(
        100, "Most header lines one request may carry; more gets 431 and the connection closes."
    )
    header_timeout_s: int = _setting(
        10,
        "Seconds from a connection's opening (or, on a kept-alive connection, the end of the "
        "previous response) to the end of a request's headers; a connection that sends nothing "
        "or sends headers slowly gets 408 and is closed.",
    )
    request_read_timeout_s: int = _setting(
        60,
        "Seconds from the end of a request's headers to the end of its body; a slower upload "
        "gets 408 (unless an answer has already started) and the connection is closed.",
    )
    keep_alive_timeout_s: int = _setting(
        5,
        "Seconds an idle keep-alive connection stays open between two requests (never more "
        "than header_timeout_s).",
    )
    max_connections: int = _setting(
        1_000,
        "Most connections (and requests in progress) one server process serves at once; a "
        "request that arrives beyond it gets 503 and its connection is closed.",
    )
    writer_queue_events: int = _setting(
        50_000,
        "Most events waiting for the group-commit writer; beyond it ingest answers 503.",
    )
    writer_batch_events: int = _setting(5_000, "Most events the writer commits in one transaction.")
    writer_process: str = _setting(
        "auto",
        "Where the group commit runs: 'process' (a child process with a core and GIL of its "
        "own), 'thread' (a thread of the server process), or 'auto' (process on SQLite, thread "
        "on PostgreSQL).",
    )
    retry_after_s: int = _setting(
        1, "Seconds a client is told to wait (Retry-After) when the store is overloaded."
    )
    sqlite_synchronous: str = _setting(
        "FULL", "SQLite PRAGMA synchronous: FULL survives power loss, NORMAL only process crashes."
    )
    sqlite_writer_cache_mib: int = _setting(
        64,
        "Page cache of the SQLite writer connection, in MiB. Each commit touches pages all over "
        "the filter indexes; a cache too small for them spills to the WAL mid-transaction.",
    )
    sqlite_segment_events: int = _setting(
        200_000,
        "Events in each SQLite arrival segment, a table with its own indexes; the writer starts "
        "a new one when the newest is full, so its cost stays that of one segment however many "
        "events are stored. Reads merge the segments (one index seek each).",
    )
    write_lock_timeout_ms: int = _setting(
        10_000,
        "How long the writer waits for a database lock held by someone else before the batch "
        "fails with 503 (SQLite busy_timeout, PostgreSQL lock_timeout).",
    )
    raw_compression_level: int = _setting(
        3,
        "zstd level raw events are compressed at (1-22). With a trained dictionary level 3 "
        "keeps a 2,000-byte Learn event in about 180 bytes at 6 µs; 19 saves 10% more at 1 ms.",
    )
    raw_dictionary_bytes: int = _setting(
        65_536,
        "Size of each zstd dictionary trained on the store's own events, in bytes.",
    )
    raw_dictionary_train_events: int = _setting(
        5_000,
        "Events a writer compresses before it trains its first dictionary, and the window over "
        "which it measures whether the dictionary still fits the events arriving.",
    )
    raw_dictionary_retrain_percent: int = _setting(
        125,
        "A new dictionary is trained when a window's compressed size reaches this percentage "
        "of what the dictionary achieved on the events it was trained on.",
    )
    db_pool_size: int = _setting(
        4, "PostgreSQL connections per process for reads (the writer holds its own)."
    )
    default_page_events: int = _setting(
        100, "Events in one page of GET /api/events (and `caliper-store events`) by default."
    )
    max_page_events: int = _setting(
        1_000, "Most events one page may hold; a larger limit is refused with 400."
    )
    max_filter_values: int = _setting(
        100, "Most values one filter may list (repeated parameters); more is refused with 400."
    )
    query_timeout_ms: int = _setting(
        30_000,
        "Milliseconds one read of events or quarantine may run before it is stopped: each page "
        "of GET /api/events and `caliper-store events`, each count, event lookup and quarantine "
        "page or lookup, and each batch of an export (every batch is its own query, so a long "
        "export is not cut for its length). A read past it answers 503 (query-timeout) with "
        "Retry-After, or a one-line error in the CLI. The writer's commits, key checks and "
        "`stats` are not bounded.",
    )
    max_read_bytes: int = _setting(
        64 * 1024 * 1024,
        "Most bytes of raw events one read holds at once: a page of GET /api/events (and "
        "`caliper-store events`), which then ends early with a cursor to the rest; an export "
        "batch; a Parquet row group. One raw event may be as large as a body, so a page of "
        "max_page_events could otherwise hold gigabytes.",
    )
    export_batch_events: int = _setting(
        5_000,
        "Events an export reads from the database at a time; with the row group size it bounds "
        "an export's memory, whatever the number of events.",
    )
    export_row_group_events: int = _setting(
        20_000,
        "Events per Parquet row group in exports (larger groups scan faster, use more memory).",
    )
    export_file_events: int = _setting(
        1_000_000,
        "Most events in one file of a date-partitioned export; a bigger day gets more part files.",
    )

    session_gap_minutes: int = _setting(
        30,
        "Reports: a gap between two events of a person in a course longer than this starts a "
        "new visit; time active sums the gaps up to it (Moodle block_dedication's method).",
    )
    inactive_days: int = _setting(
        7, "Reports: a student with no event in the course for this many days is inactive."
    )
    silent_after_minutes: int = _setting(
        60,
        "Delivery report: a key that sent nothing for this many minutes, while it sent in the "
        "same window the day before, is flagged silent.",
    )
    at_risk_activity_days: int = _setting(
        7, "At-risk report: the recent window whose activity is compared with the course's."
    )
    at_risk_activity_percent_below: int = _setting(
        20,
        "At-risk report: activity in the recent window this many percent below the course "
        "average fires the activity rule (Blackboard Retention Center's default).",
    )
    at_risk_no_access_days: int = _setting(
        5, "At-risk report: no event in the course for more than this many days fires a rule."
    )
    at_risk_grade_percent_below: int = _setting(
        25,
        "At-risk report: a student's latest grades this many percent below the class average "
        "fire the grade rule.",
    )

    rules_file: str = _setting(
        "",
        "TOML file of ingest rules (drop, redact, truncate_ip, pseudonymize) applied to every "
        "item before it is stored; empty: none. A broken file stops the server from starting.",
    )
    pseudonym_key_file: str = _setting(
        "",
        "File holding the secret that pseudonyms are HMACs under (at least 16 bytes; keep it "
        "out of the database and its backups). Required when a rule pseudonymizes.",
    )
    pseudonym_key: str = _setting(
        "",
        "The pseudonym secret itself, for deployments that pass secrets in the environment "
        "(CALIPER_STORE_PSEUDONYM_KEY); pseudonym_key_file wins when both are set.",
    )
    retention_events_days: int = _setting(
        0, "Purge removes events whose eventTime is older than this many days; 0 keeps all."
    )
    retention_quarantine_days: int = _setting(
        0, "Purge removes quarantined items received more than this many days ago; 0 keeps all."
    )
    retention_receipts_days: int = _setting(
        0,
        "Purge removes receipts received more than this many days ago (a receipt stays while "
        "an event or quarantined item of it is kept); 0 keeps all.",
    )
    purge_every_hours: int = _setting(
        24,
        "How often `serve` runs the purge when a retention is set; 0: only `caliper-store "
        "purge` removes anything.",
    )
    purge_batch_events: int = _setting(
        2_000,
        "Most rows one purge or erase transaction removes: each holds the write lock briefly.",
    )
    purge_batch_ms: int = _setting(
        50,
        "A purge or erase sizes each transaction from the last one's pace to hold the write "
        "lock about this long (at most `purge_batch_events` rows), so ingest waits at most "
        "about this long at a time; 0: always `purge_batch_events` rows.",
    )

    forward_in_serve: bool = _setting(
        True,
        "Whether `serve` forwards to the destinations of `caliper-store forward add` (one "
        "process per database does, by a lease); off when `caliper-store forward run` does.",
    )
    forward_poll_interval_ms: int = _setting(
        500, "How often a caught-up destination looks for new events."
    )
    forward_lease_s: int = _setting(
        30,
        "How long the forwarding lease lasts unrenewed: after a forwarder dies, another takes "
        "over within this time.",
    )
    forward_timeout_s: int = _setting(30, "Timeout of one delivery to a destination.")
    forward_concurrency: int = _setting(
        1,
        "Envelopes in flight at once to each destination. 1 delivers in stored order; more "
        "keeps a busy destination fed (each event still once), but the events of one batch "
        "may arrive out of order.",
    )

    session_secret: str = _setting(
        "",
        "Secret that signs dashboard session cookies (keep it out of the database and logs). "
        "Empty: `serve` makes a random one at each start, so sessions end when the server "
        "restarts; set it (for example from a file, via CALIPER_STORE_SESSION_SECRET) to keep "
        "them, and with several servers behind one address.",
    )
    session_max_age_hours: int = _setting(
        12, "Hours a dashboard login lasts before the key must be given again."
    )

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict fit to print: passwords in URLs are masked."""
        shown = dataclasses.asdict(self)
        shown["database_url"] = redact_url(self.database_url)
        shown["session_secret"] = "***" if self.session_secret else ""
        shown["pseudonym_key"] = "***" if self.pseudonym_key else ""
        return shown


SETTING_FIELDS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in fields(Settings)}

_Limits = TypeVar("_Limits", bound="DataclassInstance")


def same_named(cls: type[_Limits], settings: Settings, **given: Any) -> _Limits:
    """A dataclass of limits built from the settings of the same names (``given`` aside).

    Each part of the code takes only the limits it enforces; naming its fields after the
    settings means a new limit is added in two places, not three.
    """
    values = {
        item.name: getattr(settings, item.name) for item in fields(cls) if item.name not in given
    }
    return cls(**values, **given)


def redact_url(url: str) -> str:
    """Mask the password of a database URL so it can be shown or logged."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _cast(name: str, raw: object) -> object:
    target = SETTING_FIELDS[name].type
    try:
        if target == "int":
            if isinstance(raw, bool):
                raise ValueError("a boolean is not a number")
            return int(str(raw).replace("_", ""))
        if target == "bool":
            if isinstance(raw, bool):
                return raw
            lowered = str(raw).strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        return str(raw)
    except ValueError as error:
        raise ConfigurationError(
            f"setting {name!r}: cannot read {raw!r} as {target} ({error})", field=name
        ) from error


def _validate(settings: Settings) -> None:
    positive = [
        "port",
        "workers",
        "max_body_bytes",
        "max_items_per_envelope",
        "max_nesting_depth",
        "max_string_chars",
        "max_id_chars",
        "max_request_memory_bytes",
        "max_inflight_bytes",
        "max_header_bytes",
        "max_header_count",
        "header_timeout_s",
        "request_read_timeout_s",
        "keep_alive_timeout_s",
        "max_connections",
        "writer_queue_events",
        "writer_batch_events",
        "retry_after_s",
        "db_pool_size",
        "raw_dictionary_bytes",
        "raw_dictionary_train_events",
        "write_lock_timeout_ms",
        "sqlite_writer_cache_mib",
        "sqlite_segment_events",
        "default_page_events",
        "max_page_events",
        "max_filter_values",
        "query_timeout_ms",
        "max_read_bytes",
        "export_batch_events",
        "export_row_group_events",
        "export_file_events",
        "session_gap_minutes",
        "inactive_days",
        "silent_after_minutes",
        "at_risk_activity_days",
        "at_risk_no_access_days",
        "session_max_age_hours",
        "purge_batch_events",
        "shutdown_timeout_s",
    ]
    for name in positive:
        if getattr(settings, name) <= 0:
            raise ConfigurationError(f"setting {name!r} must be positive", field=name)
    if settings.writer_batch_events > settings.writer_queue_events:
        raise ConfigurationError(
            "setting 'writer_batch_events' cannot exceed 'writer_queue_events'",
            field="writer_batch_events",
        )
    if settings.max_items_per_envelope > settings.writer_queue_events:
        raise ConfigurationError(
            "setting 'max_items_per_envelope' cannot exceed 'writer_queue_events': "
            "a full envelope must fit in the writer queue",
            field="max_items_per_envelope",
        )
    if not 1 <= settings.raw_compression_level <= MAX_ZSTD_LEVEL:
        raise ConfigurationError(
            f"setting 'raw_compression_level' must be between 1 and {MAX_ZSTD_LEVEL}",
            field="raw_compression_level",
        )
    if settings.raw_dictionary_retrain_percent <= 100:
        raise ConfigurationError(
            "setting 'raw_dictionary_retrain_percent' must be above 100",
            field="raw_dictionary_retrain_percent",
        )
    for name in (
        "retention_events_days",
        "retention_quarantine_days",
        "retention_receipts_days",
        "purge_every_hours",
        "purge_batch_ms",
    ):
        if getattr(settings, name) < 0:
            raise ConfigurationError(f"setting {name!r} cannot be negative (0: off)", field=name)
    for name in (
        "forward_poll_interval_ms",
        "forward_lease_s",
        "forward_timeout_s",
        "forward_concurrency",
    ):
        if getattr(settings, name) < 1:
            raise ConfigurationError(f"setting {name!r} must be positive", field=name)
    for name in ("at_risk_activity_percent_below", "at_risk_grade_percent_below"):
        if not 0 < getattr(settings, name) < 100:
            raise ConfigurationError(f"setting {name!r} must be between 1 and 99", field=name)
    if settings.max_nesting_depth > MAX_PARSER_DEPTH:
        raise ConfigurationError(
            f"setting 'max_nesting_depth' cannot exceed {MAX_PARSER_DEPTH}: deeper items could "
            "not be serialized to be checked",
            field="max_nesting_depth",
        )
    if settings.max_request_memory_bytes > settings.max_inflight_bytes:
        raise ConfigurationError(
            "setting 'max_request_memory_bytes' cannot exceed 'max_inflight_bytes': "
            "a request at the limit must fit in the in-flight budget",
            field="max_request_memory_bytes",
        )
    if settings.default_page_events > settings.max_page_events:
        raise ConfigurationError(
            "setting 'default_page_events' cannot exceed 'max_page_events'",
            field="default_page_events",
        )
    if settings.log_format not in LOG_FORMATS:
        raise ConfigurationError(
            "setting 'log_format' must be auto, json or text", field="log_format"
        )
    if not 0 <= settings.metrics_port <= MAX_PORT:
        raise ConfigurationError(
            f"setting 'metrics_port' must be between 0 (off) and {MAX_PORT}", field="metrics_port"
        )
    if settings.writer_process not in ("auto", "process", "thread"):
        raise ConfigurationError(
            "setting 'writer_process' must be auto, process or thread", field="writer_process"
        )
    if settings.sqlite_synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise ConfigurationError(
            "setting 'sqlite_synchronous' must be OFF, NORMAL, FULL or EXTRA",
            field="sqlite_synchronous",
        )
    scheme = settings.database_url.split(":", 1)[0]
    if scheme not in ("sqlite", "postgresql", "postgres", "postgresql+psycopg"):
        raise ConfigurationError(
            f"setting 'database_url': unknown scheme {scheme!r} (use sqlite:/// or postgresql://)",
            field="database_url",
        )


def load_settings(
    flags: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> Settings:
    """Build the settings from flags, environment and an optional TOML file, then validate.

    Args:
        flags: values given on the command line; ``None`` values mean "not given".
        environ: the process environment (``CALIPER_STORE_<NAME>`` variables are read).
        path: a TOML file of ``name = value`` lines; defaults to ``$CALIPER_STORE_CONFIG``.

    Raises:
        ConfigurationError: naming the setting that is unknown or cannot be read.
    """
    settings, _ = resolve_settings(flags, environ, path)
    return settings


def resolve_settings(
    flags: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> tuple[Settings, dict[str, str]]:
    """The settings, as :func:`load_settings` builds them, and where each came from.

    Each source is ``default``, ``file PATH``, ``environment NAME`` or ``flag``, the last one
    that set it (flags win over the environment, which wins over the file).
    """
    environ = environ or {}
    values: dict[str, object] = {}
    sources: dict[str, str] = dict.fromkeys(SETTING_FIELDS, "default")
    file_path = path or (Path(environ[CONFIG_FILE_ENV]) if CONFIG_FILE_ENV in environ else None)
    if file_path is not None:
        try:
            from_file = tomllib.loads(file_path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigurationError(f"cannot read settings file {file_path}: {error}") from error
        for name, raw in from_file.items():
            if name not in SETTING_FIELDS:
                raise ConfigurationError(f"{file_path}: unknown setting {name!r}", field=name)
            values[name] = _cast(name, raw)
            sources[name] = f"file {file_path}"
    for name in SETTING_FIELDS:
        env_name = ENV_PREFIX + name.upper()
        if env_name in environ:
            values[name] = _cast(name, environ[env_name])
            sources[name] = f"environment {env_name}"
    # CALIPER_STORE_DATABASE is the documented short name for the database URL.
    if ENV_PREFIX + "DATABASE" in environ and ENV_PREFIX + "DATABASE_URL" not in environ:
        values["database_url"] = environ[ENV_PREFIX + "DATABASE"]
        sources["database_url"] = f"environment {ENV_PREFIX}DATABASE"
    for name, raw in (flags or {}).items():
        if raw is None:
            continue
        if name not in SETTING_FIELDS:
            raise ConfigurationError(f"unknown setting {name!r}", field=name)
        values[name] = _cast(name, raw)
        sources[name] = "flag"
    settings = Settings(**values)  # type: ignore[arg-type]  # values were cast per field above
    _validate(settings)
    return settings, sources


def settings_from_environment(
    flags: Mapping[str, object] | None = None, path: Path | None = None
) -> Settings:
    """Settings for an entry point: the process environment, an optional file, and flags."""
    return load_settings(flags, os.environ, path)


def with_session_secret(settings: Settings) -> Settings:
    """The settings with a session secret: the one set, or a new random one for this start.

    One is made before any worker starts, so every worker of one server signs alike.
    """
    if settings.session_secret:
        return settings
    return dataclasses.replace(settings, session_secret=secrets.token_urlsafe(32))


def export_to_environment(settings: Settings) -> None:
    """Put resolved settings into this process's environment, for worker processes it spawns."""
    for name in SETTING_FIELDS:
        os.environ[ENV_PREFIX + name.upper()] = str(getattr(settings, name))
