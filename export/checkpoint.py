"""Load the official JIST checkpoint strictly and safely.

The official code saves two layouts (ga1i13o/JIST, jist/utils/cp_utils.py):
``best_model.pth`` is a plain ``model.state_dict()`` (the public
``JIST_r18_512_seqgem.pth`` is of this kind) and ``last_checkpoint.pth`` wraps it
under ``"model_state_dict"`` beside optimizer state. Both are accepted. Files are read
with ``weights_only=True``, so a pickle that carries code is refused, never run.
"""
import os
import re
from typing import Any, Dict, List, Mapping

import torch

from jist_edge.errors import JistEdgeError
from jist_edge.export.model import JistModel
from jist_edge.fileio import atomic_path, sha256_file

WRAPPER_KEY = "model_state_dict"
# BatchNorm's step counter: unused at inference, absent from some older state_dicts.
OPTIONAL_SUFFIX = ".num_batches_tracked"
MAX_LISTED = 8


def _shorten(keys: List[str]) -> str:
    shown = ", ".join(keys[:MAX_LISTED])
    if len(keys) > MAX_LISTED:
        shown += ", ... ({} more)".format(len(keys) - MAX_LISTED)
    return shown


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0].strip() if text else type(exc).__name__
    return line if len(line) <= 120 else line[:117] + "..."


def _kind_of_file(head: bytes) -> str:
    """What a file that is not a checkpoint looks like, for the error message."""
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG image"
    if head.startswith(b"\x89PNG"):
        return "a PNG image"
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return "an unknown binary file"


def _load_error(path: str, exc: BaseException) -> JistEdgeError:
    """One line saying why torch.load failed: refused code, damaged archive, or another kind of file."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    if not head:
        return JistEdgeError("checkpoint {} is empty".format(path))
    is_zip = head.startswith(b"PK\x03\x04")
    is_pickle = head[:1] == b"\x80"
    message = str(exc)
    if (is_zip or is_pickle) and "Weights only load failed" in message:
        found = re.search(r"unsupported GLOBAL ([\w.]+)", message, re.IGNORECASE)
        what = " (it calls {})".format(found.group(1)) if found else ""
        return JistEdgeError(
            "checkpoint {} refused: it holds Python code or objects, not just tensors{}; "
            "read with weights_only=True, nothing was executed".format(path, what)
        )
    if is_zip or is_pickle:
        return JistEdgeError("checkpoint {} is truncated or damaged: {}".format(path, _first_line(exc)))
    return JistEdgeError("checkpoint {} is not a PyTorch checkpoint: it looks like {}".format(path, _kind_of_file(head)))


def read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The tensors in a checkpoint file; every failure is a one-line JistEdgeError naming the file."""
    if not os.path.isfile(path):
        raise JistEdgeError("checkpoint not found: {}".format(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... depending on the damage
        raise _load_error(path, exc)
    if isinstance(obj, Mapping) and WRAPPER_KEY in obj and isinstance(obj[WRAPPER_KEY], Mapping):
        obj = obj[WRAPPER_KEY]
    if not isinstance(obj, Mapping):
        raise JistEdgeError("checkpoint {} holds a {}, not a state_dict".format(path, type(obj).__name__))
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise JistEdgeError("checkpoint {} is not a state_dict: non-tensor entries {}".format(path, _shorten(bad)))
    return dict(obj)


def check_state_dict(state: Mapping[str, torch.Tensor], model: JistModel, where: str) -> Dict[str, torch.Tensor]:
    """Strict key and shape check against ``model``; returns the dict to load (optional keys filled)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith(OPTIONAL_SUFFIX)]
    unexpected = [k for k in state if k not in expected]
    problems = []
    if missing:
        problems.append("missing keys: " + _shorten(missing))
    if unexpected:
        problems.append("unexpected keys: " + _shorten(unexpected))
    if problems:
        raise JistEdgeError(
            "checkpoint {} does not match the JIST ResNet-18/SeqGeM model: {}".format(where, "; ".join(problems))
        )
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise JistEdgeError(
                "checkpoint {}: {} has shape {}, the model expects {}".format(
                    where, key, list(tensor.shape), list(expected[key].shape)
                )
            )
        if not (tensor.is_floating_point() or key.endswith(OPTIONAL_SUFFIX)):
            raise JistEdgeError("checkpoint {}: {} has dtype {}, expected floating point".format(where, key, tensor.dtype))
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise JistEdgeError("checkpoint {}: {} holds NaN or infinite values".format(where, key))
    full = dict(state)
    for key in expected:
        full.setdefault(key, expected[key])
    return full


def load_checkpoint(model: JistModel, path: str) -> Dict[str, Any]:
    """Load ``path`` into ``model`` strictly; returns {name, sha256, bytes} for the manifest."""
    state = check_state_dict(read_state_dict(path), model, path)
    model.load_state_dict(state, strict=True)
    model.eval()
    return checkpoint_record(path)


def checkpoint_record(path: str) -> Dict[str, Any]:
    return {"name": os.path.basename(path), "sha256": sha256_file(path), "bytes": os.path.getsize(path)}


def save_official(model: JistModel, path: str) -> int:
    """Save ``model`` in the official layout (a plain state_dict), atomically; returns its size."""
    with atomic_path(path) as tmp:
        torch.save(model.state_dict(), tmp)
    return os.path.getsize(path)
