"""The ``caliper-store`` command: serve, migrate, keys, stats, quarantine, events, export, report.

Each sub-module registers its commands on the one click group, ``main``.
"""

from caliper_store.cli import events, keys, quarantine, reports
from caliper_store.cli.main import main

__all__ = ["events", "keys", "main", "quarantine", "reports"]
