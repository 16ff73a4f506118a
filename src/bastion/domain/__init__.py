"""Pure domain values and rules: no I/O, no pydantic, no SQLAlchemy, no HTTP."""
