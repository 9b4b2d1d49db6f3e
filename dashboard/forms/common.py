"""Field parsing the dashboard's forms share."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_moment(text: str) -> datetime | None:
    """An ISO 8601 date and time, as the API takes it or a datetime-local input sends it ("Z"
    included); naive means UTC. None for anything else."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
