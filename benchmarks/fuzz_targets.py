"""The parsers of what a shared bundle or map brings, each as a fuzz target over bytes, with seeds.

A target either returns, or raises JistEdgeError (a clean one-line refusal); anything else
(KeyError, TypeError, a NaN that got through...) is a finding. Targets that read files write
the input into a scratch folder first, since that is how the data arrives.
"""
import json
import math
import os
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

from jist_edge.errors import JistEdgeError

MAP_MANIFEST = {
    "bundle": {"bundle_id": "16fcf7474793e4e8", "height": 64, "path": "/x/model", "random_init": True,
               "seqgem_eps": 1e-06, "seqgem_p": 2.42, "width": 96},
    "counts": {"frames": 12, "positioned_frames": 12, "sequences": 8, "skipped_frames": 2},
    "created": "2026-12-02T01:36:47Z", "dim": 512,
    "drives": [{"frames": 12, "positions": {"frame": "metric"}, "skipped_frames": 2,
                "source": {"kind": "images", "path": "/x/imgs", "stride": 1}},
               ],
    "files": {"index.hnsw": {"bytes": 17120, "sha256": "76ea"}, "sequences.npy": {"bytes": 8320, "sha256": "8f69"}},
    "format": "jist-edge-map", "format_version": 1,
    "index": {"M": 8, "build_threads": 1, "ef_construction": 50, "file": "index.hnsw", "kind": "hnsw",
              "library": "hnswlib", "random_seed": 100},
    "seq_len": 5, "source": {"kind": "images", "path": "/x/imgs", "stride": 1}, "space": "l2",
    "storage": {"frame_dtype": "float32", "sequence_dtype": "float16"}, "tools": {"jist_edge": "0.1.0"},
}
LATLON_DRIVE = {"frames": 12, "positions": {"frame": "latlon", "origin": [48.1, 11.5]}, "skipped_frames": 0,
                "source": {"kind": "video", "path": "/x/a.avi"}}
STATS = {
    "confuser_best": {"p100": 3.6e-4, "p25": 3.0e-4, "p5": 2.9e-4, "p50": 3.0e-4, "p75": 3.3e-4, "p95": 3.5e-4,
                      "p99": 3.6e-4},
    "confuser_kth": None, "confuser_spread": None, "exclusion": {"radius_places": 0, "rule": "self"}, "k": 7,
    "next_place": {"p100": 2e-3, "p25": 1.8e-3, "p5": 1.7e-3, "p50": 1.9e-3, "p75": 2e-3, "p95": 2e-3, "p99": 2e-3},
    "place_spacing_m": 2.0, "places": 8, "probes": 8, "probes_with_confusers": 8, "version": 1,
}
POSITIONS_CSV = b"frame,easting,northing\n0,1.5,2.5\n1,3.0,4.0\nimg2.png,5,6\n"
LATLON_CSV = b"frame,lat,lon\n0,48.1,11.5\n1,48.1001,11.5002\n"
VPR_NAMES = [b"@0.00@5000.00@frame00000@.png", b"@353.2@4521.1@17@@@@@@20170803@.jpg", b"frame7.png"]


def _bundle_manifest() -> Dict[str, Any]:
    from jist_edge.bundle import make_manifest

    manifest = make_manifest(64, 96, 5, 512, 3.0, 3.0, 17, True, {"torch": "x"}, seed=0)
    manifest["files"] = {"encoder.onnx": {"sha256": "a", "bytes": 1}, "sequence.onnx": {"sha256": "b", "bytes": 1}}
    manifest["bundle_id"] = "0123456789abcdef"
    manifest["manifest_sha256"] = "x"
    return manifest


