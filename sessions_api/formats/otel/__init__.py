"""The otel format: OpenTelemetry spans of one session, its parser and its (read-only) editor."""
