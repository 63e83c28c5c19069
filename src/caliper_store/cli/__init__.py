"""The ``caliper-store`` command and its sub-commands, one module per group.

serve, migrate, keys, stats, config show, backup, quarantine, events, export, report, rules,
purge, person, audit, send, replay, loadgen, forward.

Each sub-module registers its commands on the one click group, ``main``.
"""

from caliper_store.cli import (
    events,
    forwarding,
    keys,
    operating,
    privacy,
    quarantine,
    reports,
    sending,
)
from caliper_store.cli.main import main

__all__ = [
    "events",
    "forwarding",
    "keys",
    "main",
    "operating",
    "privacy",
    "quarantine",
    "reports",
    "sending",
]
