"""Benchmarks of caliper_store run as scripts: `python bench/ingest.py --help` (see README.md)."""
