"""Model bundles: encoder.onnx + sequence.onnx + manifest.json, verified before use.

The exporter (host, torch) writes a bundle with ``write_bundle``; the runtime (device,
no torch) opens it with ``load_bundle``, which checks the manifest schema and the
sha256 of every file before ONNX Runtime or TensorRT is allowed to parse anything.
"""
import json
import os
import shutil
from typing import Any, Callable, Dict, List, Optional, Sequence

from jist_edge.artifacts import MANIFEST_FILE, ManifestFolder  # noqa: F401  (MANIFEST_FILE: for readers of a bundle)
from jist_edge.errors import IntegrityError
from jist_edge.fileio import sha256_bytes
from jist_edge.claims import claim_folder, manifest_kind

FORMAT = "jist-edge-bundle"
FORMAT_VERSION = 1
ENCODER_FILE = "encoder.onnx"
SEQUENCE_FILE = "sequence.onnx"
BUNDLE_OUTPUT = manifest_kind("bundle", FORMAT)
BUNDLE_FOLDER = ManifestFolder("model bundle", "bundle", "`jist-edge export`", "export it again with `jist-edge export`")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# key -> accepted types; checked on every load so a hand-edited manifest fails early.
_SCHEMA = {
    "format": str,
    "format_version": int,
    "bundle_id": str,
    "manifest_sha256": str,
    "input": dict,
    "seq_len": int,
    "descriptor_dim": int,
    "gem_p": float,
    "seqgem_p": float,
    "seqgem_eps": float,
    "opset": int,
    "random_init": bool,
    "files": dict,
    "source_checkpoint": (dict, type(None)),
    "tools": dict,
}
_INPUT_SCHEMA = {
    "height": int,
    "width": int,
    "channels": int,
    "channel_order": str,
    "layout": str,
    "scale": float,
    "mean": list,
    "std": list,
}


