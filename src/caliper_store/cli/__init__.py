"""The ``caliper-store`` command: serve, migrate, keys, stats, quarantine, events and export.

Each sub-module registers its commands on the one click group, ``main``.
"""

from caliper_store.cli import events, keys, quarantine
from caliper_store.cli.main import main

__all__ = ["events", "keys", "main", "quarantine"]
