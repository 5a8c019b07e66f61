"""The engine cache: a TensorRT engine is only ever loaded on the setup it was built for.

Engines do not move between TensorRT versions or GPU models, and an engine built
from an older export computes the wrong descriptors without any error. So every
engine file ``<model>-<precision>.engine`` has a header ``<engine>.json`` beside it
recording what it was built from and for, the typing path included (weakly typed
flags on TensorRT 8.x, a strongly typed ONNX from 10 on); loading compares every
field with the running setup and refuses a mismatch with a message that names the field (a JetPack
upgrade changes ``tensorrt``, an engine copied from another device changes ``gpu``,
a re-export changes ``onnx_sha256`` and ``bundle_id``). The header also holds the
engine's sha256, so a truncated or swapped engine file is refused too.

Plain functions only: no TensorRT needed, tested everywhere.
"""
import json
import os
import re
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from jist_edge.errors import IntegrityError, JistEdgeError
from jist_edge.fileio import read_json, sha256_bytes, write_bytes_atomic, write_json_atomic

FORMAT = "jist-edge-engine"
FORMAT_VERSION = 2  # 2: the typing path (weak/strong) is part of the identity

# Every field that decides whether an engine is valid here, in the order messages use.
IDENTITY_FIELDS = (
    "format",
    "format_version",
    "tensorrt",
    "typing",
    "gpu",
    "compute_capability",
    "model",
    "precision",
    "input_shape",
    "profile",
    "onnx_sha256",
    "bundle_id",
)

_WHY = {
    "tensorrt": "engines do not move between TensorRT versions (JetPack upgrade?)",
    "typing": "built on the other TensorRT typing path (weakly typed on 8.x, strongly typed from 10)",
    "gpu": "engines do not move between GPU models (engine copied from another device?)",
    "compute_capability": "engines do not move between GPU architectures",
    "onnx_sha256": "the ONNX file changed since the build (bundle re-exported?)",
    "bundle_id": "the model bundle changed since the build (bundle re-exported?)",
    "precision": "built for another precision",
    "input_shape": "built for another input size",
    "profile": "built for another batch range (--max-batch)",
    "model": "built from another ONNX file of the bundle",
    "format_version": "written by another jist-edge version",
    "format": "not a jist-edge engine header",
}


class EngineMismatch(IntegrityError):
    """A cached engine that must not be loaded here; ``fields`` names what differs."""

    def __init__(self, message: str, fields: Sequence[str]) -> None:
        super(EngineMismatch, self).__init__(message)
        self.fields = list(fields)


def expected_header(
    tensorrt: str,
    typing: str,
    gpu: str,
    compute_capability: str,
    model: str,
    precision: str,
    input_shape: Sequence[int],
    profile: Dict[str, Sequence[int]],
    onnx_sha256: str,
    bundle_id: str,
) -> Dict[str, Any]:
    """The identity an engine must have to be loaded on this setup (JSON-ready)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tensorrt": str(tensorrt),
        "typing": str(typing),
        "gpu": str(gpu),
        "compute_capability": str(compute_capability),
        "model": str(model),
        "precision": str(precision),
        "input_shape": [int(v) for v in input_shape],
        "profile": {k: [int(v) for v in profile[k]] for k in ("min", "opt", "max")},
        "onnx_sha256": str(onnx_sha256),
        "bundle_id": str(bundle_id),
    }


def cache_key(header: Dict[str, Any]) -> str:
    """16 hex digits over the identity fields: equal keys <=> loadable engine."""
    identity = {field: header.get(field) for field in IDENTITY_FIELDS}
    return sha256_bytes(json.dumps(identity, sort_keys=True).encode("utf-8"))[:16]


def check_header(header: Dict[str, Any], expected: Dict[str, Any]) -> List[str]:
    """Identity fields whose value differs (or is missing), in IDENTITY_FIELDS order."""
    return [field for field in IDENTITY_FIELDS if header.get(field) != expected.get(field)]


def mismatch_message(engine_path: str, header: Dict[str, Any], expected: Dict[str, Any],
                     fields: Sequence[str]) -> str:
    """One line naming the first mismatched field, its two values and why it matters."""
    field = fields[0]
    more = "" if len(fields) == 1 else " (also: {})".format(", ".join(fields[1:]))
    return (
        "cached engine {} does not match this setup: {} is {} in the engine, {} here; {}{}. "
        "Rebuild it with `jist-edge engine build` (or let `run --backend tensorrt` rebuild "
        "without --no-build)".format(
            engine_path, field, _show(header.get(field)), _show(expected.get(field)),
            _WHY.get(field, "it must match"), more,
        )
    )


def _show(value: Any) -> str:
    if value is None:
        return "missing"
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 24 else text[:12] + "..."


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "x"


def engine_path(cache_dir: str, model: str, precision: str) -> str:
    """Stable per (model, precision) so a stale engine is found and refused, not ignored."""
    return os.path.join(cache_dir, "{}-{}.engine".format(slug(model), slug(precision)))


def header_path(path: str) -> str:
    return path + ".json"


def timing_cache_path(cache_dir: str, tensorrt: str, compute_capability: str) -> str:
    """Layer timings depend on the TensorRT version and the GPU, not on the model."""
    return os.path.join(cache_dir, "timing-trt{}-sm{}.cache".format(slug(tensorrt), slug(compute_capability)))


def write_engine(path: str, engine: bytes, expected: Dict[str, Any],
                 extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Write engine then header, each atomically; returns the header.

    A crash between the two renames leaves a new engine beside an old header, whose
    sha256 no longer matches: the next load refuses it and rebuilds.
    """
    header = dict(expected)
    header.update(extra or {})
    header["engine_sha256"] = sha256_bytes(engine)
    header["engine_bytes"] = len(engine)
    header["cache_key"] = cache_key(expected)
    header["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_bytes_atomic(path, engine)
    write_json_atomic(header_path(path), header)
    return header


def read_header(path: str) -> Dict[str, Any]:
    if not os.path.isfile(path):
        raise JistEdgeError("engine not found: {} (build it with `jist-edge engine build`)".format(path))
    return read_json(header_path(path), "engine header")


def load_engine(path: str, expected: Dict[str, Any]) -> Tuple[bytes, Dict[str, Any]]:
    """The engine's bytes and header, only after every header field and the checksum matched.

    Header fields first (the useful message). The checksum is taken over the very bytes
    returned, so the file is read once and an engine replaced meanwhile is refused too."""
    header = read_header(path)
    fields = check_header(header, expected)
    if fields:
        raise EngineMismatch(mismatch_message(path, header, expected, fields), fields)
    with open(path, "rb") as handle:
        data = handle.read()
    if header.get("engine_bytes") != len(data) or header.get("engine_sha256") != sha256_bytes(data):
        raise EngineMismatch(
            "engine file {} does not match the sha256 in its header (truncated or replaced); "
            "rebuild it with `jist-edge engine build`".format(path),
            ["engine_sha256"],
        )
    return data, header
