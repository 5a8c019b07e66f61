"""How much INT8 and FP16 change the descriptors, measured on the CPU before any device.

Numbers reported (each against the FP32 ONNX encoder, the reference):
- cosine of frame descriptors and of SeqGeM sequence descriptors (mean and min);
- top-1 agreement on a route map: a database pass and a query pass are encoded,
  sliding windows of L frames become sequence descriptors, and each query window's
  exact squared-L2 nearest database window (as in the paper) is compared with the
  FP32 one. 1.0 means INT8/FP16 would localize exactly like FP32.

Variants: ``int8-qdq`` (the Q/DQ encoder run by ONNX Runtime), ``fp16`` (trunk in
FP16, head in FP32, as the TensorRT builder pins it) and ``fp16-all`` (head in FP16
too). FP16 is emulated with the torch model: weights rounded to FP16 and every trunk
layer's output rounded to FP16 (FP16 storage between layers, as TensorRT's FP16
kernels have), and for ``fp16-all`` the head computed in torch's float16. Host tool
(torch, onnxruntime).
"""
import copy
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from jist_edge.errors import JistEdgeError
from jist_edge.search.matcher import exact_sq_l2
from jist_edge.encoder.seqgem import sliding_windows

Encoder = Callable[[np.ndarray], np.ndarray]


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(denom, 1e-30)


def top1(database: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Index of each query's exact squared-L2 nearest database row (ties: lowest index)."""
    return np.argmin(exact_sq_l2(queries, database), axis=1)


def encode_all(encode: Encoder, frames: np.ndarray, batch: int = 16) -> np.ndarray:
    return np.concatenate([encode(frames[i:i + batch]) for i in range(0, frames.shape[0], batch)], axis=0)


def compare_variant(reference: Dict[str, np.ndarray], test: Dict[str, np.ndarray]) -> Dict[str, Any]:
    """Cosines and top-1 agreement of one variant's route descriptors against FP32."""
    frame_cos = cosine_rows(np.concatenate([reference["db_frames"], reference["q_frames"]]),
                            np.concatenate([test["db_frames"], test["q_frames"]]))
    seq_cos = cosine_rows(np.concatenate([reference["db_seq"], reference["q_seq"]]),
                          np.concatenate([test["db_seq"], test["q_seq"]]))
    dist = exact_sq_l2(reference["q_seq"], reference["db_seq"])
    ref_nn = np.argmin(dist, axis=1)
    test_nn = top1(test["db_seq"], test["q_seq"])
    ranked = np.sort(dist, axis=1)
    # FP32's own relative gap between its best and second-best window: disagreements
    # at a gap of ~1 % are near-ties, not INT8 errors
    gap = (ranked[:, 1] - ranked[:, 0]) / np.maximum(ranked[:, 0], 1e-30) if dist.shape[1] > 1 else np.ones(len(ref_nn))
    differ = ref_nn != test_nn
    return {
        "frame_cosine_mean": float(frame_cos.mean()),
        "frame_cosine_min": float(frame_cos.min()),
        "sequence_cosine_mean": float(seq_cos.mean()),
        "sequence_cosine_min": float(seq_cos.min()),
        "top1_agreement": float((ref_nn == test_nn).mean()),
        "top1_within_one_window": float((np.abs(ref_nn - test_nn) <= 1).mean()),
        "fp32_gap_median": float(np.median(gap)),
        "fp32_gap_max_where_differ": float(gap[differ].max()) if differ.any() else None,
        "max_abs_diff": float(np.abs(np.concatenate([reference["db_frames"], reference["q_frames"]]) -
                                     np.concatenate([test["db_frames"], test["q_frames"]])).max()),
        "queries": int(ref_nn.shape[0]),
        "database": int(reference["db_seq"].shape[0]),
        "finite": bool(np.isfinite(test["db_frames"]).all() and np.isfinite(test["q_frames"]).all()),
    }


def route_descriptors(encode: Encoder, db_frames: np.ndarray, q_frames: np.ndarray, seq_len: int,
                      p: float, eps: float) -> Dict[str, np.ndarray]:
    db = encode_all(encode, db_frames)
    q = encode_all(encode, q_frames)
    return {"db_frames": db, "q_frames": q,
            "db_seq": sliding_windows(db, seq_len, p, eps), "q_seq": sliding_windows(q, seq_len, p, eps)}


def fidelity_report(bundle, db_frames: np.ndarray, q_frames: np.ndarray,
                    variants: Dict[str, Encoder], reference: Optional[Encoder] = None) -> Dict[str, Any]:
    """{variant: numbers} for preprocessed database and query passes (Nx3xHxW)."""
    if min(db_frames.shape[0], q_frames.shape[0]) < bundle.seq_len:
        raise JistEdgeError("the fidelity route needs at least L={} frames per pass".format(bundle.seq_len))
    reference = reference or ort_encoder(bundle.encoder_path)
    args = (bundle.seq_len, bundle.seqgem_p, bundle.seqgem_eps)
    ref = route_descriptors(reference, db_frames, q_frames, *args)
    report = {"reference": "fp32 (ONNX Runtime)", "seq_len": bundle.seq_len, "variants": {}}
    for name, encode in variants.items():
        report["variants"][name] = compare_variant(ref, route_descriptors(encode, db_frames, q_frames, *args))
    return report


def ort_encoder(onnx_path: str) -> Encoder:
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: np.ascontiguousarray(batch, dtype=np.float32)})[0]


