"""Structure check of an hnswlib index file, before hnswlib is allowed to open it.

A map is a file people share. A checksum proves a file is what its manifest says, not
that the manifest's author wrote a sound index: hnswlib trusts every field and every
neighbour id of its file, so an out-of-range link or entry point segfaults the process
at query time (DESIGN.md). This module reads the file the way hnswlib 0.8's
``saveIndex``/``loadIndex`` lay it out (hnswalg.h) and refuses anything hnswlib could
trip on, with one line naming the file and the first fault.

Layout (little-endian; size_t is 8 bytes, tableint and linklistsizeint 4)::

    header   offsetLevel0 max_elements cur_element_count size_data_per_element
             label_offset offsetData (size_t each), maxlevel (int32),
             enterpoint_node (uint32), maxM maxM0 M (size_t), mult (double),
             ef_construction (size_t)                                   96 bytes
    level 0  cur_element_count records of size_data_per_element bytes:
             [count:uint16, flags:uint8, 0:uint8][maxM0 x uint32 ids]
             [dim x float32 vector][label:uint64]
    upper    per element: linkListSize (uint32), then linkListSize bytes =
             level x ([count:uint16, 0, 0][maxM x uint32 ids])

Every step is vectorised with numpy over a memory map; only the variable-length upper
part needs a walk, and it visits just the elements that have upper levels (about 1 in M).
"""
import math
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from jist_edge.errors import IntegrityError

HEADER = np.dtype([
    ("offset_level0", "<u8"), ("max_elements", "<u8"), ("count", "<u8"), ("size_data_per_element", "<u8"),
    ("label_offset", "<u8"), ("offset_data", "<u8"), ("maxlevel", "<i4"), ("enterpoint", "<u4"),
    ("maxM", "<u8"), ("maxM0", "<u8"), ("M", "<u8"), ("mult", "<f8"), ("ef_construction", "<u8"),
])
_DELETE_MARK_SHIFT = 16  # byte 2 of a level-0 list header holds hnswlib's "deleted" flag
# hnswlib draws levels as floor(-ln(U) * 1/ln(M)): past 64 no real index goes
MAX_LEVEL = 64


class _Fault(Exception):
    """What is wrong, before the file name is added."""


def check_hnsw_index(path: str, dim: int, count: int, M: Optional[int] = None,
                     ef_construction: Optional[int] = None) -> Dict[str, Any]:
    """Raise IntegrityError naming ``path`` unless it is an hnswlib index of ``count`` ``dim``-D
    float32 vectors labelled 0..count-1 whose every field and link hnswlib can follow safely.

    ``M`` and ``ef_construction`` (from the map manifest) are compared when given.
    Returns what was read: header fields and the number of elements per level."""
    try:
        data = np.memmap(path, dtype=np.uint8, mode="r") if os.path.getsize(path) else np.zeros(0, np.uint8)
    except (OSError, ValueError) as exc:
        raise IntegrityError("map index {} cannot be read: {}".format(path, exc))
    try:
        head = _check_header(data, int(dim), int(count), M, ef_construction)
        levels = _check_upper_levels(data, head, int(count))
        _check_level0(data, head, int(count))
        _check_levels(head, levels)
    except _Fault as fault:
        raise IntegrityError("map index {} is not a sound hnswlib index: {}".format(path, fault))
    finally:
        del data
    return dict(head, levels=np.bincount(levels).tolist() if len(levels) else [])


