"""The session index and everything derived from it.

One row per session holds every field that lists, filters, expiry and charts use, as real
indexed columns. Derived rows (tool calls, errors, usage per model) let ops ask questions across
sessions ("all tool errors in the last hour") without opening document bodies. Bodies themselves
live behind the DocumentStore (storage/); with the `orm` store in :class:`DocumentBody`.

These rows never leave the storage layer's neighbours: services and selectors turn them into
frozen dataclasses for the entry points.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from sessions_api.domain import SessionStatus, StatusSource, ToolStatus


class Session(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    format = models.CharField(max_length=32)
    format_variant = models.CharField(max_length=32, blank=True, default="")
    # The framework's own id (or ?external_id=, or a content hash for id-less formats).
    external_id = models.CharField(max_length=512)
    detection_rule = models.CharField(max_length=200, blank=True, default="")

    status = models.CharField(
        max_length=16, choices=[(s.value, s.value) for s in SessionStatus], db_index=True
    )
    raw_status = models.CharField(max_length=64, blank=True, default="")
    # The status a session had before the expiry job marked it expired.
    status_before_expiry = models.CharField(max_length=16, blank=True, default="")
    on_hold = models.BooleanField(default=False)
    # Set by the expiry job when it marks the session expired (purge counts its grace from here).
    expired_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Set by stuck detection: a running session with no update for too long.
    stuck_since = models.DateTimeField(null=True, blank=True)

    agent = models.CharField(max_length=255, blank=True, default="", db_index=True)
    user = models.CharField(max_length=255, blank=True, default="", db_index=True)
    title = models.CharField(max_length=500, blank=True, default="")
    model_names = models.JSONField(default=list, blank=True)
    parent_external_id = models.CharField(max_length=512, blank=True, default="")

    message_count = models.PositiveIntegerField(default=0)
    tool_call_count = models.PositiveIntegerField(default=0)
    tool_error_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    warning_count = models.PositiveIntegerField(default=0)
    has_errors = models.BooleanField(default=False, db_index=True)

    input_tokens = models.BigIntegerField(null=True, blank=True)
    output_tokens = models.BigIntegerField(null=True, blank=True)
    total_tokens = models.BigIntegerField(null=True, blank=True)
    tokens_source = models.CharField(max_length=16, blank=True, default="")

    # When the conversation started and was last active: the document's own times where it has
    # them, else the first/last message time, else when we first/last received it. Never null,
    # so lists order and page on them cheaply.
    started_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    expire_after_s = models.BigIntegerField(null=True, blank=True)

    first_received_at = models.DateTimeField()
    last_received_at = models.DateTimeField()
    latest_version = models.PositiveIntegerField(default=1)
    revision = models.BigIntegerField(null=True, blank=True)

    # Bounded text for ?q= (ids, names and the start of the conversation).
    warnings = models.JSONField(default=list, blank=True)

    # Editing: written only by sessions_api/editing/, every change audited.
    tags = models.JSONField(default=list, blank=True)
    notes = models.TextField(blank=True, default="")
    # An expiry an editor set for a format whose document records none; survives new versions.
    expires_at_override = models.DateTimeField(null=True, blank=True)
    # Counts index-only edits (tags, notes, hold, an index expiry): they add no document version,
    # so a stale form is caught by this number instead (editing/locking.py).
    index_revision = models.PositiveIntegerField(default=0)
    # A branch: the session and version it was branched from (the parent lists its branches).
    parent_session = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="branches"
    )
    branched_from_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["format", "external_id"], name="session_format_extid")
        ]
        indexes = [
            models.Index(fields=["-updated_at", "-id"], name="session_updated_idx"),
            models.Index(fields=["-started_at", "-id"], name="session_started_idx"),
            models.Index(fields=["status", "-updated_at"], name="session_status_upd_idx"),
            models.Index(fields=["format", "-updated_at"], name="session_format_upd_idx"),
            models.Index(fields=["agent", "-updated_at"], name="session_agent_upd_idx"),
            # The list filtered by agent and errors: otherwise the planner walks all of the
            # agent's sessions in time order to find the few with errors. Partial: Django
            # writes the filter as a bare `has_errors` term, which no key column can match
            # but a partial index's condition does, and it holds only sessions with errors.
            models.Index(
                fields=["agent", "-updated_at", "-id"],
                condition=models.Q(has_errors=True),
                name="session_agent_err_upd_idx",
            ),
            # Incremental rollups pick up what changed since their watermark.
            models.Index(fields=["last_received_at"], name="session_received_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.format}:{self.external_id}"


class DocumentVersion(models.Model):
    """Metadata of one stored body; the bytes live in the DocumentStore."""

    class Source(models.TextChoices):
        API = "api"
        BATCH = "batch"
        IMPORT = "import"
        EDIT = "edit"
        SYNC = "sync"
        DEMO = "demo"

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveIntegerField()
    received_at = models.DateTimeField()
    revision = models.BigIntegerField(null=True, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.API)
    # Where a later version may append to this one (ingest/appending.py), as JSON.
    append_point = models.TextField(  # noqa: DJ001 - NULL is "none": not extendable, or older
        null=True, blank=True
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "number"], name="version_session_number")
        ]
        ordering = ["session", "number"]

    def __str__(self) -> str:
        return f"{self.session_id} v{self.number}"


class ToolCallRecord(models.Model):
    # Indexed by (session, message_seq) below, which also serves every look-up by session.
    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="tool_calls", db_index=False
    )
    message_seq = models.PositiveIntegerField()
    call_id = models.CharField(max_length=255)
    # Looked up through toolcall_name_time_idx, which leads with it (an index of its own would
    # only cost every insert).
    name = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=[(s.value, s.value) for s in ToolStatus])
    status_source = models.CharField(
        max_length=16, choices=[(s.value, s.value) for s in StatusSource]
    )
    step = models.CharField(max_length=255, blank=True, default="")
    occurred_at = models.DateTimeField()
    # The start of an error result, for the errors page; empty for successes.
    error_preview = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["name", "-occurred_at"], name="toolcall_name_time_idx"),
            models.Index(fields=["status", "-occurred_at"], name="toolcall_status_time_idx"),
            # Rollups and the errors page scan tool calls by time range.
            models.Index(fields=["occurred_at"], name="toolcall_time_idx"),
            # A save that appends to a session reads and replaces its rows from one message
            # on, and asks whether an appended call reuses an earlier id: each look-up then
            # costs what it finds, not the session's size.
            models.Index(fields=["session", "message_seq"], name="toolcall_session_seq_idx"),
            models.Index(fields=["session", "call_id"], name="toolcall_session_call_idx"),
            # The first call still waiting for its result (few per session, often none).
            models.Index(
                fields=["session", "message_seq"],
                condition=models.Q(status="pending"),
                name="toolcall_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.status} (session {self.session_id})"


class SessionError(models.Model):
    """An error or warning inside a session: a failed tool, an errored message, a log entry."""

    class Kind(models.TextChoices):
        TOOL_ERROR = "tool_error"
        MESSAGE_ERROR = "message_error"
        LOG_ERROR = "log_error"
        LOG_WARNING = "log_warning"

    # Indexed by (session, message_seq) below, which also serves every look-up by session.
    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="errors", db_index=False
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    message = models.CharField(max_length=1000)
    occurred_at = models.DateTimeField()
    message_seq = models.PositiveIntegerField(null=True, blank=True)
    tool_name = models.CharField(max_length=255, blank=True, default="")
    heuristic = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["-occurred_at"], name="sessionerror_time_idx"),
            models.Index(fields=["kind", "-occurred_at"], name="sessionerror_kind_time_idx"),
            models.Index(fields=["session", "message_seq"], name="sessionerror_session_seq_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message[:60]}"


class ModelUsage(models.Model):
    """Tokens per model in one session. `model == ""` holds session-level tokens that the
    document does not attribute to one model (several models, session totals only)."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="model_usage")
    model = models.CharField(max_length=255, db_index=True)
    message_count = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(null=True, blank=True)
    output_tokens = models.BigIntegerField(null=True, blank=True)
    total_tokens = models.BigIntegerField(null=True, blank=True)
    cached_input_tokens = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "model"], name="modelusage_session_model")
        ]

    def __str__(self) -> str:
        return f"{self.model or '(unattributed)'} in {self.session_id}"


