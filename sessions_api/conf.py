"""Job policies: how long sessions may idle, when they are purged, how many versions stay.

Every value comes, in this order, from a Django setting of the same name (tests and
deployments that prefer Python use it), from an environment variable of the same name, or from
the default here. Read on every call, so a changed setting applies at the next run without a
restart of anything but the process that reads it.

Durations are written ``90`` (seconds), ``30s``, ``15m``, ``6h``, ``7d`` or ``2w``; ``never``
(or ``off``, ``0``, empty) switches a rule off. Tiered policies take per-format and per-agent
overrides as ``name=duration`` pairs separated by commas::

    EXPIRY_IDLE_DEFAULT=7d
    EXPIRY_IDLE_BY_FORMAT=openai_chat=2d,langchain=never
    EXPIRY_IDLE_BY_AGENT=TripFlow=6h

An agent rule wins over a format rule, which wins over the default. As a Django setting the
whole tier is one dict: ``EXPIRY_IDLE_POLICY = {"default": "7d", "format": {...}, "agent":
{...}}`` (likewise ``PURGE_RETENTION_POLICY`` and ``STUCK_AFTER_POLICY``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_OFF = {"", "0", "never", "off", "none", "no"}


class PolicyError(ValueError):
    """A policy value that cannot be read; names the setting so the fix is obvious."""


def parse_duration(value: Any, *, name: str = "duration") -> timedelta | None:
    """``"6h"`` -> 6 hours; numbers are seconds; ``never``/``off``/``0``/None -> None."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value if value > timedelta(0) else None
    if isinstance(value, bool):
        raise PolicyError(f"{name}: expected a duration, got {value!r}")
    if isinstance(value, int | float):
        return timedelta(seconds=value) if value > 0 else None
    text = str(value).strip().lower()
    if text in _OFF:
        return None
    match = _DURATION.match(text)
    if not match:
        raise PolicyError(f"{name}: {value!r} is not a duration like 90, 30s, 15m, 6h, 7d, 2w")
    seconds = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    return timedelta(seconds=seconds) if seconds > 0 else None


def parse_pairs(value: Any, *, name: str) -> dict[str, timedelta | None]:
    """``"a=6h,b=never"`` (or a dict) -> {"a": 6h, "b": None}."""
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        items = list(value.items())
    else:
        items = []
        for part in str(value).split(","):
            if not part.strip():
                continue
            key, sep, raw = part.rpartition("=")
            if not sep or not key.strip():
                raise PolicyError(f"{name}: {part!r} is not name=duration")
            items.append((key.strip(), raw))
    return {str(key): parse_duration(raw, name=f"{name}[{key}]") for key, raw in items}


@dataclass(frozen=True)
class TieredPolicy:
    """A duration per agent, else per format, else a default; None means "never"."""

    default: timedelta | None = None
    by_format: Mapping[str, timedelta | None] = field(default_factory=dict)
    by_agent: Mapping[str, timedelta | None] = field(default_factory=dict)

    def for_session(self, *, format: str, agent: str) -> timedelta | None:
        if agent in self.by_agent:
            return self.by_agent[agent]
        if format in self.by_format:
            return self.by_format[format]
        return self.default

    @property
    def enabled(self) -> bool:
        return any(
            value is not None
            for value in (self.default, *self.by_format.values(), *self.by_agent.values())
        )

    def older_than_q(self, *, fields: tuple[str, ...], now: datetime) -> Q | None:
        """Sessions whose ``fields`` are all at least their tier's duration before ``now``.

        One OR-ed condition per rule, so the database (not Python) decides, and the same
        condition can be re-checked inside the UPDATE or DELETE that acts on it (a
        session that moved on since it was selected no longer matches). None when no
        rule is on.
        """
        agents = list(self.by_agent)
        formats = list(self.by_format)
        parts: list[Q] = []

        def older(duration: timedelta) -> Q:
            cutoff = now - duration
            return Q(**{f"{name}__lte": cutoff for name in fields})

        for agent, duration in self.by_agent.items():
            if duration is not None:
                parts.append(Q(agent=agent) & older(duration))
        for format_id, duration in self.by_format.items():
            if duration is not None:
                rule = Q(format=format_id) & older(duration)
                if agents:
                    rule &= ~Q(agent__in=agents)
                parts.append(rule)
        if self.default is not None:
            rule = older(self.default)
            if agents:
                rule &= ~Q(agent__in=agents)
            if formats:
                rule &= ~Q(format__in=formats)
            parts.append(rule)
        if not parts:
            return None
        combined = parts[0]
        for part in parts[1:]:
            combined |= part
        return combined

    def describe(self) -> dict[str, Any]:
        return {
            "default": _show(self.default),
            "format": {k: _show(v) for k, v in self.by_format.items()},
            "agent": {k: _show(v) for k, v in self.by_agent.items()},
        }