class Bundle(object):
    """A verified bundle: paths plus the few numbers the runtime needs."""

    def __init__(self, path: str, manifest: Dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        inp = manifest["input"]
        self.height = int(inp["height"])  # type: int
        self.width = int(inp["width"])  # type: int
        self.mean = tuple(float(v) for v in inp["mean"])
        self.std = tuple(float(v) for v in inp["std"])
        self.scale = float(inp["scale"])
        self.seq_len = int(manifest["seq_len"])  # type: int
        self.dim = int(manifest["descriptor_dim"])  # type: int
        self.gem_p = float(manifest["gem_p"])
        self.seqgem_p = float(manifest["seqgem_p"])
        self.seqgem_eps = float(manifest["seqgem_eps"])
        self.bundle_id = str(manifest["bundle_id"])  # type: str
        self.random_init = bool(manifest["random_init"])

    @property
    def encoder_path(self) -> str:
        return os.path.join(self.path, ENCODER_FILE)

    @property
    def sequence_path(self) -> str:
        return os.path.join(self.path, SEQUENCE_FILE)

    def __repr__(self) -> str:
        return "Bundle({!r}, id={}, {}x{}, L={}, dim={}{})".format(
            self.path, self.bundle_id, self.height, self.width, self.seq_len, self.dim,
            ", RANDOM WEIGHTS" if self.random_init else "",
        )


def bundle_identity(manifest: Dict[str, Any]) -> str:
    """What a map or engine must match: the weights (file hashes) and what the runtime applies.

    Provenance (random or checkpoint, tools, parity) is left out, so a re-export of the
    same weights keeps its identity and the maps and engines built for it stay valid.
    """
    key = {
        "files": {name: meta["sha256"] for name, meta in sorted(manifest["files"].items())},
        "input": manifest["input"],
        "seqgem_p": manifest["seqgem_p"],
        "seqgem_eps": manifest["seqgem_eps"],
        "descriptor_dim": manifest["descriptor_dim"],
    }
    return sha256_bytes(json.dumps(key, sort_keys=True).encode("utf-8"))[:16]


def make_manifest(
    height: int,
    width: int,
    seq_len: int,
    dim: int,
    gem_p: float,
    seqgem_p: float,
    opset: int,
    random_init: bool,
    tools: Dict[str, str],
    seed: Optional[int] = None,
    checkpoint: Optional[Dict[str, Any]] = None,
    parity: Optional[Dict[str, Any]] = None,
    seqgem_eps: float = 1e-6,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Dict[str, Any]:
    """The manifest fields that do not depend on the written files."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "input": {
            "height": int(height),
            "width": int(width),
            "channels": 3,
            "channel_order": "RGB",
            "layout": "NCHW",
            "dtype": "float32",
            "scale": 1.0 / 255.0,
            "mean": [float(v) for v in mean],
            "std": [float(v) for v in std],
        },
        "seq_len": int(seq_len),
        "descriptor_dim": int(dim),
        "gem_p": float(gem_p),
        "seqgem_p": float(seqgem_p),
        "seqgem_eps": float(seqgem_eps),
        "opset": int(opset),
        "random_init": bool(random_init),
        "seed": seed,
        "source_checkpoint": checkpoint,
        "tools": dict(tools),
        "parity": parity or {},
        "outputs": {
            ENCODER_FILE: {"input": "frames", "input_shape": ["N", 3, int(height), int(width)],
                           "output": "descriptors", "output_shape": ["N", int(dim)]},
            SEQUENCE_FILE: {"input": "sequences", "input_shape": ["B", int(seq_len), 3, int(height), int(width)],
                            "output": "descriptors", "output_shape": ["B", int(dim)]},
        },
    }


def write_bundle(out_dir: str, staged_files: Dict[str, str], manifest: Dict[str, Any], force: bool = False) -> Bundle:
    """Move ``staged_files`` (name -> temporary path) plus a manifest into ``out_dir``, atomically.

    An existing different bundle is kept unless ``force``, a folder holding anything
    else always; the error says so before anything is touched.
    """
    claimed = []  # type: List[str]

    def claim(folder: str) -> str:
        claimed.append(refuse_overwrite(folder, None, force))
        return claimed[0]

    def sign(signed: Dict[str, Any]) -> None:
        signed["bundle_id"] = bundle_identity(signed)
        refuse_overwrite(claimed[0], signed["bundle_id"], force)

    writers = [(name, _mover(staged_files[name])) for name in sorted(staged_files)]
    return load_bundle(BUNDLE_FOLDER.write(out_dir, claim, writers, manifest, sign), check_onnx=False)


def _mover(src: str) -> Callable[[str], Any]:
    return lambda dest: shutil.move(src, dest)


def refuse_overwrite(out_dir: str, new_id: Optional[str], force: bool) -> str:
    """The real folder to write; keeps a different bundle unless ``force``, anything else always.

    With ``new_id`` None (before exporting, when the new identity is not known yet)
    only what the folder holds is checked, so that an export never runs just to be refused.
    """
    def keep(manifest: Dict[str, Any]) -> Optional[str]:
        old_id = manifest.get("bundle_id")
        if new_id is None or old_id == new_id:
            return None
        return "holds a different bundle ({}, new {})".format(old_id, new_id)

    return claim_folder(out_dir, BUNDLE_OUTPUT, force, option="output folder", keep=keep)


def validate_manifest(manifest: Dict[str, Any], where: str) -> None:
    """Raise IntegrityError naming the first field that is missing or of the wrong type."""
    # The format first: a map folder given as --model should say so, not "missing field".
    if "format" in manifest and manifest["format"] != FORMAT:
        raise IntegrityError("{}: format is {!r}, expected {!r} (not a model bundle folder?)".format(
            where, manifest["format"], FORMAT))
    _check_fields(manifest, _SCHEMA, where)
    _check_fields(manifest["input"], _INPUT_SCHEMA, where + " [input]")
    if manifest["format_version"] > FORMAT_VERSION:
        raise IntegrityError(
            "{}: format_version {} is newer than this jist-edge understands ({}); upgrade jist-edge".format(
                where, manifest["format_version"], FORMAT_VERSION
            )
        )
    for name in (ENCODER_FILE, SEQUENCE_FILE):
        if name not in manifest["files"]:
            raise IntegrityError("{}: files does not list {}".format(where, name))
    for key in ("mean", "std"):
        if len(manifest["input"][key]) != 3:
            raise IntegrityError("{}: input.{} must have 3 values".format(where, key))


def _check_fields(obj: Dict[str, Any], schema: Dict[str, Any], where: str) -> None:
    for key, types in schema.items():
        if key not in obj:
            raise IntegrityError("{}: missing field {!r}".format(where, key))
        value = obj[key]
        accepted = types if isinstance(types, tuple) else (types,)
        if float in accepted and isinstance(value, int) and not isinstance(value, bool):
            continue
        if isinstance(value, bool) and bool not in accepted:
            raise IntegrityError("{}: field {!r} has the wrong type".format(where, key))
        if not isinstance(value, accepted):
            raise IntegrityError("{}: field {!r} has the wrong type ({})".format(where, key, type(value).__name__))


def load_bundle(path: str, check_onnx: bool = True) -> Bundle:
    """Open a bundle folder: schema, identity, checksums, then (optionally) ONNX I/O shapes."""
    path, manifest_path, manifest = BUNDLE_FOLDER.read(path)
    validate_manifest(manifest, manifest_path)
    BUNDLE_FOLDER.check_digest(manifest, manifest_path)
    if bundle_identity(manifest) != manifest["bundle_id"]:
        raise IntegrityError("{}: bundle_id does not match its contents (manifest edited?)".format(manifest_path))
    BUNDLE_FOLDER.verify(path, manifest)
    bundle = Bundle(path, manifest)
    if check_onnx:
        check_onnx_io(bundle)
    return bundle


def check_onnx_io(bundle: Bundle) -> None:
    """Compare the encoder graph's declared input/output shapes with the manifest.

    sequence.onnx is only checksummed: the runtime never runs it (it pools the encoder's
    frame descriptors itself), so parsing it on every start would only cost time."""
    import onnxruntime as ort

    expected = {ENCODER_FILE: ([None, 3, bundle.height, bundle.width], [None, bundle.dim])}
    for name, (in_shape, out_shape) in expected.items():
        try:
            sess = ort.InferenceSession(os.path.join(bundle.path, name), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise IntegrityError("bundle file {} cannot be loaded by ONNX Runtime: {}".format(name, exc))
        _compare_shape(name, "input", sess.get_inputs(), in_shape)
        _compare_shape(name, "output", sess.get_outputs(), out_shape)


def _compare_shape(name: str, kind: str, args: List[Any], expected: List[Optional[int]]) -> None:
    if len(args) != 1:
        raise IntegrityError("bundle file {} has {} {}s, expected 1".format(name, len(args), kind))
    shape = list(args[0].shape)
    ok = len(shape) == len(expected) and all(
        e is None or s == e for s, e in zip(shape, expected)
    )
    # the batch axis must be dynamic (a string or None in ONNX Runtime's view)
    ok = ok and not isinstance(shape[0], int)
    if not ok:
        raise IntegrityError(
            "bundle file {} {} shape {} does not match the manifest {}".format(
                name, kind, shape, ["N" if e is None else e for e in expected]
            )
        )
