"""OpenTelemetry sessions are not edited part by part: they are spans, kept as exported."""

from __future__ import annotations

from sessions_api.formats.editing import ReadOnlyEditor

EDITOR = ReadOnlyEditor(
    "otel",
    "OpenTelemetry sessions are the spans as exported; they record no state an editor can change",
)