def _check_header(data: np.ndarray, dim: int, count: int, M: Optional[int],
                  ef_construction: Optional[int]) -> Dict[str, Any]:
    if data.size < HEADER.itemsize:
        raise _Fault("{} bytes, shorter than hnswlib's {}-byte header".format(data.size, HEADER.itemsize))
    raw = np.frombuffer(data[:HEADER.itemsize].tobytes(), dtype=HEADER)[0]
    h = {name: raw[name].item() for name in HEADER.names}
    links0 = 4 + 4 * h["maxM0"] if h["maxM0"] < 1 << 20 else -1
    expect = [
        ("offsetLevel0", h["offset_level0"], 0),
        ("cur_element_count", h["count"], count),
        ("offsetData", h["offset_data"], links0),
        ("label_offset", h["label_offset"], links0 + 4 * dim),
        ("size_data_per_element", h["size_data_per_element"], links0 + 4 * dim + 8),
    ]
    if M is not None:
        expect += [("M", h["M"], int(M))]
    expect += [("maxM", h["maxM"], h["M"]), ("maxM0", h["maxM0"], 2 * h["M"])]
    if ef_construction is not None:  # hnswlib stores max(ef_construction, M)
        expect += [("ef_construction", h["ef_construction"], max(int(ef_construction), h["M"]))]
    stored_dim = (h["label_offset"] - h["offset_data"]) // 4
    if h["offset_data"] == links0 and stored_dim != dim:
        raise _Fault("it holds {}-D vectors, the map's manifest says {}-D".format(stored_dim, dim))
    for name, got, want in expect:
        if got != want:
            raise _Fault("header field {} is {}, expected {}{}".format(
                name, got, want, " (the manifest's count)" if name == "cur_element_count" else
                " (for {}-D float32 vectors)".format(dim) if name in ("label_offset", "size_data_per_element") else ""))
    if h["max_elements"] < count:
        raise _Fault("header field max_elements is {}, below the element count {}".format(h["max_elements"], count))
    if not (math.isfinite(h["mult"]) and h["mult"] > 0):
        raise _Fault("header field mult is {}, expected a positive number".format(h["mult"]))
    if not (0 if count else -1) <= h["maxlevel"] <= MAX_LEVEL:
        raise _Fault("header field maxlevel is {}, expected 0..{}".format(h["maxlevel"], MAX_LEVEL))
    if count and h["enterpoint"] >= count:
        raise _Fault("entry point {} is not one of the {} elements".format(h["enterpoint"], count))
    level0_end = HEADER.itemsize + count * h["size_data_per_element"]
    if data.size < level0_end + 4 * count:
        raise _Fault("{} bytes, too short for {} elements of {} bytes (truncated?)".format(
            data.size, count, h["size_data_per_element"]))
    if (data.size - level0_end) % 4:
        raise _Fault("{} bytes, which no hnswlib index of {} elements has".format(data.size, count))
    return h


def _check_level0(data: np.ndarray, h: Dict[str, Any], count: int) -> None:
    """Level-0 lists: counts <= maxM0, no deleted marks, ids < count; labels 0..count-1 once each."""
    if not count:
        return
    words = h["size_data_per_element"] // 4
    table = np.ndarray((count, words), dtype="<u4", buffer=data, offset=HEADER.itemsize)
    heads = np.array(table[:, 0])
    _check_list_heads(heads, h["maxM0"], "level-0", deleted_ok=False)
    _check_ids(table[:, 1:1 + h["maxM0"]], heads & 0xFFFF, count, "level-0")
    label = h["label_offset"] // 4
    low, high = np.array(table[:, label]), np.array(table[:, label + 1])
    if high.any() or (low >= count).any():
        bad = int(np.flatnonzero(high.astype(bool) | (low >= count))[0])
        raise _Fault("element {} has label {}, outside 0..{}".format(
            bad, int(low[bad]) + (int(high[bad]) << 32), count - 1))
    seen = np.bincount(low.astype(np.int64), minlength=count)
    if (seen > 1).any():  # count labels in 0..count-1: a repeated one means another is missing
        dup = int(np.argmax(seen > 1))
        raise _Fault("label {} is used by {} elements".format(dup, int(seen[dup])))


def _check_list_heads(heads: np.ndarray, limit: int, where: str, deleted_ok: bool) -> None:
    over = (heads & 0xFFFF) > limit
    if over.any():
        first = int(np.flatnonzero(over)[0])
        raise _Fault("a {} neighbour list (#{}) holds {} links, more than {}".format(
            where, first, int(heads[first] & 0xFFFF), limit))
    if not deleted_ok and (heads >> _DELETE_MARK_SHIFT).any():
        first = int(np.flatnonzero(heads >> _DELETE_MARK_SHIFT)[0])
        raise _Fault("element {} is marked deleted or its list header is damaged (0x{:08x})".format(
            first, int(heads[first])))


def _check_ids(ids: np.ndarray, counts: np.ndarray, count: int, where: str,
               levels: Optional[np.ndarray] = None, block_level: Optional[np.ndarray] = None) -> None:
    """Every used slot (column < its list's count) holds an element id; upper-level
    links must point at elements that have that level (hnswlib follows them there).

    Slots past a list's count are never read by hnswlib; in a sound file they hold ids too,
    so one max() over the whole table settles the usual case without building masks."""
    if ids.size and int(ids.max()) >= count:
        used = np.arange(ids.shape[1], dtype=np.uint32)[None, :] < counts[:, None]
        bad = used & (ids >= count)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise _Fault("a {} link (list #{}, slot {}) points at element {}, but there are {}".format(
                where, int(row), int(col), int(ids[row, col]), count))
    if levels is not None:
        used = np.arange(ids.shape[1], dtype=np.uint32)[None, :] < counts[:, None]
        target = levels[np.where(used, ids, 0)]
        low = used & (target < block_level[:, None])
        if low.any():
            row, col = np.argwhere(low)[0]
            raise _Fault("a level-{} link points at element {}, which has only level {}".format(
                int(block_level[row]), int(ids[row, col]), int(target[row, col])))


