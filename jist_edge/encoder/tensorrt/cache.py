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
from typing import Any, Dict, List, Optional, Sequence, Tuple

from jist_edge.artifacts import HeaderedFile, HeaderMismatch, header_path  # noqa: F401  (header_path: for callers)
from jist_edge.fileio import sha256_bytes

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


class EngineMismatch(HeaderMismatch):
    """A cached engine that must not be loaded here; ``fields`` names what differs."""


ENGINE_FILE = HeaderedFile(
    IDENTITY_FIELDS, _WHY, "engine_sha256", "engine_bytes", "engine header",
    missing="engine not found: {path} (build it with `jist-edge engine build`)",
    mismatch="cached engine {path} does not match this setup: {field} is {theirs} in the engine, {ours} here; "
             "{why}{more}. Rebuild it with `jist-edge engine build` (or let `run --backend tensorrt` rebuild "
             "without --no-build)",
    damaged="engine file {path} does not match the sha256 in its header (truncated or replaced); "
            "rebuild it with `jist-edge engine build`",
    error=EngineMismatch)


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
    return ENGINE_FILE.differing(header, expected)


def mismatch_message(engine_path: str, header: Dict[str, Any], expected: Dict[str, Any],
                     fields: Sequence[str]) -> str:
    """One line naming the first mismatched field, its two values and why it matters."""
    return ENGINE_FILE.message(engine_path, header, expected, fields)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "x"


def engine_path(cache_dir: str, model: str, precision: str) -> str:
    """Stable per (model, precision) so a stale engine is found and refused, not ignored."""
    return os.path.join(cache_dir, "{}-{}.engine".format(slug(model), slug(precision)))


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
    header["cache_key"] = cache_key(expected)
    return ENGINE_FILE.write(path, engine, header)


def read_header(path: str) -> Dict[str, Any]:
    return ENGINE_FILE.read_header(path)


def load_engine(path: str, expected: Dict[str, Any]) -> Tuple[bytes, Dict[str, Any]]:
    """The engine's bytes and header, only after every header field and the checksum matched.

    Header fields first (the useful message). The checksum is taken over the very bytes
    returned, so the file is read once and an engine replaced meanwhile is refused too."""
    return ENGINE_FILE.load(path, expected)
