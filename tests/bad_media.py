"""Damaged files made on purpose: image bombs, broken MJPG frames, re-signed maps with bad indexes."""
import json
import os
import struct
import zlib

import numpy as np

from jist_edge.fileio import file_record, write_json_atomic
from jist_edge.search.index_check import HEADER
from jist_edge.maps.store import INDEX_FILE, MANIFEST_FILE


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 40000, height: int = 40000) -> bytes:
    """A valid PNG header declaring width x height RGB pixels, with a tiny IDAT (about 1 KB in all)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000000, 9)) + _png_chunk(b"IEND", b""))


def bomb_bmp(width: int = 40000, height: int = 40000) -> bytes:
    """A 24-bit BMP header declaring width x height pixels, followed by 64 bytes of pixels."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    pixels = bytes(64)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + len(pixels), 0, 0, 14 + len(info)) + info + pixels


def mjpg_frame_offsets(data: bytes):
    """Byte offsets of every frame's JPEG (SOI right after its '00dc' chunk header) in an MJPG .avi."""
    out, at = [], data.find(b"00dc")
    while at >= 0:
        if data[at + 8:at + 10] == b"\xff\xd8":
            out.append(at + 8)
        at = data.find(b"00dc", at + 4)
    return out


def damage_mjpg_frame(path: str, frame: int, how: str) -> None:
    """Damage one frame's JPEG in place: 'headers' overwrites its markers (FFmpeg finds no JPEG
    in it), 'early_eoi' ends its scan early (FFmpeg reports 'overread' and conceals the rest)."""
    data = bytearray(open(path, "rb").read())
    start = mjpg_frame_offsets(bytes(data))[frame]
    sos = data.find(b"\xff\xda", start)
    if how == "headers":
        data[start:sos] = b"\x55" * (sos - start)
    elif how == "early_eoi":
        data[sos + 30:sos + 32] = b"\xff\xd9"
    else:
        raise ValueError(how)
    with open(path, "wb") as handle:
        handle.write(bytes(data))


def insert_junk_packet(path: str, before_frame: int) -> None:
    """A 16-byte '00dc' chunk that is no JPEG, before one frame (RIFF/LIST sizes fixed, idx1 removed so the
    demuxer reads chunks in order): the decoder counts it as a frame of its own."""
    data = bytearray(open(path, "rb").read())
    at = mjpg_frame_offsets(bytes(data))[before_frame] - 8
    junk = b"00dc" + struct.pack("<I", 16) + bytes(range(16))
    data[at:at] = junk
    struct.pack_into("<I", data, 4, struct.unpack_from("<I", data, 4)[0] + len(junk))
    movi = data.find(b"movi") - 8
    struct.pack_into("<I", data, movi + 4, struct.unpack_from("<I", data, movi + 4)[0] + len(junk))
    idx1 = data.rfind(b"idx1")
    data[idx1:idx1 + 4] = b"JUNK"
    with open(path, "wb") as handle:
        handle.write(bytes(data))


def resign_map(map_dir: str) -> None:
    """Recompute every file's size and sha256 in the manifest (and its own checksum, where maps have one),
    as write_map does: anyone who edits a shared map can."""
    manifest_path = os.path.join(map_dir, MANIFEST_FILE)
    with open(manifest_path) as handle:
        manifest = json.load(handle)
    for name in manifest["files"]:
        manifest["files"][name] = file_record(os.path.join(map_dir, name))
    if "manifest_sha256" in manifest:  # the map manifest's own checksum (issue 10, the files half)
        from jist_edge.fileio import manifest_digest

        manifest["manifest_sha256"] = manifest_digest(manifest)
    write_json_atomic(manifest_path, manifest)


class IndexFile(object):
    """An hnswlib index file as editable parts: header fields, level-0 words, per-element upper levels."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.data = bytearray(open(path, "rb").read())
        self.head = np.frombuffer(bytes(self.data[:HEADER.itemsize]), dtype=HEADER)[0]
        self.count = int(self.head["count"])
        self.size = int(self.head["size_data_per_element"])
        self.maxM, self.maxM0 = int(self.head["maxM"]), int(self.head["maxM0"])
        self.levels, self.upper = [], {}  # element -> byte offset of its first upper-level block
        at = HEADER.itemsize + self.count * self.size
        for element in range(self.count):
            size = struct.unpack_from("<I", self.data, at)[0]
            self.levels.append(size // (4 + 4 * self.maxM))
            if size:
                self.upper[element] = at + 4
            at += 4 + size

    def set_header(self, field: str, value) -> None:
        offset = HEADER.fields[field][1]
        struct.pack_into("<" + HEADER.fields[field][0].char, self.data, offset, value)

    def word0(self, element: int, slot: int) -> int:
        """Byte offset of a level-0 word of an element: slot 0 is the list header, 1.. the links."""
        return HEADER.itemsize + element * self.size + 4 * slot

    def upper_word(self, element: int, level: int, slot: int) -> int:
        return self.upper[element] + (level - 1) * (4 + 4 * self.maxM) + 4 * slot

    def put(self, offset: int, value: int) -> None:
        struct.pack_into("<I", self.data, offset, value)

    def get(self, offset: int) -> int:
        return struct.unpack_from("<I", self.data, offset)[0]

    def save(self, data=None) -> None:
        with open(self.path, "wb") as handle:
            handle.write(bytes(self.data if data is None else data))


def index_path(map_dir: str) -> str:
    return os.path.join(map_dir, INDEX_FILE)
