"""A small typed client for the Session Observatory agent API (Python standard library only).

An agent loads its session document, changes it, and saves it back with the version it loaded
(``If-Match``); if someone saved in between, the save fails with :class:`PreconditionFailed`
and the agent reloads and re-applies its change instead of overwriting theirs::

    client = SessionObservatoryClient("http://127.0.0.1:8000", api_key)
    session = client.load(session_id)
    client.append(session_id, etag=session.etag, messages=[...], reason="agent turn 3")

    # or let the client reload and retry on conflicts:
    client.update(session_id, lambda s: Patch(messages=[...]), reason="agent turn 3")

The API key needs the ``read`` and ``write`` scopes (``manage.py create_api_key --name my-agent
--scopes read,write``). See docs/EDITING.md for the HTTP API this wraps.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ApiError",
    "LoadedSession",
    "Patch",
    "PreconditionFailed",
    "PreconditionRequired",
    "SaveResult",
    "SessionObservatoryClient",
]

USER_AGENT = "session-observatory-client/1"


class ApiError(Exception):
    """An error answer: ``status`` and the API's ``{code, message, path, details}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        path: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.path = path
        self.details = details or {}
        self.headers = headers or {}


class PreconditionFailed(ApiError):
    """412: the session changed since the version you loaded. Reload and re-apply."""

    @property
    def current_version(self) -> int | None:
        value = self.details.get("current_version")
        return value if isinstance(value, int) else None

    @property
    def current_etag(self) -> str | None:
        return self.details.get("current_etag") or self.headers.get("etag")

    @property
    def diff(self) -> list[dict[str, Any]] | None:
        """JSON patch from the version you loaded to the current one."""
        return self.details.get("diff")


class PreconditionRequired(ApiError):
    """428: a save was sent without If-Match."""


@dataclass(frozen=True)
class LoadedSession:
    session_id: str
    version: int
    etag: str  # '"<version>"', for If-Match
    document: Any  # the decoded JSON document, in its framework's shape
    body: bytes  # the stored bytes exactly