class SearchEntry(models.Model):
    """What full-text search reads: the text of a run of consecutive timeline events of the
    latest version, one line per event (or of the session's own fields), derived by
    sessions_api/search/entries.py and packed by search/index.py. Fewer, longer rows are what
    keeps the index cheap to write: its cost is per distinct trigram per row. On SQLite an
    FTS5 table over ``text`` is kept in step by triggers; on PostgreSQL a trigram index covers
    it (both made by the migrations)."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="search_entries")
    # The timeline event of the first line (-1: the session's own ids, title, agent, user).
    event_index = models.IntegerField()
    # The smallest and largest message seq of the row's events (None: none has one).
    seq = models.IntegerField(null=True, blank=True)
    last_seq = models.IntegerField(null=True, blank=True)
    # Per line of ``text``, its event's "seq:kind" (no seq: ":kind"), one per line.
    events = models.TextField()
    # The events' texts, one per line (an event's text never holds a line break).
    text = models.TextField()

    class Meta:
        indexes = [models.Index(fields=["session", "event_index"], name="search_session_event_idx")]

    def __str__(self) -> str:
        return f"{self.session_id} #{self.event_index}"


class DocumentBody(models.Model):
    """Bodies for the `orm` DocumentStore (independent of the index on purpose).

    ``body`` holds the payload in ``encoding`` (storage/codec.py): a zstd snapshot, a delta
    against ``base_version`` of the same session, or the raw bytes. ``sha256`` and ``raw_size``
    describe the raw bytes every read is checked against. Rows written before encodings
    existed have NULL in all four and read as raw.
    """

    session_id = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    body = models.BinaryField()
    # Nullable, without defaults: adding them rewrites no existing row (SQLite and PostgreSQL
    # add such columns in place), and a row inserted by code that knows nothing of encodings
    # (an older release during a rolling upgrade, a bulk loader) is a valid raw row.
    encoding = models.CharField(  # noqa: DJ001 - NULL is "raw, from before encodings"
        max_length=8,
        null=True,
        blank=True,
        choices=[("raw", "raw"), ("zstd", "zstd snapshot"), ("delta", "delta")],
    )
    base_version = models.PositiveIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 - as above
    raw_size = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session_id", "version"], name="body_session_version")
        ]

    def __str__(self) -> str:
        return f"body {self.session_id} v{self.version}"


class ApiKey(models.Model):
    """A scoped API key. Only a SHA-256 of the key is stored; the key is shown once."""

    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class ModelPrice(models.Model):
    """What a model costs per million tokens from a date on; costs are estimates from this."""

    model = models.CharField(max_length=255, db_index=True)
    input_per_mtok = models.DecimalField(max_digits=12, decimal_places=4)
    output_per_mtok = models.DecimalField(max_digits=12, decimal_places=4)
    cached_input_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True
    )
    effective_from = models.DateField()
    currency = models.CharField(max_length=3, default="USD")
    notes = models.CharField(max_length=500, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model", "effective_from"], name="price_model_date")
        ]
        ordering = ["model", "-effective_from"]

    def __str__(self) -> str:
        return f"{self.model} from {self.effective_from}"


class JobRun(models.Model):
    """One run of a background job: history that survives restarts (the Jobs page reads it)."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        SKIPPED = "skipped"  # another run held the job's lock

    job = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    params = models.JSONField(default=dict, blank=True)
    dry_run = models.BooleanField(default=False)
    triggered_by = models.CharField(max_length=32, blank=True, default="")  # beat, cli, user:NAME
    task_id = models.CharField(max_length=255, blank=True, default="")
    queued_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    # What the run touched (e.g. purged session ids and why), capped by the job.
    details = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["job", "-queued_at"], name="jobrun_job_time_idx"),
            # The Jobs history of every job, latest first.
            models.Index(fields=["-queued_at", "-id"], name="jobrun_time_idx"),
        ]
        ordering = ["-queued_at"]

    def __str__(self) -> str:
        return f"{self.job} {self.status} {self.queued_at:%Y-%m-%d %H:%M}"