def torch_model_for(bundle, checkpoint: Optional[str] = None):
    """The bundle's network in torch, checked against its ONNX encoder (so FP16 emulates the right weights)."""
    from jist_edge.export.exporter import prepare_model

    if bundle.random_init:
        model, _ = prepare_model(None, True, int(bundle.manifest.get("seed") or 0), bundle.gem_p, bundle.seqgem_p)
    elif checkpoint:
        model, _ = prepare_model(checkpoint, False, 0, None, None)
    else:
        raise JistEdgeError("FP16 emulation of a checkpoint bundle needs --checkpoint (the .pth it was exported from)")
    return model.eval()


def check_torch_matches(model, bundle, frames: np.ndarray, tol: float = 1e-4) -> float:
    import torch

    with torch.no_grad():
        got = model.encode_frames(torch.from_numpy(frames[:2])).numpy()
    want = ort_encoder(bundle.encoder_path)(frames[:2])
    diff = float(np.abs(got - want).max())
    if diff > tol:
        raise JistEdgeError("the torch model differs from {} by {:.3g}: wrong --checkpoint?".format(
            bundle.encoder_path, diff))
    return diff


def fp16_encoder(model, head_fp32: bool = True) -> Encoder:
    """FP16 emulation: FP16 weights, every trunk layer output rounded to FP16; head FP32 or FP16."""
    import torch
    from torch import nn

    net = copy.deepcopy(model.model).eval()
    with torch.no_grad():
        for param in net.parameters():
            param.copy_(param.half().float())
        for name, buf in net.named_buffers():
            if buf.is_floating_point():
                buf.copy_(buf.half().float())

    def round_output(module, inputs, output):
        return output.half().float()

    for module in net.backbone.modules():
        if len(list(module.children())) == 0 or type(module).__name__ == "BasicBlock":
            module.register_forward_hook(round_output)
    head = net.aggregation if head_fp32 else copy.deepcopy(net.aggregation).half()

    def encode(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            feats = net.backbone(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
            out = head(feats) if head_fp32 else head(feats.half())
            return out.float().numpy()

    del nn
    return encode


def revisit(images: Sequence[np.ndarray], seed: int = 0, shift_px: int = 1, gain: float = 0.9,
            noise: float = 4.0) -> List[np.ndarray]:
    """The route seen again (a stand-in query pass when no second pass is given): each frame
    ``shift_px`` further along, darker by ``gain``, with Gaussian sensor noise.

    Why not even frames as the map and odd ones as the queries: every odd window then lies
    exactly halfway between two map windows, FP32's own choice is a coin toss, and any
    perturbation flips it (measured: agreement 0.64-0.69 for INT8 at cosine 0.9999)."""
    import cv2

    rng = np.random.RandomState(seed)
    out = []
    for image in images:
        shift = np.float32([[1, 0, -shift_px], [0, 1, 0]])
        moved = cv2.warpAffine(image, shift, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REFLECT)
        noisy = moved.astype(np.float32) * gain + rng.normal(0, noise, size=image.shape)
        out.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return out
