"""``python -m caliper_store`` runs the command line."""

from caliper_store.cli import main

main()
