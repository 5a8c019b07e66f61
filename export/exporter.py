"""Checkpoint (or random weights) -> verified bundle: encoder.onnx, sequence.onnx, manifest.json.

Nothing reaches ``out_dir`` until both graphs are exported and have passed the parity
checks; ``jist_edge.bundle.write_bundle`` then swaps the finished folder in atomically
and refuses to replace a different bundle unless ``force``.
"""
import contextlib
import os
import platform
import shutil
import time
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

import torch

from jist_edge import __version__
from jist_edge.bundle import ENCODER_FILE, SEQUENCE_FILE, Bundle, make_manifest, refuse_overwrite, write_bundle
from jist_edge.errors import JistEdgeError
from jist_edge.fileio import kept_note, scratch_dir
from jist_edge.locks import output_lock
from jist_edge.fileio import write_failure
from jist_edge.export.checkpoint import load_checkpoint
from jist_edge.export.model import DESCRIPTOR_DIM, FrameEncoder, JistModel, SequenceEncoder, build_model
from jist_edge.export.onnx_export import DEFAULT_OPSET, example_inputs, export_onnx, exporter_description
from jist_edge.export.parity import check_parity

DEFAULT_IMG_SIZE = (480, 640)
DEFAULT_SEQ_LEN = 5
RANDOM_WARNING = "RANDOM WEIGHTS: this bundle demonstrates the pipeline only; its descriptors do not recognize places"

# the steps reported to ``progress``, in order
STEPS = ("build model", "export encoder", "export sequence", "parity", "write")

Progress = Callable[[str, int, int], None]


def _no_progress(step: str, index: int, total: int) -> None:
    pass


# ResNet-18 needs 32 px (its stride); above 4096 px a side the torch export alone runs
# out of memory (a 100000 x 100000 request died in the allocator with a traceback).
MIN_SIDE, MAX_SIDE = 32, 4096


def _validate(img_size: Sequence[int], seq_len: int) -> None:
    if len(img_size) != 2 or min(img_size) < MIN_SIDE or max(img_size) > MAX_SIDE:
        raise JistEdgeError("--img-size must be two numbers H W, each from {} to {}, got {}".format(
            MIN_SIDE, MAX_SIDE, list(img_size)))
    if seq_len < 1:
        raise JistEdgeError("--seq-len must be at least 1, got {}".format(seq_len))


def tool_versions(opset: int) -> Dict[str, str]:
    import onnx
    import onnxruntime

    return {
        "jist_edge": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "exporter": exporter_description(opset),
    }


def check_pooling(model: JistModel, checkpoint: Optional[str]) -> None:
    """GeM and SeqGeM p within the range the runtime accepts: p=0, -1 or 1e6 export fine and then give
    all-zero or NaN descriptors (cosine 0 used to "pass" parity)."""
    from jist_edge.checked_numbers import pooling_p

    where = "checkpoint {}".format(checkpoint) if checkpoint else "--gem-p/--seqgem-p"
    pooling_p(float(model.gem_p), where, "GeM p (model.aggregation.1.p)")
    pooling_p(float(model.seqgem_p), where, "SeqGeM p (seq_gem.p)")


def prepare_model(
    checkpoint: Optional[str], random_init: bool, seed: int, gem_p: Optional[float], seqgem_p: Optional[float]
) -> Tuple[JistModel, Optional[Dict[str, Any]]]:
    """The model to export and the checkpoint record (None for random weights)."""
    if (checkpoint is None) == (not random_init):
        raise JistEdgeError("give exactly one of --checkpoint PATH or --random-init")
    if random_init:
        return build_model(random_init=True, seed=seed, gem_p=gem_p, seqgem_p=seqgem_p), None
    model = build_model(random_init=False)
    record = load_checkpoint(model, checkpoint)
    return model, record


