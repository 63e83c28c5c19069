"""Reports: student activity, courses, grades, sessions, delivery health and students at risk.

Each report is computed from one consistent snapshot of the stored events, receipts and
quarantine (``Store.snapshot``), so it agrees with the raw events by construction.
"""

from caliper_store.reports.catalog import REPORTS, REPORTS_BY_NAME, ReportSpec
from caliper_store.reports.params import (
    MAX_DAYS,
    MAX_GAP_MINUTES,
    PARAMS_BY_NAME,
    REPORT_PARAMS,
    ReportParam,
    ReportQuery,
)
from caliper_store.reports.report import Report, ReportSettings
from caliper_store.reports.run import report_csv, report_spec, report_table, run_report

__all__ = [
    "MAX_DAYS",
    "MAX_GAP_MINUTES",
    "PARAMS_BY_NAME",
    "REPORTS",
    "REPORTS_BY_NAME",
    "REPORT_PARAMS",
    "Report",
    "ReportParam",
    "ReportQuery",
    "ReportSettings",
    "ReportSpec",
    "report_csv",
    "report_spec",
    "report_table",
    "run_report",
]
