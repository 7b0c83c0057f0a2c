"""Deterministic byte mutations for the fuzz smoke tests (no atheris needed).

A small cousin of libFuzzer's mutators: bit flips, random and "interesting"
bytes and integers, deletions, insertions, duplicated ranges, truncation and
splices between seeds, one to four per mutant. Same seeds and same ``seed``
give the same mutants on every machine, so a smoke failure reproduces.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterator, Sequence

__all__ = ["mutants"]

_INTERESTING_U32 = (
    0,
    1,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x10000,
    4 * 1024 * 1024,
    4 * 1024 * 1024 + 1,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFF,
)
_MAX_OPS = 4


def _flip_bit(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> None:
    if data:
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)


def _random_byte(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> None:
    if data:
        data[rng.randrange(len(data))] = rng.randrange(256)


def _interesting_int(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> None:
    size = rng.choice((1, 2, 4))
    if len(data) < size:
        return
    value = rng.choice(_INTERESTING_U32) & ((1 << (8 * size)) - 1)
    at = rng.randrange(len(data) - size + 1)
    data[at : at + size] = value.to_bytes(size, "little")


def _nudge_u32(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> None:
    if len(data) < 4:
        return
    at = rng.randrange(len(data) - 3)
    (value,) = struct.unpack_from("<I", data, at)
    struct.pack_into("<I", data, at, (value + rng.randint(-16, 16)) & 0xFFFFFFFF)


def _delete(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> None:
    if data:
        at = rng.randrange(len(data))
        del data[at : at + rng.randint(1, 64)]


def _insert(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> None:
    at = rng.randint(0, len(data))
    data[at:at] = rng.randbytes(rng.randint(1, 32))


def _duplicate(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> None:
    if data:
        start = rng.randrange(len(data))
        piece = data[start : start + rng.randint(1, 256)]
        at = rng.randint(0, len(data))
        data[at:at] = piece


def _truncate(rng: random.Random, data: bytearray, _: Sequence[bytes]) -> None:
    if data:
        del data[rng.randrange(len(data)) :]


def _splice(rng: random.Random, data: bytearray, seeds: Sequence[bytes]) -> None:
    other = rng.choice(seeds)
    if other:
        cut = rng.randint(0, len(data))
        data[cut:] = other[rng.randrange(len(other)) :]


_OPERATIONS: tuple[Callable[[random.Random, bytearray, Sequence[bytes]], None], ...] = (
    _flip_bit,
    _random_byte,
    _interesting_int,
    _nudge_u32,
    _delete,
    _insert,
    _duplicate,
    _truncate,
    _splice,
)


def mutants(
    seeds: Sequence[bytes], count: int, seed: int, max_len: int
) -> Iterator[bytes]:
    """Yield ``count`` mutants of ``seeds``, at most ``max_len`` bytes each."""
    rng = random.Random(seed)
    for _ in range(count):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, _MAX_OPS)):
            rng.choice(_OPERATIONS)(rng, data, seeds)
        yield bytes(data[:max_len])
