"""Web: the ASGI app serving ingest, health, and (later) query, admin and dashboard routes."""

from caliper_store.web.app import app_from_environment, create_app
from caliper_store.web.metrics import serving_metrics

__all__ = ["app_from_environment", "create_app", "serving_metrics"]