class RollupBucket(models.Model):
    """Pre-aggregated analytics: one value set per (granularity, bucket, series, key).

    Series name what is counted ("sessions_by_status", "tokens_by_model", "tool_calls_by_tool",
    "errors_by_kind", "sessions_by_duration" ...; sessions_api/analytics/rollups.py lists them);
    key is the member of that series ("completed", "gpt-4o", "search_flights" ...). Rollup jobs
    rewrite whole buckets, so reruns are idempotent.
    """

    class Granularity(models.TextChoices):
        HOUR = "hour"
        DAY = "day"

    granularity = models.CharField(max_length=8, choices=Granularity.choices)
    bucket_start = models.DateTimeField()
    series = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    count = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    # A series-specific sum (seconds of duration, cost in USD ...).
    value_sum = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["granularity", "series", "bucket_start", "key"], name="rollup_bucket_key"
            )
        ]
        indexes = [
            models.Index(
                fields=["granularity", "series", "bucket_start"], name="rollup_series_time_idx"
            )
        ]

    def __str__(self) -> str:
        return f"{self.series}[{self.key}] {self.granularity} {self.bucket_start:%Y-%m-%d %H:%M}"


class RollupDirtyHour(models.Model):
    """An hour the next rollup run must recompute although no session in it changed: a session
    left it (a new version moved its start or its events) or was deleted from it. Appended by
    the writers, never updated, so marking is one INSERT that waits on no shared row; the run
    deletes the rows it read (analytics/rollups.py)."""

    hour = models.DateTimeField()

    def __str__(self) -> str:
        return f"dirty {self.hour:%Y-%m-%d %H:00}"


