"""Runtime detectors on text (prompt injection, PII, secrets, hidden text, canaries …)."""