@dataclass(frozen=True)
class SaveResult:
    session_id: str
    version: int
    etag: str
    changed: bool
    audit_id: int | None
    warnings: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Patch:
    """One turn for PATCH .../document: messages to append (in the framework's own message
    shape), an RFC 7386 merge patch for the state, an optional status."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, Any] | None = None
    status: str | None = None
    step: str | None = None  # Picoflow: whose state `state` merges into (default: current)
    namespace: str | None = None  # Picoflow: the memory namespace that gets the messages

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.messages:
            body["messages"] = self.messages
        for name in ("state", "status", "step", "namespace"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        return body


class SessionObservatoryClient:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    # --- the agent API ---------------------------------------------------------------------

    def load(self, session_id: str) -> LoadedSession:
        """The latest document and its version (GET .../document)."""
        _, headers, body = self._request("GET", f"/sessions/{_quote(session_id)}/document")
        etag = headers.get("etag", "")
        return LoadedSession(
            session_id=session_id,
            version=_version_of(etag),
            etag=etag,
            document=json.loads(body.decode("utf-8-sig")),  # a stored body may start with a BOM
            body=body,
        )

    def save(
        self,
        session_id: str,
        document: Any,
        *,
        etag: str | int,
        reason: str,
    ) -> SaveResult:
        """Store a whole new document (PUT .../document, If-Match: ``etag``).
        ``document`` is JSON-encoded unless it is already bytes."""
        body = document if isinstance(document, bytes) else _encode(document)
        return self._save("PUT", session_id, body, etag=etag, reason=reason)

    def append(
        self,
        session_id: str,
        *,
        etag: str | int,
        reason: str,
        messages: list[dict[str, Any]] | None = None,
        state: dict[str, Any] | None = None,
        status: str | None = None,
        step: str | None = None,
        namespace: str | None = None,
    ) -> SaveResult:
        """Append messages and merge state in one new version (PATCH .../document)."""
        patch = Patch(
            messages=messages or [], state=state, status=status, step=step, namespace=namespace
        )
        return self.patch(session_id, patch, etag=etag, reason=reason)

    def patch(self, session_id: str, patch: Patch, *, etag: str | int, reason: str) -> SaveResult:
        return self._save("PATCH", session_id, _encode(patch.as_json()), etag=etag, reason=reason)

    def update(
        self,
        session_id: str,
        change: Callable[[LoadedSession], Patch | Any],
        *,
        reason: str,
        attempts: int = 5,
    ) -> SaveResult:
        """Load, apply ``change`` and save; on a 412 reload and apply it again (at most
        ``attempts`` times). ``change`` returns a :class:`Patch` (sent as PATCH) or a whole
        new document (sent as PUT)."""
        for attempt in range(1, attempts + 1):
            session = self.load(session_id)
            result = change(session)
            try:
                if isinstance(result, Patch):
                    return self.patch(session_id, result, etag=session.etag, reason=reason)
                return self.save(session_id, result, etag=session.etag, reason=reason)
            except PreconditionFailed:
                if attempt == attempts:
                    raise
                time.sleep(min(0.05 * attempt, 0.5))
        raise AssertionError("unreachable")

    # --- reads and history -----------------------------------------------------------------

    def session(self, session_id: str) -> dict[str, Any]:
        """The canonical view (GET /sessions/{id}): format, status, steps, state ..."""
        return self._json("GET", f"/sessions/{_quote(session_id)}")

    def ingest(
        self, document: Any, *, format: str | None = None, external_id: str | None = None
    ) -> dict[str, Any]:
        """Push a document as the framework saved it (POST /sessions; needs ``ingest``)."""
        query = {k: v for k, v in {"format": format, "external_id": external_id}.items() if v}
        path = "/sessions" + ("?" + urllib.parse.urlencode(query) if query else "")
        body = document if isinstance(document, bytes) else _encode(document)
        return self._json("POST", path, body)

    def audit(self, session_id: str, *, limit: int = 50) -> list[dict[str, Any]]:
        path = f"/sessions/{_quote(session_id)}/audit?limit={int(limit)}"
        return list(self._json("GET", path)["items"])

    def checkpoint(
        self, session_id: str, name: str, *, version: int | None = None, note: str = ""
    ) -> dict[str, Any]:
        body = {"name": name, "note": note, **({"version": version} if version else {})}
        return self._json("POST", f"/sessions/{_quote(session_id)}/checkpoints", _encode(body))

    def restore(
        self,
        session_id: str,
        *,
        etag: str | int,
        reason: str,
        checkpoint: str | None = None,
        version: int | None = None,
    ) -> SaveResult:
        body = {"reason": reason, "checkpoint": checkpoint, "version": version}
        _, _, answer = self._request(
            "POST",
            f"/sessions/{_quote(session_id)}/restore",
            _encode({k: v for k, v in body.items() if v is not None}),
            {"If-Match": _etag(etag)},
        )
        return _save_result(json.loads(answer))

    def branch(
        self, session_id: str, *, reason: str, version: int | None = None, new_id: str | None = None
    ) -> dict[str, Any]:
        body = {"reason": reason, "version": version, "id": new_id}
        return self._json(
            "POST",
            f"/sessions/{_quote(session_id)}/branch",
            _encode({k: v for k, v in body.items() if v is not None}),
        )

    # --- plumbing --------------------------------------------------------------------------

    def _save(
        self, method: str, session_id: str, body: bytes, *, etag: str | int, reason: str
    ) -> SaveResult:
        _, _, answer = self._request(
            method,
            f"/sessions/{_quote(session_id)}/document",
            body,
            {"If-Match": _etag(etag), "X-Change-Reason": urllib.parse.quote(reason, safe=" ")},
        )
        return _save_result(json.loads(answer))

    def _json(self, method: str, path: str, body: bytes | None = None) -> dict[str, Any]:
        _, _, answer = self._request(method, path, body)
        return json.loads(answer)

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(
            self.base_url + "/api/v1" + path,
            data=body,
            method=method,
            headers={
                "Authorization": f"Bearer {self.api_key}",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
                **({"Content-Type": "application/json"} if body is not None else {}),
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return (
                    response.status,
                    {k.lower(): v for k, v in response.headers.items()},
                    response.read(),
                )
        except urllib.error.HTTPError as exc:
            raise _error(exc) from None


def _error(exc: urllib.error.HTTPError) -> ApiError:
    headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
    try:
        payload = json.loads(exc.read() or b"{}")
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    kind = {412: PreconditionFailed, 428: PreconditionRequired}.get(exc.code, ApiError)
    return kind(
        exc.code,
        str(payload.get("code", "http_error")),
        str(payload.get("message", exc.reason)),
        path=payload.get("path"),
        details=payload.get("details") if isinstance(payload.get("details"), dict) else None,
        headers=headers,
    )


def _save_result(payload: dict[str, Any]) -> SaveResult:
    return SaveResult(
        session_id=payload["id"],
        version=payload["version"],
        etag=payload["etag"],
        changed=payload["changed"],
        audit_id=payload.get("audit_id"),
        warnings=list(payload.get("warnings") or []),
    )


def _encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _etag(value: str | int) -> str:
    return f'"{value}"' if isinstance(value, int) else value


def _version_of(etag: str) -> int:
    return int(etag.strip().removeprefix("W/").strip('"'))


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")