def _show(value: timedelta | None) -> str:
    if value is None:
        return "never"
    seconds = int(value.total_seconds())
    for unit, size in (("w", _UNITS["w"]), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _raw(name: str, default: Any) -> Any:
    if hasattr(settings, name):
        return getattr(settings, name)
    value = os.environ.get(name)
    return default if value is None else value


def _tiered(prefix: str, default: str) -> TieredPolicy:
    configured = getattr(settings, f"{prefix}_POLICY", None)
    if configured is not None:
        return TieredPolicy(
            default=parse_duration(configured.get("default"), name=f"{prefix}_POLICY[default]"),
            by_format=parse_pairs(configured.get("format"), name=f"{prefix}_POLICY[format]"),
            by_agent=parse_pairs(configured.get("agent"), name=f"{prefix}_POLICY[agent]"),
        )
    return TieredPolicy(
        default=parse_duration(_raw(f"{prefix}_DEFAULT", default), name=f"{prefix}_DEFAULT"),
        by_format=parse_pairs(_raw(f"{prefix}_BY_FORMAT", ""), name=f"{prefix}_BY_FORMAT"),
        by_agent=parse_pairs(_raw(f"{prefix}_BY_AGENT", ""), name=f"{prefix}_BY_AGENT"),
    )


def _duration(name: str, default: str) -> timedelta | None:
    return parse_duration(_raw(name, default), name=name)


def _int(name: str, default: int, *, minimum: int) -> int:
    raw = _raw(name, default)
    try:
        value = int(raw)
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"{name}: {raw!r} is not a whole number") from exc
    if value < minimum:
        raise PolicyError(f"{name}: must be at least {minimum}, got {value}")
    return value


# --- the policies the jobs read ---------------------------------------------------------------


def expiry_idle_policy() -> TieredPolicy:
    """Idle time after which a session of a format without its own expiry expires."""
    return _tiered("EXPIRY_IDLE", "7d")


def expiry_idle_statuses() -> tuple[str, ...]:
    """Statuses that idle expiry applies to: open sessions; a finished one does not idle."""
    raw = _raw("EXPIRY_IDLE_STATUSES", "running,unknown")
    values = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    return tuple(v.strip() for v in values if v.strip())


def purge_expired_grace() -> timedelta | None:
    """How long an expired session stays before purge deletes it (None: never)."""
    return _duration("PURGE_EXPIRED_GRACE", "7d")


def purge_retention_policy() -> TieredPolicy:
    """Delete anything inactive (and not received) for this long; off unless configured."""
    return _tiered("PURGE_RETENTION", "never")


def prune_keep_versions() -> int:
    return _int("PRUNE_KEEP_VERSIONS", 50, minimum=1)


def stuck_after_policy() -> TieredPolicy:
    """A running session without an update for this long is flagged stuck."""
    return _tiered("STUCK_AFTER", "30m")


def otel_session_idle() -> timedelta | None:
    """An OpenTelemetry session whose traces have all closed their root span ends after this
    long without a new span (close_idle_otel_sessions); ``never`` leaves them running."""
    return _duration("OTEL_SESSION_IDLE", "5m")


def otel_inline_fold_spans() -> int:
    """An OTLP export of at most this many spans is appended to its sessions before the answer
    (small exports from quiet agents show at once); larger ones wait for fold_otel_spans."""
    return _int("OTEL_INLINE_FOLD_SPANS", 64, minimum=0)


def otel_trace_memory() -> timedelta | None:
    """How long the session a trace's spans went to is remembered (OtelTrace) after its last
    span: a span without a conversation id that comes later starts a session of its own.
    Bounds the table, which gains a row per trace; ``never`` keeps every trace."""
    return _duration("OTEL_TRACE_MEMORY", "7d")


def job_history_retention() -> timedelta | None:
    """Finished job runs older than this leave the Jobs history (each job keeps its latest
    success whatever its age); ``never`` keeps them all."""
    return _duration("JOB_HISTORY_RETENTION", "30d")


def reconcile_orphan_min_age() -> timedelta:
    """Bodies without an index row are deleted only when older than this: an ingest may be
    between writing the body and committing the index right now."""
    return _duration("RECONCILE_ORPHAN_MIN_AGE", "1h") or timedelta(hours=1)


def rollup_watermark_overlap() -> timedelta:
    """Incremental rollups re-read this much before their watermark, so an ingest that
    committed late (its received time is before the watermark) is still counted."""
    return _duration("ROLLUP_WATERMARK_OVERLAP", "5m") or timedelta(0)


def rollup_full_rebuild_every() -> timedelta | None:
    """How often a rollup run rebuilds everything instead of working incrementally (catches
    sessions deleted outside the purge job); None: only when asked."""
    return _duration("ROLLUP_FULL_REBUILD_EVERY", "1d")


def mongo_source_overlap() -> timedelta:
    """The Mongo source sync re-reads this much before its saved position (saves that landed
    out of order); re-reading is harmless, ingest is idempotent."""
    return _duration("MONGO_SOURCE_OVERLAP", "60s") or timedelta(0)


def job_lock_ttl() -> timedelta:
    """Lease of a job's lock; renewed by a heartbeat while the job runs, so a killed worker
    releases it within this time."""
    return timedelta(seconds=_int("JOB_LOCK_TTL_SECONDS", 120, minimum=2))


def describe_policies() -> dict[str, Any]:
    """Every policy as the jobs currently read it (shown by run_job and the Jobs page)."""
    return {
        "expiry_idle": expiry_idle_policy().describe(),
        "expiry_idle_statuses": list(expiry_idle_statuses()),
        "purge_expired_grace": _show(purge_expired_grace()),
        "purge_retention": purge_retention_policy().describe(),
        "prune_keep_versions": prune_keep_versions(),
        "stuck_after": stuck_after_policy().describe(),
        "otel_session_idle": _show(otel_session_idle()),
        "reconcile_orphan_min_age": _show(reconcile_orphan_min_age()),
    }
