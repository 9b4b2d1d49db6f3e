"""Everything the session domain refuses, as one family of exceptions.

A :class:`DomainError` carries a stable machine ``code``, a human ``message``, where in the
input it applies (``path``: a JSON pointer, a parameter or a header name) and structured
``details``. The codes are part of the API: clients branch on them, so a code never changes
meaning. Nothing here knows HTTP: the REST API maps codes to statuses in one table
(``sessions_api/api/errors.py``); the dashboard and the admin show the message.

Every entry point (the API, the dashboard, the admin, management commands, workers) catches
these from this module.
"""

from __future__ import annotations

from typing import Any


def printable(text: str) -> str:
    """``text`` with anything UTF-8 cannot encode (lone surrogates) written as ``\\udXXX``.

    Messages and paths may quote a client's input; a lone surrogate in them would make the
    error answer itself fail to render."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class DomainError(Exception):
    """A refusal with a stable ``code``; ``path`` and ``details`` are optional."""

    def __init__(
        self,
        code: str,
        message: str,
        path: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        message = printable(message)
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = printable(path or "")
        self.details = details or {}


class _FixedCodeError(DomainError):
    """A refusal whose code is its class's ``code``."""

    code = "invalid"

    def __init__(
        self, message: str, *, path: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(type(self).code, message, path, details)


# --- requests and documents -----------------------------------------------------------------------


class InvalidRequest(DomainError):
    """The request around a document is wrong: a header, a parameter, the body's framing."""


class RejectedDocument(DomainError):
    """Bytes refused before they are read as a session: not UTF-8, not strict JSON, too big,
    too deep, or holding strings no store can keep."""


class InvalidDocument(DomainError):
    """JSON that is not a valid document of its format; ``path`` points at the culprit."""

    def __init__(self, message: str, *, path: str = "", code: str = "invalid_document") -> None:
        super().__init__(code, message, path)


class UnknownFormat(InvalidDocument):
    """No detection rule matches the document (or ``?format=`` names no format)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="unknown_format")


class RevisionConflict(_FixedCodeError):
    """Same session and revision as a stored version, different content."""

    code = "revision_conflict"

    def __init__(self, message: str, *, details: dict[str, Any]) -> None:
        super().__init__(message, path="/revision", details=details)


class InvalidQuery(_FixedCodeError):
    """A list, search or audit filter that cannot be read (a bad date, a malformed cursor)."""

    code = "invalid_query"


# --- what is not there ----------------------------------------------------------------------------


class NotFound(_FixedCodeError):
    """No such session (or version of one)."""

    code = "not_found"


class AmbiguousSessionId(_FixedCodeError):
    """An agent's own session id that names several sessions (one per format): use the
    session's ``id``."""

    code = "ambiguous_session_id"


class VersionNotFound(NotFound):
    code = "version_not_found"


class CheckpointNotFound(NotFound):
    code = "checkpoint_not_found"


class RunNotFound(NotFound):
    """No job run with that id."""

    code = "run_not_found"


class AlertNotFound(NotFound):
    """No alert rule with that id."""

    code = "alert_not_found"


class BodyNotFound(NotFound):
    """The store holds no body for that session and version (pruned, or lost by the store).

    ``str()`` names the session and version for the logs; clients see a fixed message."""

    def __init__(self, where: str = "") -> None:
        super().__init__("that version's body is not stored", path="version")
        self.args = (where or self.message,)


# --- edits ----------------------------------------------------------------------------------------


class NotEditable(DomainError):
    """The document (or this part of it) cannot be edited that way; ``path`` says where."""

    def __init__(self, message: str, *, path: str = "", code: str = "not_editable") -> None:
        super().__init__(code, message, path)


class EditError(_FixedCodeError):
    """A refused edit: a value out of bounds, a malformed id, a missing reason."""

    code = "invalid_edit"


class ReasonRequired(EditError):
    code = "reason_required"


class CheckpointExists(EditError):
    code = "checkpoint_exists"


class BranchExists(EditError):
    code = "branch_exists"


class VersionConflict(EditError):
    """The editor started from ``expected_version`` but the session is at ``current_version``.

    ``diff`` is the JSON patch from the document the editor saw to the current one (None when
    the version the editor named does not exist or its body is gone).
    """

    code = "version_conflict"

    def __init__(
        self,
        *,
        expected_version: int,
        current_version: int,
        diff: list[dict[str, Any]] | None,
    ) -> None:
        super().__init__(
            f"the session is at version {current_version}, not {expected_version}: someone "
            "saved it meanwhile; reload, re-apply your change and save again",
            path="expected_version",
            details={
                "expected_version": expected_version,
                "current_version": current_version,
                "diff": diff,
            },
        )
        self.expected_version = expected_version
        self.current_version = current_version
        self.diff = diff


class IndexConflict(VersionConflict):
    """The editor's form showed the session's tags, notes, hold or expiry at
    ``expected_index_revision`` but someone changed them since (``current_index_revision``).
    Index-only edits add no document version, so this count is what stales their forms;
    ``changes`` lists what the other saves did (newest first)."""

    def __init__(
        self,
        *,
        version: int,
        expected_index_revision: int,
        current_index_revision: int,
        changes: list[dict[str, Any]],
    ) -> None:
        super().__init__(expected_version=version, current_version=version, diff=changes)
        self.message = (
            "the session's tags, notes, hold or expiry changed while you were editing: "
            "reload, re-apply your change and save again"
        )
        self.path = "expected_index_revision"
        self.details = {
            **self.details,
            "expected_index_revision": expected_index_revision,
            "current_index_revision": current_index_revision,
        }
        self.expected_index_revision = expected_index_revision
        self.current_index_revision = current_index_revision
        self.changes = changes


class DuplicatePrice(_FixedCodeError):
    """A price for this model and effective date exists already."""

    code = "duplicate_price"


# --- jobs, limits and dependencies ----------------------------------------------------------------


class RateLimited(_FixedCodeError):
    """An API key over its quota of requests per window; ``retry_after`` is in seconds."""

    code = "rate_limited"

    def __init__(
        self, *, limit: int, window: int, retry_after: int, message: str | None = None
    ) -> None:
        super().__init__(
            message
            or f"this API key is over its limit of {limit} requests per {window} s; "
            f"retry in {retry_after} s",
            details={"limit": limit, "window_seconds": window},
        )
        self.limit = limit
        self.window = window
        self.retry_after = retry_after


class StoreUnavailable(_FixedCodeError):
    """The document store cannot be reached right now; worth retrying.

    ``str()`` keeps the backend's own words for the logs and the job history; clients see a
    fixed message."""

    code = "store_unavailable"

    def __init__(self, reason: str = "") -> None:
        super().__init__("the document store is unavailable")
        self.args = (reason or self.message,)


class UnknownJob(_FixedCodeError):
    """A job name the registry does not know."""

    code = "unknown_job"


class InvalidParams(_FixedCodeError):
    """Job parameters the job does not take, or of the wrong kind; or a run that cannot be
    retried."""

    code = "invalid_params"


class DispatchFailed(_FixedCodeError):
    """A job run could not be handed to the broker (its run row is marked failed)."""

    code = "dispatch_failed"


class SourceUnavailable(_FixedCodeError):
    """The source MongoDB of a sync cannot be reached right now; the run is retried later."""

    code = "source_unavailable"


class InvalidAlertRule(_FixedCodeError):
    """An alert rule whose event, params, filters or destinations do not hold together."""

    code = "invalid_alert"
