"""The admin HTTP API (FastAPI routes under /admin/v1), every route behind authorization."""
