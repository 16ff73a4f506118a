"""The composition root: ``create_app(settings)`` builds the whole server from validated settings."""

from __future__ import annotations
