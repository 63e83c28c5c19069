"""The OpenAPI 3.1 description of the whole HTTP API, served at ``/api/openapi.json``.

Written by hand next to the routes (a test checks that every route in ``ROUTES`` is here);
the filter parameters come from ``query.FILTER_FIELDS``, the same table the handlers read.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from zoneinfo import available_timezones

from starlette.requests import Request
from starlette.responses import Response

from caliper_store.query import EXPORT_FORMATS, FILTER_FIELDS, MEDIA_TYPES
from caliper_store.query.cursor import MAX_CURSOR_CHARS
from caliper_store.query.filters import ID_MAX, KEY_ID_MAX
from caliper_store.reports import MAX_DAYS, MAX_GAP_MINUTES, PARAMS_BY_NAME, REPORTS, ReportParam
from caliper_store.storage import AUDIT_ACTIONS
from caliper_store.web.reports import REPORT_FORMATS
from caliper_store.web.responses import json_response

PROBLEM = {"$ref": "#/components/schemas/Problem"}
NULLABLE_TEXT = {"type": ["string", "null"]}
TIME = {"type": "string", "format": "date-time", "examples": ["2024-03-01T10:00:00.000000Z"]}


def _problems(*statuses: int) -> dict[str, Any]:
    meaning = {
        400: "A parameter or the body is malformed; `field` names it.",
        401: "No API key, or an unknown or inactive one.",
        403: "The key lacks the scope this needs.",
        404: "Not found.",
        408: "The headers or the body came slower than the server's read timeouts.",
        409: "Conflict with what is stored.",
        413: "The body, its item count, its parsed size or an envelope field is past a limit; "
        "`field` names it.",
        415: "The body is not JSON.",
        422: "Unsupported Caliper version.",
        431: "The request line and headers are larger, or more, than the server reads.",
        503: "Overloaded or the database is unavailable; retry after `Retry-After` seconds.",
    }
    return {
        str(status): {
            "description": meaning[status],
            "content": {"application/problem+json": {"schema": PROBLEM}},
        }
        for status in statuses
    }


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _filter_parameters() -> list[dict[str, Any]]:
    parameters = []
    for spec in FILTER_FIELDS:
        one: dict[str, Any] = {"type": "string"}
        if spec.kind == "int":
            one = {"type": "integer", "minimum": 0, "maximum": spec.maximum}
        if spec.kind in ("since", "until"):
            one = {"type": "string", "description": "ISO 8601 time or date"}
        schema = {"type": "array", "items": one} if spec.is_multiple else one
        parameter = _query(spec.param, spec.help, schema)
        if spec.is_multiple:
            parameter.update(style="form", explode=True)
        parameters.append(parameter)
    return parameters


PAGE_PARAMETERS = [
    _query(
        "limit",
        "Events per page (setting default_page_events; at most max_page_events).",
        {"type": "integer", "minimum": 1},
    ),
    _query(
        "cursor",
        "The next_cursor of the previous page; filters and order must be the same.",
        {"type": "string", "maxLength": MAX_CURSOR_CHARS},
    ),
    _query(
        "order",
        "By event time: desc (newest first, the default) or asc; or received: by the time the "
        "store received each event, oldest first (incremental pulls; keep receivedUntil a "
        "minute behind now, as requests committed together may arrive out of order).",
        {"type": "string", "enum": ["desc", "asc", "received"]},
    ),
    _query(
        "raw",
        "Include each event's raw JSON exactly as it was sent.",
        {"type": "boolean", "default": False},
    ),
]
ITEM_ID = {
    "name": "item_id",
    "in": "path",
    "required": True,
    "description": "Not a whole number or past 64 bits: 400 naming item_id; no such item: 404.",
    "schema": {"type": "integer", "minimum": 0, "maximum": ID_MAX},
}
KEY: list[dict[str, list[str]]] = [{"apiKey": []}]
READ_NOTE = " Needs a key with the `read` (or `admin`) scope."
ADMIN_NOTE = " Needs a key with the `admin` scope."


def _schemas() -> dict[str, Any]:
    event_properties: dict[str, Any] = {
        "seq": {"type": "integer", "description": "Store-wide sequence number."},
        "event_id": {"type": "string"},
        "event_type": {"type": "string"},
        "action": {"type": "string"},
        "actor_id": {"type": "string"},
        "actor_type": NULLABLE_TEXT,
        "actor_external_id": NULLABLE_TEXT,
        "object_id": {"type": "string"},
        "object_type": NULLABLE_TEXT,
        "group_id": NULLABLE_TEXT,
        "membership_role": NULLABLE_TEXT,
        "session_id": NULLABLE_TEXT,
        "ed_app_id": NULLABLE_TEXT,
        "sensor": NULLABLE_TEXT,
        "api_key_id": {"type": "integer"},
        "receipt_id": {"type": "integer"},
        "caliper_version": {"type": "string", "enum": ["1.0", "1.1", "1.2"]},
        "is_extension": {"type": "boolean"},
        "has_derived_id": {"type": "boolean"},
        "event_time": TIME,
        "received_at": TIME,
        "raw": {"type": "object", "description": "The event exactly as it was sent (when asked)."},
    }
    reason = {
        "type": "object",
        "properties": {
            "code": {"type": "string"},
            "field": {"type": "string"},
            "message": {"type": "string"},
        },
    }
    return {
        "Problem": {
            "type": "object",
            "description": "RFC 7807 problem details.",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "field": {"type": "string"},
                "errors": {"type": "array", "items": reason},
            },
        },
        "Envelope": {
            "type": "object",
            "description": "A Caliper envelope {sensor, sendTime, dataVersion, data}, a bare "
            "event, or an array of events (not in strict mode).",
        },
        "IngestReceipt": {
            "type": "object",
            "properties": {
                "receipt": {"type": "integer"},
                "envelope": {"type": "boolean"},
                "stored": {"type": "integer"},
                "duplicates": {"type": "integer"},
                "quarantined": {"type": "integer"},
                "dropped": {"type": "integer", "description": "Events an ingest rule dropped."},
                "items": {"type": "array", "items": {"type": "object"}},
            },
        },
        "EndpointConfig": {
            "type": "object",
            "properties": {
                "caliperSupportedVersions": {"type": "array", "items": {"type": "string"}},
                "caliperMaximumPayloadSize": {"type": "integer"},
                "caliperSupportedExtensions": {"type": "array", "items": {"type": "string"}},
            },
        },
        "Reason": reason,
        "Event": {"type": "object", "properties": event_properties},
        "EventPage": {
            "type": "object",
            "properties": {
                "events": {"type": "array", "items": _ref("Event")},
                "next_cursor": {"type": ["string", "null"], "description": "null on the last page"},
            },
        },
        "Receipt": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "api_key_id": {"type": "integer"},
                "sensor": NULLABLE_TEXT,
                "send_time": {"type": ["string", "null"]},
                "data_version": NULLABLE_TEXT,
                "is_envelope": {"type": "boolean"},
                "received_at": TIME,
                "body_bytes": {"type": "integer"},
                "item_count": {"type": "integer"},
                "stored_count": {"type": "integer"},
                "duplicate_count": {"type": "integer"},
                "quarantined_count": {"type": "integer"},
            },
        },
        "StoredEvent": {
            "type": "object",
            "properties": {"event": _ref("Event"), "receipt": _ref("Receipt")},
        },
        "QuarantineItem": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "status": {"type": "string", "enum": ["held", "replayed", "discarded"]},
                "reason": {"type": "string"},
                "reasons": {"type": "array", "items": _ref("Reason")},
                "event_id": NULLABLE_TEXT,
                "caliper_version": NULLABLE_TEXT,
                "api_key_id": {"type": "integer"},
                "receipt_id": {"type": "integer"},
                "item_index": {"type": "integer"},
                "received_at": TIME,
                "resolved_at": {"type": ["string", "null"]},
                "raw": {"description": "The item exactly as it was sent (when asked)."},
            },
        },
        "QuarantinePage": {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": _ref("QuarantineItem")},
                "next_cursor": {"type": ["string", "null"]},
            },
        },
        "QuarantineDetail": {
            "allOf": [
                _ref("QuarantineItem"),
                {
                    "type": "object",
                    "properties": {
                        "receipt": _ref("Receipt"),
                        "audit": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "action": {"type": "string"},
                                    "actor": {"type": "string"},
                                    "at": TIME,
                                    "outcome": NULLABLE_TEXT,
                                    "event_id": NULLABLE_TEXT,
                                    "note": NULLABLE_TEXT,
                                },
                            },
                        },
                    },
                },
            ]
        },
        "ReplayOutcome": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "result": {
                    "type": "string",
                    "enum": ["stored", "duplicate", "still_invalid", "conflict"],
                },
                "event_id": NULLABLE_TEXT,
                "reasons": {"type": "array", "items": _ref("Reason")},
            },
        },
    }


# What the Sensor API takes: an envelope, or (not in strict mode) a bare event or array.
INGEST_BODY = {
    "anyOf": [
        _ref("Envelope"),
        {"type": "object", "description": "A bare event or entity (not in strict mode)."},
        {"type": "array", "description": "A bare array of items (not in strict mode)."},
    ]
}


def _ingest_paths() -> dict[str, Any]:
    post = {
        "summary": "Receive a Caliper envelope (Sensor API)",
        "description": "Answers 200 once every item is committed or quarantined; the body is "
        "empty unless `?receipt=1` or `Prefer: return=representation` asks for a receipt. "
        "Needs a key with the `ingest` scope.",
        "security": KEY,
        "parameters": [
            _query(
                "receipt",
                "Answer with a per-item receipt.",
                {"type": "string", "enum": ["1", "true", "yes", "0", "false", "no"]},
            )
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": INGEST_BODY}},
        },
        "responses": {
            "200": {
                "description": "Stored (or quarantined with reasons).",
                "content": {"application/json": {"schema": _ref("IngestReceipt")}},
            },
            **_problems(400, 401, 403, 408, 409, 413, 415, 422, 431, 503),
        },
    }
    get = {
        "summary": "The endpoint's configuration (Caliper 1.2 section 6)",
        "security": KEY,
        "responses": {
            "200": _json(_ref("EndpointConfig"), "Supported versions and limits."),
            **_problems(401),
        },
    }
    return {
        "/caliper": {"post": post, "get": get},
        "/caliper/message": {
            "post": {**post, "summary": "Alias of POST /caliper (1EdTech certification suite)"},
            "get": {**get, "summary": "Alias of GET /caliper"},
        },
        "/caliper/validate": {
            "post": {
                "summary": "Dry run: every ingest check, nothing stored",
                "security": KEY,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": INGEST_BODY}},
                },
                "responses": {
                    "200": _json({"type": "object"}, "What would happen to each item."),
                    **_problems(400, 401, 403, 408, 413, 415, 422, 431, 503),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness: the process serves HTTP",
                "responses": {"200": _json({"type": "object"}, "Up.")},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: the database answers and takes writes",
                "responses": {"200": _json({"type": "object"}, "Ready."), **_problems(503)},
            }
        },
    }


def _read_paths() -> dict[str, Any]:
    export_content = {
        MEDIA_TYPES[name]: {"schema": {"type": "string", "format": "binary"}}
        for name in EXPORT_FORMATS
    }
    return {
        "/api/events": {
            "get": {
                "summary": "Search events",
                "description": "Filters combine with AND; a repeated filter lists alternatives "
                "(OR). Cursor pages are stable while events keep arriving." + READ_NOTE,
                "security": KEY,
                "parameters": [*_filter_parameters(), *PAGE_PARAMETERS],
                "responses": {
                    "200": _json(_ref("EventPage"), "One page of events."),
                    **_problems(400, 401, 403, 503),
                },
            }
        },
        "/api/events/{event_id}": {
            "get": {
                "summary": "One event, raw as sent, with its receipt",
                "description": "The id as sent or as stored (URL-encoded)." + READ_NOTE,
                "security": KEY,
                "parameters": [
                    {
                        "name": "event_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": _json(_ref("StoredEvent"), "The event."),
                    **_problems(400, 401, 403, 404, 503),
                },
            }
        },
        "/api/export": {
            "get": {
                "summary": "Export matching events as NDJSON, CSV or Parquet, streamed",
                "description": "Same filters as /api/events; every match, oldest first. A failure "
                "before the first byte answers a problem; a later one ends the connection without "
                "the final chunk, so the body is incomplete, never a short file that looks whole."
                + READ_NOTE,
                "security": KEY,
                "parameters": [
                    *_filter_parameters(),
                    _query(
                        "format",
                        "File format.",
                        {"type": "string", "enum": list(EXPORT_FORMATS), "default": "ndjson"},
                    ),
                    _query(
                        "raw", "Include the raw event column.", {"type": "boolean", "default": True}
                    ),
                    _query(
                        "order",
                        "asc: by event time; received: by received time (incremental pulls).",
                        {"type": "string", "enum": ["asc", "received"], "default": "asc"},
                    ),
                ],
                "responses": {
                    "200": {"description": "The file.", "content": export_content},
                    **_problems(400, 401, 403, 503),
                },
            }
        },
    }


def _report_parameter(spec: ReportParam, *, is_required: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "minLength": 1 if is_required else 0}
    # An empty value is no value (forms send empty fields), so each kind also admits "".
    if spec.kind == "time":
        schema = {"type": "string", "anyOf": [{"format": "date-time"}, {"maxLength": 0}]}
    elif spec.kind == "zone":
        schema = {"type": "string", "enum": ["", *sorted(available_timezones())]}
    elif spec.kind == "minutes":
        schema = {"type": "integer", "minimum": 1, "maximum": MAX_GAP_MINUTES}
    elif spec.kind == "days":
        schema = {"type": "integer", "minimum": 1, "maximum": MAX_DAYS}
    parameter = _query(spec.param, spec.help, schema)
    parameter["required"] = is_required
    return parameter


REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["report", "asOf", "method", "rows"],
    "properties": {
        "report": {"type": "string"},
        "asOf": {
            **NULLABLE_TEXT,
            "description": "When the newest event the store held was received: every event "
            "received up to then is counted.",
        },
        "method": {
            "type": "object",
            "description": "The definitions used and every parameter, defaults included.",
        },
        "rows": {"type": "array", "items": {"type": "object"}},
    },
    "additionalProperties": True,
}


def _report_paths() -> dict[str, Any]:
    """One path per report, each with the parameters it takes (``web.app`` routes them so)."""
    paths: dict[str, Any] = {}
    for spec in REPORTS:
        parameters = [
            _report_parameter(PARAMS_BY_NAME[param], is_required=param in spec.required)
            for param in spec.params
        ]
        parameters.append(
            _query(
                "format",
                "json (the default) or csv: the rows, nested values as JSON text.",
                {"type": "string", "enum": ["", *REPORT_FORMATS], "default": "json"},
            )
        )
        paths[f"/api/reports/{spec.name}"] = {
            "get": {
                "summary": f"Report: {spec.name}",
                "description": spec.help + " Computed from one consistent snapshot of the store. "
                "Times are between 1970 and 9998, and since must be before until; a parameter "
                "the report does not take is refused with 400 naming it; an unknown course is an "
                "empty report." + READ_NOTE,
                "security": KEY,
                "parameters": parameters,
                "responses": {
                    "200": {
                        "description": "The report.",
                        "content": {
                            "application/json": {"schema": REPORT_SCHEMA},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    **_problems(400, 401, 403, 503),
                },
            }
        }
    return paths


def _quarantine_paths() -> dict[str, Any]:
    return {
        "/api/quarantine": {
            "get": {
                "summary": "List quarantined items, newest first",
                "description": "Held items unless `status` asks for others." + READ_NOTE,
                "security": KEY,
                "parameters": [
                    _query(
                        "status",
                        "held (default), replayed, discarded or any; repeatable.",
                        {"type": "array", "items": {"type": "string"}},
                    ),
                    _query(
                        "reason",
                        "Reason code, e.g. id_conflict; repeatable.",
                        {"type": "array", "items": {"type": "string"}},
                    ),
                    _query(
                        "keyId",
                        "Id of the key that sent the item; repeatable.",
                        {
                            "type": "array",
                            "items": {"type": "integer", "minimum": 0, "maximum": KEY_ID_MAX},
                        },
                    ),
                    _query("receivedSince", "Received at or after this time.", {"type": "string"}),
                    _query("receivedUntil", "Received before this time.", {"type": "string"}),
                    _query("limit", "Items per page.", {"type": "integer", "minimum": 1}),
                    _query(
                        "cursor",
                        "The next_cursor of the previous page.",
                        {"type": "string", "maxLength": MAX_CURSOR_CHARS},
                    ),
                    _query(
                        "raw",
                        "Include each item as it was sent.",
                        {"type": "boolean", "default": False},
                    ),
                ],
                "responses": {
                    "200": _json(_ref("QuarantinePage"), "One page of items."),
                    **_problems(400, 401, 403, 503),
                },
            }
        },
        "/api/quarantine/{item_id}": {
            "get": {
                "summary": "One quarantined item with its receipt and audit trail",
                "description": READ_NOTE.strip(),
                "security": KEY,
                "parameters": [ITEM_ID],
                "responses": {
                    "200": _json(_ref("QuarantineDetail"), "The item."),
                    **_problems(400, 401, 403, 404, 503),
                },
            }
        },
        "/api/quarantine/{item_id}/replay": {
            "post": {
                "summary": "Run today's ingest rules on a held item; store it if it passes",
                "description": "Exactly once: the event is stored and the item leaves quarantine "
                "in one transaction, with an audit row." + ADMIN_NOTE,
                "security": KEY,
                "parameters": [ITEM_ID],
                "responses": {
                    "200": _json(_ref("ReplayOutcome"), "What the replay did."),
                    **_problems(400, 401, 403, 404, 409, 503),
                },
            }
        },
        "/api/quarantine/{item_id}/discard": {
            "post": {
                "summary": "Discard a held item for good, with an audit row",
                "description": 'Optional body `{"note": "why"}`.' + ADMIN_NOTE,
                "security": KEY,
                "parameters": [ITEM_ID],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "properties": {"note": {"type": "string"}}}
                        }
                    },
                },
                "responses": {
                    "200": _json({"type": "object"}, "Discarded."),
                    **_problems(400, 401, 403, 404, 409, 503),
                },
            }
        },
        **_privacy_paths(),
        "/api/openapi.json": {
            "get": {
                "summary": "This description",
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1 document.")},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (a read or admin key); see docs/operations.md",
                "responses": {
                    "200": {
                        "description": "The Prometheus text exposition format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_problems(400, 401, 403, 503),
                },
            }
        },
    }


PERSON_ID = {
    "name": "person_id",
    "in": "path",
    "required": True,
    "description": "An actor id, an external or SIS id, or a pseudonym (URL-encoded).",
    "schema": {"type": "string", "minLength": 1},
}


def _privacy_paths() -> dict[str, Any]:
    traces = {
        "type": "object",
        "properties": {
            "given": {"type": "string"},
            "idsUsed": {"type": "array", "items": {"type": "string"}},
            "actorIds": {"type": "array", "items": {"type": "string"}},
            "externalIds": {"type": "array", "items": {"type": "string"}},
            "logins": {"type": "array", "items": {"type": "string"}},
            "courses": {"type": "integer"},
            "events": {"type": "integer"},
            "quarantined": {"type": "integer"},
            "entities": {"type": "integer"},
            "loginPairs": {"type": "integer"},
            "dryRun": {"type": "boolean"},
            "personHmac": {"type": "string"},
        },
    }
    entry = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "at": TIME,
            "actor": {"type": "string"},
            "action": {"type": "string", "enum": list(AUDIT_ACTIONS)},
            "target": NULLABLE_TEXT,
            "rows": {"type": ["integer", "null"]},
            "detail": {"type": ["object", "null"]},
        },
    }
    return {
        "/api/persons/{person_id}/export": {
            "get": {
                "summary": "Everything the store holds that names one person, as NDJSON",
                "description": "One line per event (as stored), quarantined item, entity and "
                "login. The person's ids are linked through the events (actor id, external "
                "ids) and the logins actors were seen with." + ADMIN_NOTE,
                "security": KEY,
                "parameters": [PERSON_ID],
                "responses": {
                    "200": {
                        "description": "NDJSON lines.",
                        "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
                    },
                    **_problems(400, 401, 403, 404, 503),
                },
            }
        },
        "/api/persons/{person_id}/erase": {
            "post": {
                "summary": "Erase everything that names one person (a dry run unless told)",
                "description": "Events, quarantined items, entities and the rollups; one audit "
                "row naming the person only by an HMAC. Erases only with `dryRun=false`."
                + ADMIN_NOTE,
                "security": KEY,
                "parameters": [
                    PERSON_ID,
                    _query(
                        "dryRun",
                        "true (default): only count; false: erase.",
                        {"type": "boolean", "default": True},
                    ),
                ],
                "responses": {
                    "200": _json(traces, "What was (or would be) erased."),
                    **_problems(400, 401, 403, 404, 503),
                },
            }
        },
        "/api/audit": {
            "get": {
                "summary": "The audit log of administrative actions, newest first",
                "description": "Keys, rules versions, purges, erasures, quarantine decisions."
                + ADMIN_NOTE,
                "security": KEY,
                "parameters": [
                    _query(
                        "limit",
                        "Entries per page.",
                        {"type": "integer", "minimum": 1, "maximum": 1000},
                    ),
                    _query(
                        "before",
                        "The next_before of the previous page.",
                        {"type": "integer", "minimum": 1},
                    ),
                    _query(
                        "action",
                        "Only this action.",
                        {"type": "string", "enum": list(AUDIT_ACTIONS)},
                    ),
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "entries": {"type": "array", "items": entry},
                                "next_before": {"type": ["integer", "null"]},
                            },
                        },
                        "One page of entries.",
                    ),
                    **_problems(400, 401, 403, 503),
                },
            }
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of every route."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "caliper-store",
            "version": "1",
            "description": "An IMS Caliper event store: the Caliper Sensor API endpoint, and "
            "the API that gets events, exports, reports and quarantined items back out.",
        },
        "paths": {
            **_ingest_paths(),
            **_read_paths(),
            **_quarantine_paths(),
            **_report_paths(),
        },
        "components": {
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key from `caliper-store keys create`, as "
                    "`Authorization: Bearer <key>` (or the bare key, as Moodle sends it). Scopes: "
                    "ingest (send events), read (search, export, reports, list quarantine), "
                    "admin (replay and discard quarantined items, a person's export and erase, the "
                    "audit log; implies read).",
                }
            },
            "schemas": _schemas(),
        },
    }


async def openapi_json(request: Request) -> Response:
    """Serve the OpenAPI document; it describes, it grants nothing, so it needs no key."""
    return json_response(openapi_document())
