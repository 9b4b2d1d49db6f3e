"""A DocumentStore that keeps bodies compact (codec.py), over a few record-level methods.

The orm and mongo stores subclass :class:`CompactDocumentStore` and implement only how one
backend reads, inserts, replaces and finds :class:`~sessions_api.storage.codec.EncodedBody`
records; choosing an encoding, following a chain of deltas and rewriting the versions that a
delete would orphan are the same for both and live here.

The rebase rule: a version kept as a delta of a version that is being deleted is first rewritten
as a snapshot (it reads back the same bytes), then the versions are deleted. In that order a
crash in between leaves an extra snapshot, never a delta whose base is gone.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sessions_api.errors import BodyNotFound
from sessions_api.storage import codec
from sessions_api.storage.base import (
    BodyKey,
    Compaction,
    DocumentStore,
    SharedPrefix,
    StoredForm,
)
from sessions_api.storage.codec import CorruptBody, EncodedBody


@dataclass(frozen=True)
class Link:
    """Where a stored version's bytes come from, without its payload."""

    encoding: str
    base_version: int | None


# A read whose chain changed between its two queries (a concurrent delete rebased it) is read
# again; twice more is plenty, since a rebase only ever shortens a chain.
_READ_ATTEMPTS = 3


class CompactDocumentStore(DocumentStore):
    """put/get/delete_versions/compact_session for backends that store EncodedBody records."""

    # --- what a backend implements ------------------------------------------------------------

    @abstractmethod
    def _read_links(self, session_id: str, *, low: int, high: int) -> dict[int, Link]:
        """The links of the versions of one session from ``low`` to ``high`` inclusive."""

    @abstractmethod
    def _read_records(self, session_id: str, versions: Collection[int]) -> dict[int, EncodedBody]:
        """The records stored at those versions of one session (missing ones left out)."""

    @abstractmethod
    def _insert_record(self, session_id: str, version: int, record: EncodedBody) -> bool:
        """Insert a record at a free key; False (and nothing written) if the key is taken."""

    @abstractmethod
    def _replace_record(self, session_id: str, version: int, record: EncodedBody) -> None:
        """Overwrite the record at a stored key with one that decodes to the same bytes."""

    @abstractmethod
    def _find_dependents(self, keys: Collection[BodyKey]) -> set[BodyKey]:
        """The stored keys, not among ``keys``, whose record is a delta of one of ``keys``."""

    @abstractmethod
    def _delete_records(self, session_id: str, versions: Collection[int]) -> int:
        """Delete those records of one session as they are; returns how many were deleted."""

    def _put_raced_a_delete(self, session_id: str, version: int) -> Exception:
        """The error for a key that stayed taken-then-gone on every attempt to put at it."""
        return RuntimeError(f"put of {session_id} v{version} kept racing a concurrent delete")

    # --- DocumentStore ------------------------------------------------------------------------

    def put(
        self,
        *,
        session_id: str,
        version: int,
        body: bytes,
        previous: tuple[int, bytes] | SharedPrefix | None = None,
        sha256: str | None = None,
    ) -> None:
        if not isinstance(body, bytes):
            raise TypeError(f"body must be bytes, not {type(body).__name__}")
        sha256 = sha256 or codec.digest(body)
        # Two rounds only for the rare race where a delete removes the existing body between
        # our failed insert and our read of it.
        for _ in range(2):
            record = self._encode_next(session_id, version, body, sha256, previous)
            if self._insert_record(session_id, version, record):
                return
            existing = self._read_records(session_id, [version]).get(version)
            if existing is None:
                continue
            if not _holds(existing, body, sha256):
                raise ValueError(f"version {version} of {session_id} already holds different bytes")
            return  # the same bytes again: a retried write, nothing to do
        raise self._put_raced_a_delete(session_id, version)

    def get(self, *, session_id: str, version: int) -> bytes:
        chain = self._read_chain(session_id, version)
        if chain is None:
            raise BodyNotFound(f"{session_id} v{version}")
        return codec.decode_chain(chain)

    def stored_forms(self, *, session_id: str) -> dict[int, StoredForm]:
        # Reads the payloads to measure them: a backend that can ask for a payload's length
        # alone overrides this. A session's compact payloads are a fraction of its latest size.
        records = self._read_records(
            session_id, self._read_links(session_id, low=0, high=_NO_UPPER_BOUND)
        )
        return {
            version: StoredForm(record.encoding, record.base_version, len(record.payload))
            for version, record in records.items()
        }

    def delete_versions(self, *, session_id: str, versions: Iterable[int]) -> int:
        doomed = set(versions)
        if not doomed:
            return 0
        self._rebase_dependents({(session_id, version) for version in doomed})
        return self._delete_records(session_id, doomed)

    def compact_session(self, *, session_id: str, dry_run: bool = False) -> Compaction:
        links = self._read_links(session_id, low=0, high=_NO_UPPER_BOUND)
        versions = sorted(links)
        if all(link.encoding != codec.RAW for link in links.values()):
            return Compaction(bodies=len(versions))
        rewritten = bytes_before = bytes_after = 0
        lengths: dict[int, int] = {}  # each version's chain length once converted
        previous: tuple[int, bytes] | None = None  # the version before and its raw bytes
        for version in versions:
            record, raw = self._record_and_raw(session_id, version, previous)
            base_length = lengths.get(record.base_version) if record.is_delta else None
            if record.encoding == codec.ZSTD:
                lengths[version] = 0
            elif base_length is not None and base_length + 1 < codec.SNAPSHOT_INTERVAL:
                lengths[version] = base_length + 1
            else:
                # Raw, or a delta on a base whose chain this conversion has made longer.
                encoded = codec.encode_version(
                    raw,
                    base_version=previous[0] if previous else None,
                    base_raw=previous[1] if previous else None,
                    base_chain_length=lengths[previous[0]] if previous else 0,
                    sha256=record.sha256 or None,
                )
                if not dry_run:
                    self._replace_record(session_id, version, encoded)
                rewritten += 1
                bytes_before += len(record.payload)
                bytes_after += len(encoded.payload)
                lengths[version] = lengths[previous[0]] + 1 if previous and encoded.is_delta else 0
            previous = (version, raw)
        return Compaction(
            bodies=len(versions),
            rewritten=rewritten,
            bytes_before=bytes_before,
            bytes_after=bytes_after,
        )

    def _record_and_raw(
        self, session_id: str, version: int, previous: tuple[int, bytes] | None
    ) -> tuple[EncodedBody, bytes]:
        """A version's record and raw bytes, walking a session in order: a delta of the version
        just read is applied to its bytes instead of reading its chain again."""
        record = self._read_records(session_id, [version])[version]
        if not record.is_delta:
            return record, codec.decode_chain([record])
        if previous is not None and record.base_version == previous[0]:
            base = EncodedBody(encoding=codec.RAW, payload=previous[1], sha256="", raw_size=None)
            return record, codec.decode_chain([base, record])
        return record, codec.decode_chain(self._read_chain(session_id, version) or [])

    # --- for the backends' bulk deletes -------------------------------------------------------

    def _rebase_dependents(self, doomed: Collection[BodyKey]) -> None:
        """Rewrite as snapshots the kept versions that are deltas of the ``doomed`` ones (the
        rebase rule in the module docstring); call before deleting ``doomed``."""
        self._rebase(self._find_dependents(doomed))

    def _rebase(self, dependents: Collection[BodyKey]) -> None:
        """Rewrite each of ``dependents`` as a snapshot of the bytes it reads back as."""
        for session_id, version in sorted(dependents):
            chain = self._read_chain(session_id, version)
            if chain is None:
                continue  # deleted meanwhile: nothing left to keep readable
            raw = codec.decode_chain(chain)
            self._replace_record(
                session_id, version, codec.encode_snapshot(raw, sha256=chain[-1].sha256 or None)
            )

    # --- internals ----------------------------------------------------------------------------

    def _encode_next(
        self,
        session_id: str,
        version: int,
        body: bytes,
        sha256: str,
        previous: tuple[int, bytes] | SharedPrefix | None = None,
    ) -> EncodedBody:
        """``body`` as a delta of the version before when there is one and that is smaller.
        ``previous`` (that version and its bytes, read by the caller, or the length of the
        prefix the two share) spares reading its chain: only its links are read, for the
        chain's length."""
        if isinstance(previous, SharedPrefix):
            if previous.version == version - 1 and version > 1:
                path = self._chain_path(session_id, version - 1)
                if path is None:
                    return codec.encode_snapshot(body, sha256=sha256)
                return codec.encode_after_prefix(
                    body,
                    base_version=version - 1,
                    prefix_length=previous.length,
                    base_chain_length=len(path) - 1,
                    sha256=sha256,
                )
            previous = None
        if previous is not None and previous[0] == version - 1 and version > 1:
            path = self._chain_path(session_id, version - 1)
            if path is None:
                return codec.encode_snapshot(body, sha256=sha256)
            return codec.encode_version(
                body,
                base_version=version - 1,
                base_raw=previous[1],
                base_chain_length=len(path) - 1,
                sha256=sha256,
            )
        # Versions count from 1 (a session's first version has none before it to read).
        base = self._read_chain(session_id, version - 1) if version > 1 else None
        if base is None:
            return codec.encode_snapshot(body, sha256=sha256)
        return codec.encode_version(
            body,
            base_version=version - 1,
            base_raw=codec.decode_chain(base),
            base_chain_length=codec.chain_length(base),
            sha256=sha256,
        )

    def _read_chain(self, session_id: str, version: int) -> list[EncodedBody] | None:
        """The records that rebuild ``version``: its snapshot first, then each delta up to it.
        None when the version is not stored. Two reads in the usual case: the links of the
        versions a chain can span, then the payloads of the chain's own records."""
        for _ in range(_READ_ATTEMPTS):
            path = self._chain_path(session_id, version)
            if path is None:
                return None
            records = self._read_records(session_id, [number for number, _ in path])
            if all(_matches(records.get(number), link) for number, link in path):
                return [records[number] for number, _ in reversed(path)]
        raise CorruptBody(f"the chain of {session_id} v{version} kept changing while read")

    def _chain_path(self, session_id: str, version: int) -> list[tuple[int, Link]] | None:
        window = codec.SNAPSHOT_INTERVAL - 1
        links = self._read_links(session_id, low=max(0, version - window), high=version)
        if version not in links:
            return None
        path = [(version, links[version])]
        while path[-1][1].encoding == codec.DELTA:
            number, link = path[-1]
            base = link.base_version
            if base is None or base >= number:
                raise CorruptBody(f"{session_id} v{number} is a delta of no earlier version")
            if base not in links:
                links.update(self._read_links(session_id, low=max(0, base - window), high=base))
                if base not in links:
                    raise CorruptBody(f"{session_id} v{number} is a delta of v{base}, not stored")
            path.append((base, links[base]))
        return path


# An upper bound for "every version" that fits every backend's integer column.
_NO_UPPER_BOUND = 2**31 - 1


def _matches(record: EncodedBody | None, link: Link) -> bool:
    return (
        record is not None
        and record.encoding == link.encoding
        and record.base_version == link.base_version
    )


def _holds(existing: EncodedBody, body: bytes, sha256: str) -> bool:
    """Whether a stored record is ``body`` (by its digest; raw rows from before digests were
    recorded are compared byte for byte)."""
    if existing.sha256:
        return existing.sha256 == sha256 and existing.raw_size in (None, len(body))
    return existing.encoding == codec.RAW and existing.payload == body
