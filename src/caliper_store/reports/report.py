"""What every report answers with, and the settings reports read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from caliper_store.config import Settings, same_named
from caliper_store.reports.params import ReportQuery
from caliper_store.storage import EventSource


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """The thresholds of the reports, from the settings of the same names."""

    session_gap_minutes: int
    inactive_days: int
    silent_after_minutes: int
    at_risk_activity_days: int
    at_risk_activity_percent_below: int
    at_risk_no_access_days: int
    at_risk_grade_percent_below: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ReportSettings:
        """The report thresholds of these settings."""
        return same_named(cls, settings)


@dataclass(frozen=True, slots=True)
class Report:
    """One report's answer: its rows (what the CSV holds), how it was computed, and summaries.

    ``as_of`` is when the newest event the store held at the time of the report was received:
    every event received up to then is counted.
    """

    name: str
    rows: list[dict[str, Any]]
    method: dict[str, Any]
    as_of: str | None
    summary: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The report as the API answers it."""
        return {
            "report": self.name,
            "asOf": self.as_of,
            "method": self.method,
            **self.summary,
            "rows": self.rows,
        }

    def to_json_bytes(self) -> bytes:
        """The JSON document, indented for people."""
        return orjson.dumps(self.as_json(), option=orjson.OPT_INDENT_2)


def method_of(query: ReportQuery, definitions: dict[str, str], **parameters: Any) -> dict[str, Any]:
    """A report's ``method``: the definitions it used and every parameter, defaults included."""
    used = {key: value for key, value in asdict(query).items() if value is not None}
    used.update(parameters)
    return {"definitions": definitions, "parameters": _camel(used)}


def _camel(values: dict[str, Any]) -> dict[str, Any]:
    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(part.title() for part in rest)

    return {camel(name): value for name, value in values.items()}


def as_of(snapshot: EventSource) -> str | None:
    """The ``asOf`` of a report read from this snapshot."""
    return snapshot.newest_received_at()
