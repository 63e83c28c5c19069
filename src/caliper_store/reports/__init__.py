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
from caliper_store.reports.rollups import (
    MAX_SHOWN_DIFFERENCES,
    Difference,
    fill_group_names,
    verify_rollups,
)
from caliper_store.reports.run import (
    SOURCE_REPORTS,
    report_csv,
    report_spec,
    report_table,
    run_report,
    run_report_on,
    run_reports,
)

__all__ = [
    "MAX_DAYS",
    "MAX_GAP_MINUTES",
    "MAX_SHOWN_DIFFERENCES",
    "PARAMS_BY_NAME",
    "REPORTS",
    "REPORTS_BY_NAME",
    "REPORT_PARAMS",
    "SOURCE_REPORTS",
    "Difference",
    "Report",
    "ReportParam",
    "ReportQuery",
    "ReportSettings",
    "ReportSpec",
    "fill_group_names",
    "report_csv",
    "report_spec",
    "report_table",
    "run_report",
    "run_report_on",
    "run_reports",
    "verify_rollups",
]
