"""caliper_store: an IMS Caliper event store that keeps every event it is sent."""

__version__ = "0.1.0"
