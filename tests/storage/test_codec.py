"""The body codec on its own: snapshots, deltas, chains and their checks (no store, no Django)."""

from __future__ import annotations

import dataclasses
import json
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessions_api.storage import codec
from sessions_api.storage.codec import CorruptBody, EncodedBody


def encode_all(versions: list[bytes], *, interval: int | None = None) -> list[EncodedBody]:
    """Each version encoded against the one before, as a store does on put."""
    encoded: list[EncodedBody] = []
    lengths: list[int] = []
    for number, raw in enumerate(versions):
        if number == 0:
            body = codec.encode_snapshot(raw)
        else:
            body = codec.encode_version(
                raw,
                base_version=number - 1,
                base_raw=versions[number - 1],
                base_chain_length=lengths[-1],
            )
        encoded.append(body)
        lengths.append(lengths[-1] + 1 if body.is_delta else 0)
    if interval is not None:
        assert max(lengths) <= interval - 1
    return encoded


def chain_of(encoded: list[EncodedBody], number: int) -> list[EncodedBody]:
    chain = [encoded[number]]
    while chain[-1].is_delta:
        chain.append(encoded[chain[-1].base_version])  # type: ignore[index]
    return chain[::-1]


edits = st.lists(
    st.tuples(
        st.sampled_from(["append", "insert", "delete", "replace", "rewrite"]),
        st.integers(min_value=0, max_value=10_000),
        st.binary(max_size=300),
    ),
    max_size=40,
)


def apply_edit(data: bytes, kind: str, at: int, chunk: bytes) -> bytes:
    at = at % (len(data) + 1)
    if kind == "append":
        return data + chunk
    if kind == "insert":
        return data[:at] + chunk + data[at:]
    if kind == "delete":
        return data[:at] + data[at + len(chunk) :]
    if kind == "replace":
        return data[:at] + chunk + data[at + len(chunk) :]
    return chunk


@settings(max_examples=150, deadline=None)
@given(start=st.binary(max_size=2_000), steps=edits)
def test_every_version_of_a_random_edit_sequence_decodes_to_its_bytes(
    start: bytes, steps: list[tuple[str, int, bytes]]
) -> None:
    versions = [start]
    for kind, at, chunk in steps:
        versions.append(apply_edit(versions[-1], kind, at, chunk))

    encoded = encode_all(versions, interval=codec.SNAPSHOT_INTERVAL)

    for number, raw in enumerate(versions):
        assert codec.decode_chain(chain_of(encoded, number)) == raw


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=5_000))
def test_a_snapshot_of_any_bytes_decodes_to_them(raw: bytes) -> None:
    body = codec.encode_snapshot(raw)

    assert body.encoding == codec.ZSTD
    assert body.raw_size == len(raw)
    assert codec.decode_chain([body]) == raw


@settings(max_examples=300, deadline=None)
@given(a=st.binary(max_size=300), b=st.binary(max_size=300), shared=st.binary(max_size=300))
def test_common_prefix_and_suffix_lengths_match_a_byte_by_byte_count(
    a: bytes, b: bytes, shared: bytes
) -> None:
    first, second = shared + a + shared, shared + b + shared

    prefix = codec.common_prefix_length(first, second)
    expected = 0
    while expected < min(len(first), len(second)) and first[expected] == second[expected]:
        expected += 1
    assert prefix == expected

    limit = min(len(first), len(second)) - prefix
    suffix = codec.common_suffix_length(first, second, limit=limit)
    expected = 0
    while expected < limit and first[-1 - expected] == second[-1 - expected]:
        expected += 1
    assert suffix == expected


def test_prefix_and_suffix_scans_cross_their_block_boundaries() -> None:
    shared = random.Random(3).randbytes(200_000)
    for cut in (0, 1, 65_535, 65_536, 65_537, 150_001, 199_999):
        changed = shared[:cut] + b"\x00\x01" + shared[cut:]
        assert codec.common_prefix_length(shared, changed) == cut + (
            shared[cut : cut + 1] == b"\x00"
        )
        assert (
            codec.common_suffix_length(shared, changed, limit=len(shared)) >= len(shared) - cut - 1
        )