def _json(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def _where(scratch: str, name: str) -> str:
    return os.path.join(scratch, name)


def _write(scratch: str, name: str, data: bytes) -> str:
    path = _where(scratch, name)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def bundle_manifest(data: bytes, scratch: str) -> None:
    from jist_edge.bundle import Bundle, bundle_identity, validate_manifest

    manifest = _json(data)
    if not isinstance(manifest, dict):
        return
    validate_manifest(manifest, "fuzz/manifest.json")
    bundle_identity(manifest)
    bundle = Bundle(scratch, manifest)
    for value in (bundle.gem_p, bundle.seqgem_p, bundle.seqgem_eps, bundle.scale) + bundle.std + bundle.mean:
        if not math.isfinite(value):
            raise AssertionError("a non-finite number passed the bundle manifest check: {!r}".format(value))


def map_manifest(data: bytes, scratch: str) -> None:
    from jist_edge.maps import drives
    from jist_edge.maps.store import validate_manifest

    manifest = _json(data)
    if not isinstance(manifest, dict):
        return
    validate_manifest(manifest, "fuzz/map/manifest.json")
    drives.manifest_frame_counts(manifest)
    for record in drives.drive_records(manifest):  # what map info and merge read next
        drives.describe_frame(record.get("positions") or {})


def distance_stats(data: bytes, scratch: str) -> None:
    from jist_edge.filter.distance_stats import _made_for, check_stats

    stats = _json(data)
    if not isinstance(stats, dict):
        return
    check_stats(stats, "fuzz/distance_stats.json")
    _made_for(stats, 25.0)


def positions_csv(data: bytes, scratch: str) -> None:
    from jist_edge.positions import read_positions_frame

    table, _ = read_positions_frame(_write(scratch, "positions.csv", data))
    for a, b in table.values():
        if not (math.isfinite(a) and math.isfinite(b)):
            raise AssertionError("a non-finite position passed the CSV check")


def vpr_name(data: bytes, scratch: str) -> None:
    from jist_edge.positions import order_key, position_from_name, sort_frame_names, timestamp_from_name

    name = data.decode("utf-8", "replace")
    position = position_from_name(name)
    if position is not None and not all(math.isfinite(v) and abs(v) <= 1e8 for v in position):
        raise AssertionError("an absurd position passed the name check: {!r}".format(position))
    timestamp_from_name(name)
    order_key(name)
    sort_frame_names([name, "@1@2@x@.png", name + "0"])


def hnsw_structure(data: bytes, scratch: str) -> None:
    from jist_edge.search.index_check import check_hnsw_index

    check_hnsw_index(_write(scratch, "index.hnsw", data), HNSW_DIM, HNSW_COUNT)


def int8_header(data: bytes, scratch: str) -> None:
    from jist_edge.encoder.onnxruntime import int8_model
    from jist_edge.encoder.tensorrt.cache import header_path

    model = _where(scratch, int8_model.FILE_NAME)
    if not os.path.exists(model):
        with open(model, "wb") as handle:
            handle.write(INT8_MODEL)
    _write(scratch, os.path.basename(header_path(model)), data)
    try:
        _, header = int8_model.load_model(model, INT8_EXPECTED)
    except JistEdgeError:
        header = _json(data)
        if not isinstance(header, dict):
            return
    int8_model.passed(header)
    int8_model.is_current(model, INT8_EXPECTED)


def engine_header(data: bytes, scratch: str) -> None:
    from jist_edge.encoder.tensorrt.cache import header_path, load_engine

    engine = _where(scratch, "encoder.engine")
    if not os.path.exists(engine):
        with open(engine, "wb") as handle:
            handle.write(b"engine bytes")
    _write(scratch, os.path.basename(header_path(engine)), data)
    load_engine(engine, ENGINE_EXPECTED)


def onnx_external(data: bytes, scratch: str) -> None:
    from jist_edge.onnx_external import external_locations

    external_locations(_write(scratch, "encoder.onnx", data))


HNSW_DIM, HNSW_COUNT = 4, 12
INT8_MODEL = b"an int8 model"
INT8_EXPECTED = {"format": "jist-edge-cpu-int8", "format_version": 1, "recipe": "u8s8-qdq-per-channel-head-fp32",
                 "onnxruntime": "1.0", "bundle_id": "0123456789abcdef", "onnx_sha256": "ab" * 32,
                 "input_shape": [3, 64, 96], "calibration": None}
ENGINE_EXPECTED = {"format": "jist-edge-engine", "format_version": 1, "tensorrt": "8.2.1", "precision": "fp16",
                   "onnx_sha256": "ab" * 32}

TARGETS = [
    ("bundle_manifest", bundle_manifest), ("map_manifest", map_manifest), ("distance_stats", distance_stats),
    ("positions_csv", positions_csv), ("vpr_name", vpr_name), ("hnsw_structure", hnsw_structure),
    ("int8_header", int8_header), ("engine_header", engine_header), ("onnx_external", onnx_external),
]  # type: List[Tuple[str, Callable[[bytes, str], None]]]


def seeds(scratch: str) -> Dict[str, List[bytes]]:
    """Valid inputs per target, from which the fuzzer mutates."""
    from jist_edge.encoder.onnxruntime import int8_model

    latlon = dict(MAP_MANIFEST, drives=[LATLON_DRIVE])
    int8 = dict(INT8_EXPECTED, fidelity={"passed": True}, model_sha256="00", model_bytes=len(INT8_MODEL))
    try:
        path = os.path.join(scratch, "seed-" + int8_model.FILE_NAME)
        int8 = int8_model.write_model(path, INT8_MODEL, INT8_EXPECTED, {"passed": True, "forced": False})
    except JistEdgeError:
        pass
    engine = dict(ENGINE_EXPECTED, engine_sha256="00", engine_bytes=12)
    return {
        "bundle_manifest": [json.dumps(_bundle_manifest()).encode("utf-8")],
        "map_manifest": [json.dumps(MAP_MANIFEST).encode("utf-8"), json.dumps(latlon).encode("utf-8")],
        "distance_stats": [json.dumps(STATS).encode("utf-8")],
        "positions_csv": [POSITIONS_CSV, LATLON_CSV],
        "vpr_name": list(VPR_NAMES),
        "hnsw_structure": [_hnsw_seed(scratch)],
        "int8_header": [json.dumps(int8).encode("utf-8")],
        "engine_header": [json.dumps(engine).encode("utf-8")],
        "onnx_external": [_onnx_seed()],
    }


def _hnsw_seed(scratch: str) -> bytes:
    import hnswlib

    index = hnswlib.Index(space="l2", dim=HNSW_DIM)
    index.init_index(max_elements=HNSW_COUNT, M=4, ef_construction=20, random_seed=1)
    index.add_items(np.random.RandomState(0).rand(HNSW_COUNT, HNSW_DIM).astype(np.float32), np.arange(HNSW_COUNT),
                    num_threads=1)
    path = os.path.join(scratch, "seed.hnsw")
    index.save_index(path)
    with open(path, "rb") as handle:
        return handle.read()


def _onnx_seed() -> bytes:
    """A graph with one initializer whose data is external (location w.bin), in wire format."""
    def field(number: int, payload: bytes) -> bytes:
        out, n = bytearray([(number << 3) | 2]), len(payload)
        while True:
            byte, n = n & 0x7F, n >> 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out) + payload

    entry = field(1, b"location") + field(2, b"w.bin")
    tensor = field(8, b"w") + field(13, entry) + bytes([14 << 3, 1])
    return field(7, field(5, tensor))
