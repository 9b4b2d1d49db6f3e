"""How a stored body is kept: compressed, and as a delta of the version before when smaller.

Pure: bytes in, bytes out, no Django and no backend. The stores (orm.py, mongo.py) keep one
:class:`EncodedBody` per (session id, version) and use the functions here to write and read it.

An agent saves the same growing document after every turn, so version N is version N-1 with
a few messages appended: the two share a long prefix and differ only near the end. A version
is therefore kept in one of three encodings:

- ``raw``: the bytes as received. Rows written before compaction existed read as this, and
  stay readable without conversion.
- ``zstd``: a whole snapshot, zstd-compressed.
- ``delta``: against ``base_version``: the length of the prefix and of the suffix the two
  versions share, and the zstd-compressed bytes between them.

A delta is kept only when it is smaller than the snapshot, and a chain of deltas is at most
``SNAPSHOT_INTERVAL - 1`` long: reading any version costs at most one snapshot decompress plus
``SNAPSHOT_INTERVAL - 1`` delta applications, each a splice near the end of a bytearray.
Every body carries the SHA-256 and size of its raw bytes, and every read is checked against
them: a damaged chain raises :class:`CorruptBody`, never returns wrong bytes.
"""

from __future__ import annotations

import hashlib
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import zstandard

RAW = "raw"
ZSTD = "zstd"
DELTA = "delta"
ENCODINGS = (RAW, ZSTD, DELTA)

#: A snapshot at least every this many versions: reading a version applies at most
#: SNAPSHOT_INTERVAL - 1 deltas after one snapshot decompress. 64 keeps a session that grows
#: to 100 versions at two snapshots (the growing-session benchmark, docs/BENCHMARKS.md), and
#: the longest chain of a 1 MB document at 2 to 3 ms to read back.
SNAPSHOT_INTERVAL = 64

#: zstd's own default. Measured on the growing-session benchmark's 780 KB chat transcript:
#: level 3 compresses it 5.5x in 3.2 ms of CPU; level 1 5.3x in 2.1 ms, level 6 5.6x in
#: 11 ms, level 9 5.9x in 23 ms. A turn's delta (about 8 KB) costs 40 us at level 3 and
#: 110 us at level 6. Higher levels buy 2-7% of size for 3-7x the CPU of every snapshot;
#: level 1 saves 1 ms a snapshot for 4% more bytes.
COMPRESSION_LEVEL = 3

# Delta payload: two little-endian unsigned 64-bit lengths (shared prefix, shared suffix),
# then the zstd frame of the bytes between them.
_DELTA_HEADER = struct.Struct("<QQ")
# The shared prefix is found a block at a time with memcmp (bytes ==), then bisected inside
# the block that differs: a few milliseconds at most for 10 MB.
_SCAN_BLOCK = 1 << 16


class CorruptBody(RuntimeError):
    """A stored body does not decode to the bytes its SHA-256 names (or cannot be decoded)."""


@dataclass(frozen=True)
class EncodedBody:
    """One stored version as a backend keeps it.

    ``payload`` is the raw bytes (``raw``), a zstd frame (``zstd``) or a delta (``delta``,
    against ``base_version``). ``sha256`` (hex) and ``raw_size`` describe the raw bytes; both
    may be unknown (empty, None) only for ``raw`` rows stored before they were recorded.
    """

    encoding: str
    payload: bytes
    sha256: str
    raw_size: int | None
    base_version: int | None = None

    @property
    def is_delta(self) -> bool:
        return self.encoding == DELTA


_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    # zstandard's (de)compressor objects are not safe to share between threads.
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(level=COMPRESSION_LEVEL)
    return compressor


def _decompressor() -> zstandard.ZstdDecompressor:
    decompressor = getattr(_local, "decompressor", None)
    if decompressor is None:
        decompressor = _local.decompressor = zstandard.ZstdDecompressor()
    return decompressor


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def encode_snapshot(raw: bytes, *, sha256: str | None = None) -> EncodedBody:
    """``raw`` as a whole zstd snapshot."""
    return EncodedBody(
        encoding=ZSTD,
        payload=_compressor().compress(raw),
        sha256=sha256 or digest(raw),
        raw_size=len(raw),
    )


def encode_version(
    raw: bytes,
    *,
    base_version: int | None,
    base_raw: bytes | None,
    base_chain_length: int,
    sha256: str | None = None,
) -> EncodedBody:
    """``raw`` as a delta against ``base_raw`` (stored as ``base_version``, itself reached by
    ``base_chain_length`` deltas after its snapshot) when that is allowed and smaller, as a
    snapshot otherwise.

    A delta is allowed while the chain stays under SNAPSHOT_INTERVAL; it is kept only if
    smaller than the snapshot, which is compressed only when the delta is not tiny already.
    """
    sha256 = sha256 or digest(raw)
    if base_version is None or base_raw is None or base_chain_length + 1 >= SNAPSHOT_INTERVAL:
        return encode_snapshot(raw, sha256=sha256)
    delta = _make_delta(base_raw, raw)
    return _smaller_of(delta, raw, base_version=base_version, sha256=sha256)


