"""Query: event search with cursor pagination, quarantine listing, export (NDJSON, CSV, Parquet)."""

from caliper_store.query.events import (
    EventQuery,
    Page,
    QueryLimits,
    event_json,
    find_event,
    page_json,
    parse_event_query,
    search_page,
)
from caliper_store.query.export import (
    ExportOptions,
    ExportSummary,
    export_partitioned,
    export_to_stream,
    parse_export_request,
    parse_format,
    stream_export,
)
from caliper_store.query.filters import FILTER_FIELDS, EventFilter, FilterField, build_filter
from caliper_store.query.formats import EXPORT_FORMATS, MEDIA_TYPES, SUFFIXES, ExportFormat
from caliper_store.query.quarantine import (
    QUARANTINE_PARAMS,
    build_quarantine_filter,
    check_item_id,
    discard_items,
    parse_item_id,
    parse_quarantine_query,
    quarantine_page,
    quarantine_page_json,
    show_item,
)

__all__ = [
    "EXPORT_FORMATS",
    "FILTER_FIELDS",
    "MEDIA_TYPES",
    "QUARANTINE_PARAMS",
    "SUFFIXES",
    "EventFilter",
    "EventQuery",
    "ExportFormat",
    "ExportOptions",
    "ExportSummary",
    "FilterField",
    "Page",
    "QueryLimits",
    "build_filter",
    "build_quarantine_filter",
    "check_item_id",
    "discard_items",
    "event_json",
    "export_partitioned",
    "export_to_stream",
    "find_event",
    "page_json",
    "parse_event_query",
    "parse_export_request",
    "parse_format",
    "parse_item_id",
    "parse_quarantine_query",
    "quarantine_page",
    "quarantine_page_json",
    "search_page",
    "show_item",
    "stream_export",
]
