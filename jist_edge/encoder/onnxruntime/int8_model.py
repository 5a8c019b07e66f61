"""The CPU INT8 encoder: an artifact derived from a bundle, checked like a TensorRT engine.

``jist-edge calibrate`` quantizes the bundle's encoder for ONNX Runtime's CPU kernels
(U8S8, see jist_edge.calibration.cpu_int8) and stores it as
``<workspace>/engines/encoder-int8-cpu.onnx`` with a header ``.onnx.json`` beside it.
INT8 is a precision of the same model, so the bundle and every map built with it are
untouched. The header names what the file was made from and for: the bundle identity
and its encoder's sha256 (a re-export invalidates it), the ONNX Runtime version (the
quantizer and the kernels change between releases), the input shape, the calibration
set, the fidelity numbers and whether they passed, and the file's own sha256. Loading
compares each field and refuses a mismatch with a message naming the field.

Plain file handling: no onnx or quantization tools needed, so it runs on the device.
"""
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from jist_edge.artifacts import HeaderedFile, HeaderMismatch, header_path  # noqa: F401  (header_path: for callers)

FORMAT = "jist-edge-cpu-int8"
FORMAT_VERSION = 1
FILE_NAME = "encoder-int8-cpu.onnx"
RECIPE = "u8s8-qdq-per-channel-head-fp32"
CALIBRATE = "`jist-edge calibrate --calibration ROUTE` (ROUTE: an image folder or video of your route)"

# In the order messages name them; "calibration" is compared only when the caller knows
# the set (calibrate does, to reuse a model; run does not).
IDENTITY_FIELDS = ("format", "format_version", "recipe", "onnxruntime", "bundle_id", "onnx_sha256",
                   "input_shape", "calibration")

_WHY = {
    "format": "not a jist-edge CPU INT8 header",
    "format_version": "written by another jist-edge version",
    "recipe": "quantized another way",
    "onnxruntime": "quantized with another ONNX Runtime (its quantizer and INT8 kernels change between releases)",
    "bundle_id": "made from another model bundle (re-exported?)",
    "onnx_sha256": "made from another encoder.onnx (re-exported?)",
    "input_shape": "made for another input size",
    "calibration": "calibrated on another set of frames",
}


class Int8Mismatch(HeaderMismatch):
    """A CPU INT8 model that must not be used here; ``fields`` names what differs."""


MODEL_FILE = HeaderedFile(
    IDENTITY_FIELDS, _WHY, "model_sha256", "model_bytes", "CPU INT8 model header",
    missing="no CPU INT8 model at {path}: make it with " + CALIBRATE,
    mismatch="CPU INT8 model {path} does not match: {field} is {theirs} there, {ours} here; {why}{more}. "
             "Make it again with " + CALIBRATE,
    damaged="CPU INT8 model {path} does not match the sha256 in its header (truncated or replaced); "
            "make it again with " + CALIBRATE,
    error=Int8Mismatch, optional=("calibration",))


def model_path(cache_dir: str) -> str:
    return os.path.join(os.path.abspath(os.path.expanduser(cache_dir)), FILE_NAME)


def expected_header(bundle: Any, onnxruntime_version: str, calibration: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The identity a CPU INT8 model must have to stand in for this bundle's FP32 encoder here."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "recipe": RECIPE,
        "onnxruntime": str(onnxruntime_version),
        "bundle_id": bundle.bundle_id,
        "onnx_sha256": bundle.manifest["files"]["encoder.onnx"]["sha256"],
        "input_shape": [3, int(bundle.height), int(bundle.width)],
        "calibration": calibration,
    }


def differing_fields(header: Dict[str, Any], expected: Dict[str, Any]) -> List[str]:
    """Identity fields that differ (or are missing), in IDENTITY_FIELDS order."""
    return MODEL_FILE.differing(header, expected)


def mismatch_message(path: str, header: Dict[str, Any], expected: Dict[str, Any], fields: Sequence[str]) -> str:
    return MODEL_FILE.message(path, header, expected, fields)


def write_model(path: str, data: bytes, expected: Dict[str, Any], fidelity: Dict[str, Any],
                extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Model then header, each atomically: a crash between the renames leaves a header whose
    sha256 no longer matches, which the next load refuses."""
    header = dict(expected)
    header.update(extra or {})
    header["fidelity"] = fidelity
    return MODEL_FILE.write(path, data, header)


def read_header(path: str) -> Dict[str, Any]:
    return MODEL_FILE.read_header(path)


def load_model(path: str, expected: Dict[str, Any]) -> Tuple[bytes, Dict[str, Any]]:
    """The model's bytes (hand them to ONNX Runtime, so what was checked is what runs) and header."""
    return MODEL_FILE.load(path, expected)


def is_current(path: str, expected: Dict[str, Any]) -> bool:
    """True when the model at ``path`` matches ``expected`` (calibration included) and its checksum."""
    return MODEL_FILE.is_current(path, expected)


def passed(header: Dict[str, Any]) -> bool:
    """The fidelity gate passed (not merely forced): what `--precision best` requires."""
    return bool((header.get("fidelity") or {}).get("passed"))