def growing_chat(turns: int) -> list[bytes]:
    rng = random.Random(7)
    messages: list[dict[str, str]] = []
    versions = []
    for turn in range(turns):
        words = " ".join(rng.choice(["alpha", "beta", "gamma", "delta", "é✓"]) for _ in range(60))
        messages.append({"role": "user" if turn % 2 else "assistant", "content": words})
        versions.append(json.dumps({"id": "s", "messages": messages}).encode())
    return versions


def test_an_appended_turn_is_kept_as_a_small_delta_of_the_version_before() -> None:
    versions = growing_chat(40)

    encoded = encode_all(versions)

    assert encoded[0].encoding == codec.ZSTD
    for number in range(1, 40):
        assert encoded[number].is_delta
        assert encoded[number].base_version == number - 1
        assert len(encoded[number].payload) < 2 * (
            len(versions[number]) - len(versions[number - 1])
        )


def test_a_snapshot_is_taken_every_interval_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec, "SNAPSHOT_INTERVAL", 8)
    versions = growing_chat(30)

    encoded = encode_all(versions, interval=8)

    assert [n for n, body in enumerate(encoded) if not body.is_delta] == [0, 8, 16, 24]
    assert all(len(chain_of(encoded, n)) <= 8 for n in range(30))


def test_a_version_unlike_the_one_before_is_a_snapshot() -> None:
    before = json.dumps({"messages": ["a" * 500]}).encode()
    unlike = random.Random(1).randbytes(500)

    body = codec.encode_version(unlike, base_version=1, base_raw=before, base_chain_length=0)

    assert body.encoding == codec.ZSTD
    assert codec.decode_chain([body]) == unlike


def test_a_body_whose_bytes_do_not_match_its_sha256_raises_corrupt_body() -> None:
    versions = growing_chat(5)
    encoded = encode_all(versions)
    flipped = bytearray(versions[0])
    flipped[10] ^= 1
    # A snapshot of other bytes of the same size: decodes, but not to what was stored.
    encoded[0] = dataclasses.replace(
        encoded[0], payload=codec.encode_snapshot(bytes(flipped)).payload
    )

    with pytest.raises(CorruptBody, match="SHA-256"):
        codec.decode_chain(chain_of(encoded, 4))
    with pytest.raises(CorruptBody):
        codec.decode_chain([dataclasses.replace(encoded[1], encoding=codec.ZSTD, payload=b"junk")])


def test_a_delta_that_does_not_fit_its_base_raises_corrupt_body() -> None:
    versions = growing_chat(2)
    encoded = encode_all(versions)
    base = codec.encode_snapshot(b"short")

    with pytest.raises(CorruptBody):
        codec.decode_chain([base, encoded[1]])
    with pytest.raises(CorruptBody, match="snapshot"):
        codec.decode_chain([encoded[1]])


def test_a_raw_body_without_a_recorded_digest_reads_as_it_is() -> None:
    legacy = EncodedBody(encoding=codec.RAW, payload=b'{"old": 1}', sha256="", raw_size=None)

    assert codec.decode_chain([legacy]) == b'{"old": 1}'


def test_reading_the_longest_chain_of_a_one_megabyte_document_is_cheap() -> None:
    history = random.Random(5).randbytes(1_000_000)  # what came before: incompressible
    versions = [history + raw for raw in growing_chat(codec.SNAPSHOT_INTERVAL * 2)]
    encoded = encode_all(versions, interval=codec.SNAPSHOT_INTERVAL)
    longest = max(range(len(versions)), key=lambda n: len(chain_of(encoded, n)))
    chain = chain_of(encoded, longest)
    assert len(chain) == codec.SNAPSHOT_INTERVAL

    started = time.perf_counter()
    assert codec.decode_chain(chain) == versions[longest]
    # A few ms here; the bound is loose for a shared, loaded machine.
    assert time.perf_counter() - started < 0.25