def _smaller_of(delta: bytes, raw: bytes, *, base_version: int, sha256: str) -> EncodedBody:
    # A delta within a few percent of the raw size cannot beat a snapshot worth comparing;
    # one much smaller than that is taken without compressing the whole body to check.
    if len(delta) * 8 < len(raw):
        return EncodedBody(DELTA, delta, sha256, len(raw), base_version)
    snapshot = encode_snapshot(raw, sha256=sha256)
    if len(delta) < len(snapshot.payload):
        return EncodedBody(DELTA, delta, sha256, len(raw), base_version)
    return snapshot


def encode_after_prefix(
    raw: bytes,
    *,
    base_version: int,
    prefix_length: int,
    base_chain_length: int,
    sha256: str | None = None,
) -> EncodedBody:
    """``raw`` as a delta against ``base_version`` whose first ``prefix_length`` bytes are
    known to be those of ``raw`` (the caller checked a digest of them), so the base is never
    read: the delta replaces everything after that prefix. The same rules as encode_version
    choose between that delta and a snapshot."""
    sha256 = sha256 or digest(raw)
    if base_chain_length + 1 >= SNAPSHOT_INTERVAL or not 0 <= prefix_length <= len(raw):
        return encode_snapshot(raw, sha256=sha256)
    delta = _DELTA_HEADER.pack(prefix_length, 0) + _compressor().compress(raw[prefix_length:])
    return _smaller_of(delta, raw, base_version=base_version, sha256=sha256)


def decode_chain(chain: Sequence[EncodedBody]) -> bytes:
    """The raw bytes of the last body of ``chain``: a snapshot (``raw`` or ``zstd``) first,
    then each delta against the one before it. Checked against the last body's SHA-256 and
    size; a mismatch or an undecodable payload raises CorruptBody."""
    if not chain or chain[0].is_delta:
        raise CorruptBody("a chain of bodies must start with a snapshot")
    target = chain[-1]
    try:
        if chain[0].encoding == ZSTD:
            buffer = bytearray(_decompressor().decompress(chain[0].payload))
        elif chain[0].encoding == RAW:
            if len(chain) == 1:
                return _verified(chain[0].payload, target)
            buffer = bytearray(chain[0].payload)
        else:
            raise CorruptBody(f"unknown body encoding {chain[0].encoding!r}")
        for body in chain[1:]:
            if not body.is_delta:
                raise CorruptBody("a snapshot in the middle of a chain of deltas")
            _apply_delta(buffer, body.payload)
    except zstandard.ZstdError as exc:
        raise CorruptBody(f"a stored body does not decompress: {exc}") from exc
    return _verified(bytes(buffer), target)


def chain_length(chain: Sequence[EncodedBody]) -> int:
    """How many deltas the last body of ``chain`` is from its snapshot."""
    return len(chain) - 1


# --- internals ---------------------------------------------------------------------------------


def _verified(raw: bytes, body: EncodedBody) -> bytes:
    if body.raw_size is not None and len(raw) != body.raw_size:
        raise CorruptBody(f"decoded {len(raw)} bytes where {body.raw_size} were stored")
    if body.sha256 and digest(raw) != body.sha256:
        raise CorruptBody("decoded bytes do not match the SHA-256 they were stored with")
    return raw


def _make_delta(old: bytes, new: bytes) -> bytes:
    prefix = common_prefix_length(old, new)
    suffix = common_suffix_length(old, new, limit=min(len(old), len(new)) - prefix)
    middle = new[prefix : len(new) - suffix]
    return _DELTA_HEADER.pack(prefix, suffix) + _compressor().compress(middle)


def _apply_delta(buffer: bytearray, delta: bytes) -> None:
    if len(delta) < _DELTA_HEADER.size:
        raise CorruptBody("a delta shorter than its header")
    prefix, suffix = _DELTA_HEADER.unpack_from(delta)
    if prefix + suffix > len(buffer):
        raise CorruptBody("a delta that does not fit the version it is based on")
    middle = _decompressor().decompress(delta[_DELTA_HEADER.size :])
    # An appended turn keeps the end short: this splice moves only the last few bytes.
    buffer[prefix : len(buffer) - suffix] = middle


def common_prefix_length(a: bytes, b: bytes) -> int:
    """Length of the longest common prefix of ``a`` and ``b``."""
    limit = min(len(a), len(b))
    start = 0
    while start < limit:
        end = min(start + _SCAN_BLOCK, limit)
        if a[start:end] != b[start:end]:
            return _bisect_prefix(a, b, start, end)
        start = end
    return limit


def common_suffix_length(a: bytes, b: bytes, *, limit: int) -> int:
    """Length of the longest common suffix of ``a`` and ``b``, at most ``limit``."""
    limit = max(0, min(limit, len(a), len(b)))
    if limit == 0:
        return 0
    # Reversing is a copy, but only of the tail that can match; the usual tail is short, so
    # the first block compared differs.
    tail = min(limit, _SCAN_BLOCK)
    while True:
        if a[len(a) - tail :] != b[len(b) - tail :]:
            return common_prefix_length(a[len(a) - tail :][::-1], b[len(b) - tail :][::-1])
        if tail == limit:
            return limit
        tail = min(limit, tail * 4)


def _bisect_prefix(a: bytes, b: bytes, low: int, high: int) -> int:
    # a[:low] == b[:low] and a[:high] != b[:high]: find the first difference in between.
    while high - low > 64:
        middle = (low + high) // 2
        if a[low:middle] == b[low:middle]:
            low = middle
        else:
            high = middle
    while low < high and a[low] == b[low]:
        low += 1
    return low
