"""Run each fuzz harness on its seeds and on fixed-seed mutations.

CI cannot afford atheris' long runs; these tests execute the very harness
bodies (``fuzz.targets.*.one_input``) on the seed corpus, on the committed
distilled corpus when there is one, and on a few thousand deterministic
mutants, so a regression in a parser or a broken harness shows up here.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from firmware_bridge.ble.protocol import (
    ProtocolError,
    ReplyReassembler,
    SegmentationError,
    StatusRecord,
    decode_chunk,
    decode_command,
    decode_reply,
)
from firmware_bridge.logformat import CrcMismatchError, LogFormatError
from fuzz import SUPPRESS_ENV
from fuzz.mutate import mutants
from fuzz.summary import RunSummary, parse_output
from fuzz.targets import TARGET_NAMES, load_target
from fuzz.targets import ble_protocol as ble_harness
from fuzz.targets import logformat as logformat_harness
from fuzz.targets import pipeline as pipeline_harness
from fuzz.targets._common import BoundedReadStream, ContractViolation, suppressed
from fuzz.targets._logs import build_log, repair_crcs

pytestmark = pytest.mark.timeout(600)

CORPUS_DIR = Path(__file__).resolve().parents[2] / "fuzz" / "corpus"
# Fixed so that a failure names a mutant every machine can rebuild.
SMOKE_SEED = 20_250_614
# Mutants per target, sized to a few seconds each on a 2-core gateway.
MUTANTS = {
    "logformat": 10_000,
    "ble_protocol": 10_000,
    "suitlog": 3000,
    "pipeline": 500,
}


def _run_or_report(name: str, label: str, data: bytes) -> None:
    try:
        load_target(name).one_input(data)
    except Exception as exc:
        shown = data[:256].hex()
        raise AssertionError(
            f"{name} harness failed on {label} ({len(data)} bytes, first 256 "
            f"as hex: {shown}): {type(exc).__name__}: {exc}"
        ) from exc


@pytest.mark.parametrize("name", TARGET_NAMES)
def test_harness_passes_its_seeds(name: str) -> None:
    seeds = load_target(name).seeds()
    assert seeds
    for label, data in seeds.items():
        _run_or_report(name, f"seed {label}", data)


@pytest.mark.parametrize("name", TARGET_NAMES)
def test_harness_passes_committed_corpus(name: str) -> None:
    folder = CORPUS_DIR / name
    if not folder.is_dir():
        pytest.skip(f"no committed corpus for {name}")
    units = sorted(folder.iterdir())
    assert units
    for unit in units:
        _run_or_report(name, f"corpus unit {unit.name}", unit.read_bytes())


@pytest.mark.parametrize("name", TARGET_NAMES)
def test_harness_survives_fixed_seed_mutants(name: str) -> None:
    target = load_target(name)
    seeds = list(target.seeds().values())
    for index, data in enumerate(
        mutants(seeds, MUTANTS[name], SMOKE_SEED, target.MAX_LEN)
    ):
        _run_or_report(name, f"mutant {index} of seed {SMOKE_SEED}", data)


def test_logformat_seeds_decode_whole() -> None:
    for label, data in load_target("logformat").seeds().items():
        records = logformat_harness.decode_all(data)
        assert records >= 0, label
    assert logformat_harness.decode_all(build_log(40, samples_per_block=8)) == 40


def test_ble_seeds_each_parse_as_some_message() -> None:
    for label, data in ble_harness.seeds().items():
        if label == "segments-overflow":
            reassembler = ReplyReassembler()
            with pytest.raises(SegmentationError, match="reply <= 4096 bytes"):
                for segment in ble_harness.split_segments(data):
                    reassembler.feed(segment)
            continue
        if label.startswith("segments-"):
            reassembler = ReplyReassembler()
            done = [reassembler.feed(s) for s in ble_harness.split_segments(data)]
            assert done[-1] is not None, label
            decode_reply(done[-1])
            continue
        parsers = (decode_command, decode_reply, decode_chunk, StatusRecord.decode)
        parsed = 0
        for parser in parsers:
            try:
                parser(data)
            except ProtocolError:
                continue
            parsed += 1
        assert parsed >= 1, label


def test_renumber_segments_sets_counters_as_a_suit_would() -> None:
    segments = [b"\x85abc", b"\x3fdef", b"", b"\x40gh", b"\xc7i"]
    assert ble_harness.renumber_segments(segments) == [
        b"\x80abc",
        b"\x01def",
        b"",
        b"\x42gh",
        b"\xc0i",
    ]


def test_mutants_are_deterministic() -> None:
    seeds = [build_log(8, samples_per_block=4), b"\x01\x02\x03"]
    first = list(mutants(seeds, 50, 7, 4096))
    assert first == list(mutants(seeds, 50, 7, 4096))
    assert first != list(mutants(seeds, 50, 8, 4096))
    assert any(m not in seeds for m in first)


def test_repair_crcs_gets_a_mutated_block_past_its_checksum() -> None:
    data = bytearray(build_log(16, samples_per_block=8))
    data[96 + 16 + 5] ^= 0xFF  # a sample byte of the first block
    with pytest.raises(CrcMismatchError):
        logformat_harness.decode_all(bytes(data))
    assert logformat_harness.decode_all(repair_crcs(bytes(data))) == 16


def test_bounded_read_stream_refuses_a_huge_read() -> None:
    stream = BoundedReadStream(b"x" * 10, max_read_bytes=8)
    assert stream.read(8) == b"x" * 8
    with pytest.raises(ContractViolation):
        stream.read(9)
    with pytest.raises(ContractViolation):
        stream.read()


# The harnesses must not swallow what the contracts forbid: a parser that
# raises a foreign exception, or an error that points outside the input.


def test_logformat_harness_lets_a_foreign_error_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class BrokenReader:
        def __init__(self, *_: object, **__: object) -> None:
            raise IndexError("boom")

    monkeypatch.setattr(logformat_harness, "LogReader", BrokenReader)
    with pytest.raises(IndexError):
        logformat_harness.one_input(build_log(4))


def test_logformat_harness_flags_an_error_outside_the_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class FarOffReader:
        def __init__(self, *_: object, **__: object) -> None:
            raise LogFormatError("<fuzz>", 10**9, "magic", "invented")

    monkeypatch.setattr(logformat_harness, "LogReader", FarOffReader)
    with pytest.raises(ContractViolation):
        logformat_harness.one_input(b"\0" * 96)


def test_ble_harness_lets_a_foreign_error_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(_: bytes | bytearray) -> None:
        raise struct.error("unpack requires a buffer of 4 bytes")

    monkeypatch.setattr(ble_harness, "decode_chunk", broken)
    with pytest.raises(struct.error):
        ble_harness.one_input(b"\x00" * 12)


def test_ble_harness_flags_a_round_trip_mismatch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ble_harness, "encode_chunk", lambda *_: b"different")
    frame = ble_harness.seeds()["chunk-small"]
    with pytest.raises(ContractViolation):
        ble_harness.one_input(frame)


@pytest.mark.parametrize("name", ["suitlog", "pipeline"])
def test_processing_harness_lets_a_foreign_error_through(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from firmware_bridge.logformat import decoder

    harness = load_target(name)

    def broken(raw: bytes, source: str) -> None:
        raise OverflowError(f"{source}: invented")

    monkeypatch.setattr(decoder, "_parse_header", broken)
    header = build_log(0)
    assert zlib.crc32(header[:92]) == struct.unpack_from("<I", header, 92)[0]
    with pytest.raises(OverflowError):
        harness.one_input(header)


def test_suppression_lets_only_named_known_findings_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def utc_text() -> None:
        raise ValueError("year 20292 is out of range")

    def elsewhere() -> None:
        raise ValueError("year 20292 is out of range")

    def caught(function: Callable[[], None]) -> BaseException:
        with pytest.raises(ValueError) as info:
            function()
        return info.value

    known = pipeline_harness.KNOWN_FINDINGS
    monkeypatch.delenv(SUPPRESS_ENV, raising=False)
    assert not suppressed(caught(utc_text), known)
    monkeypatch.setenv(SUPPRESS_ENV, "start-utc-out-of-range")
    assert suppressed(caught(utc_text), known)
    assert not suppressed(caught(elsewhere), known)
    monkeypatch.setenv(SUPPRESS_ENV, "no-such-finding")
    with pytest.raises(ValueError, match="no such known finding"):
        suppressed(caught(utc_text), known)


def test_parse_output_reads_libfuzzer_figures() -> None:
    text = "\n".join(
        [
            "#8\tINITED cov: 37 ft: 60 corp: 5/2976b exec/s: 0 rss: 54Mb",
            "#273439\tDONE   cov: 57 ft: 131 corp: 34/11197b lim: 3222 "
            "exec/s: 13020 rss: 54Mb",
            "Done 273439 runs in 21 second(s)",
            "stat::number_of_executed_units: 273439",
            "stat::average_exec_per_sec:     13020",
            "stat::new_units_added:          210",
            "stat::slowest_unit_time_sec:    0",
            "stat::peak_rss_mb:              54",
        ]
    )
    summary = RunSummary("logformat", 20, "2026-12-04T16:00:00+00:00")
    parse_output(text, summary)
    assert (summary.executions, summary.execs_per_second) == (273_439, 13_020)
    assert (summary.coverage_edges, summary.features) == (57, 131)
    assert (summary.corpus_units, summary.corpus_size) == (34, "11197b")
    assert (summary.new_units_added, summary.peak_rss_mb) == (210, 54)
    assert "273439 executions, 13020 exec/s, cov 57" in summary.line()
