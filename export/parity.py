"""Parity between the torch model and the exported graphs, run before a bundle is written.

Three comparisons on seeded random inputs whose batch sizes differ from the trace's
(so a batch axis frozen by the exporter fails here rather than on the device):
frames torch vs encoder.onnx, sequences torch vs sequence.onnx, and the streaming path
(encoder.onnx per frame + numpy SeqGeM, as the runtime does it) vs sequence.onnx.
"""
from typing import Any, Dict

import numpy as np
import torch

from jist_edge.errors import JistEdgeError
from jist_edge.export.model import JistModel
from jist_edge.encoder.seqgem import seqgem

TOLERANCE = 1e-4
STREAM_TOLERANCE = 1e-5
CHECK_FRAMES = 3
CHECK_SEQUENCES = 1


def _session(path: str) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def _compare(a: np.ndarray, b: np.ndarray) -> Dict[str, float]:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-30)
    return {"max_abs_diff": float(np.abs(a - b).max()), "min_cosine": float(cos.min())}


def _require_dynamic(name: str, session: Any) -> None:
    for arg in list(session.get_inputs()) + list(session.get_outputs()):
        if isinstance(arg.shape[0], int):
            raise JistEdgeError("exported {} has a fixed batch axis {} ({}); expected dynamic".format(
                name, arg.shape, arg.name))


def check_parity(
    model: JistModel, encoder_path: str, sequence_path: str, height: int, width: int, seq_len: int, seed: int = 0
) -> Dict[str, Any]:
    """Measure the three differences; raise JistEdgeError when one exceeds its tolerance."""
    generator = torch.Generator().manual_seed(int(seed) + 7)
    frames = torch.randn(CHECK_FRAMES, 3, height, width, generator=generator)
    sequences = torch.randn(CHECK_SEQUENCES, seq_len, 3, height, width, generator=generator)
    with torch.no_grad():
        ref_frames = model.encode_frames(frames).numpy()
        ref_seq = model(sequences).numpy()
    enc = _session(encoder_path)
    seq = _session(sequence_path)
    _require_dynamic("encoder.onnx", enc)
    _require_dynamic("sequence.onnx", seq)
    ort_frames = enc.run(None, {"frames": frames.numpy()})[0]
    ort_seq = seq.run(None, {"sequences": sequences.numpy()})[0]
    # one frame per call, as a live stream feeds the encoder
    flat = sequences.reshape(-1, 1, 3, height, width).numpy()
    per_frame = np.concatenate([enc.run(None, {"frames": f})[0] for f in flat])
    streamed = seqgem(per_frame.reshape(CHECK_SEQUENCES, seq_len, -1), model.seqgem_p, model.seq_gem.eps)
    report = {
        "inputs": "seeded N(0,1): {} frames, {} sequence(s) of {} at {}x{}".format(
            CHECK_FRAMES, CHECK_SEQUENCES, seq_len, height, width),
        "frames_torch_vs_onnx": _compare(ref_frames, ort_frames),
        "sequence_torch_vs_onnx": _compare(ref_seq, ort_seq),
        "stream_encoder_seqgem_vs_sequence_onnx": _compare(streamed, ort_seq),
        "tolerance": TOLERANCE,
        "stream_tolerance": STREAM_TOLERANCE,
    }
    limits = (
        ("frames_torch_vs_onnx", TOLERANCE),
        ("sequence_torch_vs_onnx", TOLERANCE),
        ("stream_encoder_seqgem_vs_sequence_onnx", STREAM_TOLERANCE),
    )
    for key, limit in limits:
        if not report[key]["max_abs_diff"] <= limit:
            raise JistEdgeError(
                "parity check failed: {} max abs diff {:.3g} > {:g}; the bundle was not written".format(
                    key, report[key]["max_abs_diff"], limit)
            )
    return report