def _check_upper_levels(data: np.ndarray, h: Dict[str, Any], count: int) -> np.ndarray:
    """Walk the per-element upper-level records; check them; return each element's level."""
    start = HEADER.itemsize + count * h["size_data_per_element"]
    tail = np.ndarray(((data.size - start) // 4,), dtype="<u4", buffer=data, offset=start)
    block_words = 1 + h["maxM"]
    records = _walk_records(tail, count, 4 * block_words, h["maxlevel"])
    levels = np.zeros(count, dtype=np.int64)
    if not records:
        return levels
    elems, firsts, nlev = (np.array(col, dtype=np.int64) for col in zip(*records))
    levels[elems] = nlev
    # one row per (element, level >= 1) block: where it starts in the tail and which level it is
    owner = np.repeat(np.arange(len(elems)), nlev)
    within = np.arange(len(owner)) - np.repeat(np.cumsum(nlev) - nlev, nlev)
    block_start = firsts[owner] + 1 + within * block_words
    heads = tail[block_start]
    _check_list_heads(heads, h["maxM"], "upper-level", deleted_ok=True)
    ids = tail[block_start[:, None] + 1 + np.arange(h["maxM"])[None, :]]
    _check_ids(ids, heads & 0xFFFF, count, "upper-level", levels, within + 1)
    return levels


def _walk_records(tail: np.ndarray, count: int, block_bytes: int, maxlevel: int) -> List[Tuple[int, int, int]]:
    """(element, word offset, level) of every element with upper levels.

    Records are [size][size bytes]; a level-0 element's record is one zero word. The
    walk visits only candidate record starts (words that are a whole number of blocks,
    at most maxlevel of them) and proves with a running count of non-zero words that
    nothing but zero words (level-0 elements) lies between two records, so it takes one
    step per element with upper levels, not one per element."""
    nonzero = tail != 0
    seen = np.concatenate(([0], np.cumsum(nonzero, dtype=np.int64)))  # non-zero words before each offset
    cand = np.flatnonzero(nonzero & (tail % block_bytes == 0) & (tail <= maxlevel * block_bytes))
    levels = (tail[cand] // block_bytes).astype(np.int64)
    ends = cand + 1 + levels * (block_bytes // 4)
    follow = np.searchsorted(cand, ends).tolist()
    cand, levels, ends = cand.tolist(), levels.tolist(), ends.tolist()
    out = []  # type: List[Tuple[int, int, int]]
    pos = elem = k = 0
    n_words, n_cand = len(tail), len(cand)
    while elem < count:
        nxt = min(cand[k] if k < n_cand else n_words, pos + count - elem)
        if seen[nxt] != seen[pos]:
            _bad_record(tail, pos, elem, block_bytes, maxlevel)
        elem += nxt - pos
        pos = nxt
        if elem == count:
            break
        if k >= n_cand:
            raise _Fault("the file ends after {} of {} elements' records (truncated?)".format(elem, count))
        if ends[k] > n_words:
            raise _Fault("element {}'s upper-level record runs past the end of the file (truncated?)".format(elem))
        out.append((elem, nxt, levels[k]))
        pos, elem, k = ends[k], elem + 1, follow[k]
    if pos != n_words:
        raise _Fault("{} bytes follow the last element's record".format(4 * (n_words - pos)))
    return out


def _bad_record(tail: np.ndarray, pos: int, elem: int, block_bytes: int, maxlevel: int) -> None:
    """Raise for the first record from ``pos`` on whose size word is no whole number of blocks up to maxlevel."""
    first = pos + int(np.flatnonzero(tail[pos:])[0])
    size = int(tail[first])
    raise _Fault("element {}'s upper-level record has {} bytes, not {} of {}-byte blocks".format(
        elem + first - pos, size, "a whole number" if size % block_bytes else "at most maxlevel={}".format(maxlevel),
        block_bytes))


def _check_levels(h: Dict[str, Any], levels: np.ndarray) -> None:
    if not len(levels):
        return
    top = int(levels.max())
    if top != h["maxlevel"]:
        raise _Fault("header field maxlevel is {}, but the highest element level is {}".format(h["maxlevel"], top))
    if levels[h["enterpoint"]] != h["maxlevel"]:
        raise _Fault("entry point {} has level {}, not the top level {}".format(
            h["enterpoint"], int(levels[h["enterpoint"]]), h["maxlevel"]))