class JobState(models.Model):
    """Small durable state for jobs: watermarks, resume points (e.g. the Mongo source sync)."""

    name = models.CharField(max_length=128, unique=True)
    value = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


# --- editing: audit log and checkpoints -------------------------------------------------------


class AuditEntry(models.Model):
    """Who changed what, when and why: one row per edit, revert, checkpoint, branch, delete,
    and per refused attempt. Rows are never updated; they outlive the session they name."""

    class Action(models.TextChoices):
        EDIT_DOCUMENT = "edit_document"
        EDIT_STATE = "edit_state"
        EDIT_STATUS = "edit_status"
        SET_EXPIRY = "set_expiry"
        HOLD = "hold"
        RELEASE = "release"
        TAG = "tag"
        NOTE = "note"
        PATCH = "patch"
        REVERT = "revert"
        CHECKPOINT = "checkpoint"
        RESTORE = "restore"
        BRANCH = "branch"
        DELETE = "delete"
        REFUSED = "refused"

    session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    # Kept as text so the entry still names its session after the session is deleted.
    session_external_id = models.CharField(max_length=512, blank=True, default="")
    session_key = models.CharField(max_length=64, blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_label = models.CharField(max_length=255)  # "user:alice", "key:agent-1 (ab12cd…)"
    action = models.CharField(max_length=32, choices=Action.choices)
    reason = models.TextField(blank=True, default="")
    from_version = models.PositiveIntegerField(null=True, blank=True)
    to_version = models.PositiveIntegerField(null=True, blank=True)
    # A JSON patch (RFC 6902 ops, each with the "old" value it replaced) from before to after.
    diff = models.JSONField(default=list, blank=True)
    # What else explains the entry: the edited part, a checkpoint name, a refused permission.
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="audit_time_idx"),
            models.Index(fields=["session_key", "-created_at"], name="audit_session_time_idx"),
            models.Index(fields=["actor_label", "-created_at"], name="audit_actor_time_idx"),
            models.Index(fields=["action", "-created_at"], name="audit_action_time_idx"),
        ]
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class Checkpoint(models.Model):
    """A named, pinned version of a session: pruning never deletes it; restoring reverts to it."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="checkpoints")
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=100)
    note = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_by_label = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "name"], name="checkpoint_session_name")
        ]
        ordering = ["session", "-created_at"]

    def __str__(self) -> str:
        return f"{self.name} (v{self.version} of {self.session_id})"


class OtelTrace(models.Model):
    """Which session an OpenTelemetry trace's spans go to (POST /v1/traces).

    Spans that carry no conversation id (a model call under an agent span that does) are
    grouped with their trace; spans of one trace arrive over several exports, so the trace's
    session is remembered here rather than found again in each export.
    """

    trace_id = models.CharField(max_length=32, primary_key=True)
    session_key = models.CharField(max_length=512)
    # gen_ai.conversation.id, session.id or trace_id: how session_key was found.
    grouped_by = models.CharField(max_length=32)
    received_at = models.DateTimeField()  # when its spans last went to that session

    class Meta:
        indexes = [models.Index(fields=["received_at"], name="oteltrace_received")]

    def __str__(self) -> str:
        return f"trace {self.trace_id} -> {self.session_key}"


class OtelSpan(models.Model):
    """A span POST /v1/traces acknowledged and the fold_otel_spans job has not yet appended to
    its session: the receiver's answer waits only for this row's commit.

    ``session_key`` is the conversation the span itself names (empty when it names none: its
    trace decides at fold time); ``body`` is the span as the ``otel`` document keeps it.
    """

    trace_id = models.CharField(max_length=32)
    span_id = models.CharField(max_length=16)
    session_key = models.CharField(max_length=512, blank=True, default="")
    grouped_by = models.CharField(max_length=32, blank=True, default="")
    body = models.BinaryField()
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trace_id", "span_id"], name="otelspan_trace_span")
        ]

    def __str__(self) -> str:
        return f"pending span {self.span_id} of trace {self.trace_id}"


class AlertRule(models.Model):
    """A rule that notifies a webhook and/or email addresses when its event happens."""

    class Event(models.TextChoices):
        SESSION_ENDED = "session_ended"
        SESSION_STUCK = "session_stuck"
        TOOL_ERROR_RATE = "tool_error_rate"
        SESSION_COST = "session_cost"

    name = models.CharField(max_length=200)
    event = models.CharField(max_length=32, choices=Event.choices)
    params = models.JSONField(default=dict, blank=True)
    # agent, format, model, tool: exact values a session (or tool call) must have.
    filters = models.JSONField(default=dict, blank=True)
    webhook_url = models.URLField(max_length=2000, blank=True, default="")
    webhook_secret = models.CharField(max_length=200, blank=True, default="")
    emails = models.JSONField(default=list, blank=True)
    muted_until = models.DateTimeField(null=True, blank=True)
    # Rate rules: which windows are firing now ({key: since}), so each fires and resolves once.
    state = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.event})"


class AlertOutbox(models.Model):
    """A session save that alert rules must look at, written in the save's own transaction.

    The commit enqueues its check; rows a crash left unprocessed are picked up by the
    evaluate_alerts sweep."""

    session_id = models.UUIDField()
    version = models.PositiveIntegerField()
    created_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"],
                name="alertoutbox_pending_idx",
                condition=models.Q(processed_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.session_id} v{self.version}"


class AlertNotification(models.Model):
    """One notification of one rule: unique per (rule, dedupe key), so a session event notifies
    once per rule and session, and a rate window fires and resolves once."""

    class Kind(models.TextChoices):
        FIRED = "fired"
        RESOLVED = "resolved"
        TEST = "test"

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        DELIVERED = "delivered"
        FAILED = "failed"  # gave up after the last retry

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="notifications")
    dedupe_key = models.CharField(max_length=300)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    session = models.ForeignKey(
        Session, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    session_external_id = models.CharField(max_length=512, blank=True, default="")
    text = models.TextField()
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "dedupe_key"], name="alertnotif_once_uniq")
        ]
        indexes = [
            models.Index(fields=["rule", "-created_at"], name="alertnotif_rule_time_idx"),
            models.Index(fields=["status", "next_attempt_at"], name="alertnotif_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id}:{self.dedupe_key} {self.status}"


class AlertDeliveryAttempt(models.Model):
    """One try at delivering a notification to one channel."""

    notification = models.ForeignKey(
        AlertNotification, on_delete=models.CASCADE, related_name="attempt_log"
    )
    channel = models.CharField(max_length=16)  # webhook, email
    ok = models.BooleanField()
    http_status = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=1000, blank=True, default="")
    attempted_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-attempted_at", "-id"]

    def __str__(self) -> str:
        return f"{self.channel} {'ok' if self.ok else 'failed'} {self.attempted_at:%H:%M:%S}"
