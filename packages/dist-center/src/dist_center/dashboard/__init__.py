"""The center's web dashboard: a live page, a JSON API and Prometheus ``/metrics``."""
from .app import DEFAULT_PORT, Dashboard

__all__ = ["DEFAULT_PORT", "Dashboard"]