def export_bundle(
    out_dir: str,
    checkpoint: Optional[str] = None,
    random_init: bool = False,
    seed: int = 0,
    img_size: Sequence[int] = DEFAULT_IMG_SIZE,
    seq_len: int = DEFAULT_SEQ_LEN,
    opset: Optional[int] = None,
    force: bool = False,
    gem_p: Optional[float] = None,
    seqgem_p: Optional[float] = None,
    progress: Optional[Progress] = None,
) -> Bundle:
    """Export, check parity, write the bundle into ``out_dir``; returns the loaded Bundle.

    ``progress(step, index, total)`` is called as each of STEPS starts. ``out_dir`` is
    left as it was on any error.
    """
    opset = DEFAULT_OPSET if opset is None else int(opset)
    exporter_description(opset)  # validates the opset before any work
    _validate(img_size, seq_len)
    with output_lock(out_dir, "bundle output"):  # one export into a folder at a time
        refuse_overwrite(out_dir, None, force)  # a non-bundle folder is refused before any work
        return _export_locked(out_dir, checkpoint, random_init, seed, (int(img_size[0]), int(img_size[1])),
                              seq_len, opset, force, gem_p, seqgem_p, progress)


def _export_locked(out_dir: str, checkpoint: Optional[str], random_init: bool, seed: int, img_size: Tuple[int, int],
                   seq_len: int, opset: int, force: bool, gem_p: Optional[float], seqgem_p: Optional[float],
                   progress: Optional[Progress]) -> Bundle:
    """Export, check parity and write; the caller holds the output's lock."""
    height, width = img_size
    steps = _Steps(progress or _no_progress)

    with steps.timed(0, "build_model_s"):
        model, record = prepare_model(checkpoint, random_init, seed, gem_p, seqgem_p)
        check_pooling(model, checkpoint)
    staging = scratch_dir(out_dir)  # swept by the next export if this one is killed outright
    try:
        files, written, parity = _export_and_check(model, staging, height, width, seq_len, opset, seed, steps)
        steps.start(4)
        steps.seconds["total_before_write_s"] = time.perf_counter() - steps.started
        manifest = make_manifest(
            height=height, width=width, seq_len=seq_len, dim=DESCRIPTOR_DIM, gem_p=model.gem_p,
            seqgem_p=model.seqgem_p, opset=opset, random_init=bool(random_init), tools=tool_versions(opset),
            seed=int(seed) if random_init else None, checkpoint=record, parity=parity,
            seqgem_eps=model.seq_gem.eps,
        )
        if random_init:
            manifest["warning"] = RANDOM_WARNING
        manifest["export"] = {"seconds": {k: round(v, 3) for k, v in steps.seconds.items()},
                              "onnx_ir_version": written["ir_version"]}
        bundle = write_bundle(out_dir, files, manifest, force)
    except OSError as exc:  # disk full, permissions: one line naming the file; the output folder as it was
        raise write_failure(exc.filename or out_dir, exc, "export to {} failed; {}".format(
            out_dir, kept_note(out_dir, "bundle")))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return bundle


class _Steps(object):
    """Reports each step of STEPS as it starts and keeps how long the timed ones took."""

    def __init__(self, report: Progress) -> None:
        self.report = report
        self.started = time.perf_counter()
        self.seconds = {}  # type: Dict[str, float]

    def start(self, index: int) -> None:
        self.report(STEPS[index], index + 1, len(STEPS))

    @contextlib.contextmanager
    def timed(self, index: int, key: str) -> Iterator[None]:
        self.start(index)
        t = time.perf_counter()
        yield
        self.seconds[key] = time.perf_counter() - t


def _export_and_check(model: JistModel, staging: str, height: int, width: int, seq_len: int, opset: int, seed: int,
                      steps: _Steps) -> Tuple[Dict[str, str], Dict[str, Any], Dict[str, Any]]:
    """Both graphs into ``staging``, then the parity checks against torch (raises when they fail)."""
    enc_path = os.path.join(staging, ENCODER_FILE)
    seq_path = os.path.join(staging, SEQUENCE_FILE)
    frames, sequences = example_inputs(height, width, seq_len)
    with steps.timed(1, "export_encoder_s"):
        written = export_onnx(FrameEncoder(model), frames, enc_path, "frames", "descriptors", "N", opset)
    with steps.timed(2, "export_sequence_s"):
        export_onnx(SequenceEncoder(model, seq_len, height, width), sequences, seq_path, "sequences", "descriptors",
                    "B", opset)
    with steps.timed(3, "parity_s"):
        parity = check_parity(model, enc_path, seq_path, height, width, seq_len, seed=seed)
    return {ENCODER_FILE: enc_path, SEQUENCE_FILE: seq_path}, written, parity
