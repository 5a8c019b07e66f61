"""Encoder latency per backend and input size, streaming vs re-encoding, sequence length.

The runtime's backends (ONNX Runtime, TensorRT where present) run the bundle's
encoder.onnx; the torch reference runs ``jist_edge.export.model`` with random weights
of the same architecture (speed does not depend on the weights). All backends at one
size are timed interleaved, batch 1 (one camera frame), and compared by per-round ratio.
"""
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from jist_edge.encoder import available_backends, create_encoder
from jist_edge.benchmarks import descriptors
from jist_edge.benchmarks.timing import compare, summarize, time_runs
from jist_edge.pipeline.descriptor_ring import DescriptorRing
from jist_edge.encoder.seqgem import seqgem

Log = Callable[[str], None]


class TorchEncoder(object):
    """The torch reference model (CPU, or CUDA in FP32/FP16) behind the backends' encode()."""

    def __init__(self, device: str = "cpu", half: bool = False, seed: int = 0) -> None:
        import torch

        from jist_edge.export.model import build_model

        self.torch = torch
        self.device = torch.device(device)
        self.half = half
        model = build_model(random_init=True, seed=seed).to(self.device).eval()
        self.model = model.half() if half else model
        self.name = "torch-{}-{}".format(self.device.type, "fp16" if half else "fp32")

    def encode(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device)
            if self.half:
                x = x.half()
            out = self.model.encode_frames(x)
            return out.float().cpu().numpy()

    def describe(self) -> Dict[str, Any]:
        info = {"backend": self.name, "torch": self.torch.__version__, "weights": "random (same architecture)"}
        if self.device.type == "cpu":
            info["threads"] = self.torch.get_num_threads()
        else:
            info["gpu"] = self.torch.cuda.get_device_name(self.device)
        return info

    def close(self) -> None:
        pass


def torch_backends() -> List[str]:
    """torch-cpu-fp32, plus CUDA FP32/FP16 where torch sees a GPU; [] without torch."""
    try:
        import torch
    except ImportError:
        return []
    names = ["torch-cpu-fp32"]
    if torch.cuda.is_available():
        names += ["torch-cuda-fp32", "torch-cuda-fp16"]
    return names


def all_backends() -> List[str]:
    return available_backends() + torch_backends()


def open_encoder(bundle: Any, name: str) -> Any:
    if name.startswith("torch-"):
        _, device, precision = name.split("-")
        return TorchEncoder(device=device, half=precision == "fp16")
    return create_encoder(bundle, name)


def random_frames(bundle: Any, count: int, seed: int = 0) -> np.ndarray:
    """Normalized Nx3xHxW input: content does not change a CNN's speed."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((count, 3, bundle.height, bundle.width), dtype=np.float32)


def bench_backends(bundle: Any, names: Sequence[str], rounds: int, warmup: int,
                   budget_s: Optional[float] = None) -> Dict[str, Any]:
    """Batch-1 encode latency of every backend at this bundle's size, interleaved."""
    encoders = {name: open_encoder(bundle, name) for name in names}
    frame = random_frames(bundle, 1)
    try:
        outputs = {name: enc.encode(frame) for name, enc in encoders.items()}
        fns = {name: (lambda enc=enc: enc.encode(frame)) for name, enc in encoders.items()}
        result = compare(fns, baseline=names[0], rounds=rounds, warmup=warmup, budget_s=budget_s)
        result["describe"] = {name: enc.describe() for name, enc in encoders.items()}
        result["output_dim"] = {name: int(out.shape[1]) for name, out in outputs.items()}
    finally:
        for enc in encoders.values():
            enc.close()
    result["height"], result["width"] = bundle.height, bundle.width
    return result


def bench_streaming(bundle: Any, encoder: Any, seq_lens: Sequence[int], rounds: int, warmup: int,
                    budget_s: Optional[float] = None) -> List[Dict[str, Any]]:
    """Cost per emitted sequence descriptor: encode the new frame once (ring) vs encode all L again.

    The re-encoding way is the official evaluation's: every window's L frames go
    through the backbone (as one batch), then SeqGeM.
    """
    p, eps = bundle.seqgem_p, bundle.seqgem_eps
    rows = []
    for seq_len in seq_lens:
        frames = random_frames(bundle, seq_len, seed=seq_len)
        ring = DescriptorRing(seq_len, bundle.dim)
        state = {"i": 0}

        def streaming() -> np.ndarray:
            i = state["i"] % seq_len
            state["i"] += 1
            ring.push(encoder.encode(frames[i:i + 1])[0], state["i"])
            return seqgem(ring.window(), p, eps)

        def reencoding() -> np.ndarray:
            return seqgem(encoder.encode(frames), p, eps)

        for _ in range(seq_len):  # a full window before timing, as in steady state
            streaming()
        calls_before, frames_before = encoder.calls, encoder.frames
        result = compare({"streaming": streaming, "reencoding": reencoding}, baseline="streaming",
                         rounds=rounds, warmup=warmup, budget_s=budget_s)
        done = result["rounds"] + warmup
        rows.append({
            "seq_len": int(seq_len),
            "rounds": result["rounds"],
            "warmup": warmup,
            "streaming": result["stats"]["streaming"],
            "reencoding": result["stats"]["reencoding"],
            "reencoding_over_streaming": result["ratio_to_baseline"]["reencoding"],
            "frames_encoded_per_emission": {
                "streaming": 1.0,
                "reencoding": float(seq_len),
                "measured_total": (encoder.frames - frames_before) / float(done),
            },
            "encoder_calls_per_round": (encoder.calls - calls_before) / float(done),
        })
    return rows


def bench_seq_len(test_lens: Sequence[int], map_len: int, n_map: int, n_queries: int, runs: int,
                  dim: int = 512, p: float = 3.0, seed: int = 0, noise: float = 2.0) -> Dict[str, Any]:
    """SeqGeM latency per L, and how far L' windows at test time agree with the map's L.

    On route-walk frame descriptors (see descriptors.py): the map holds L=map_len
    windows; each query is the perturbed frames ending at a place, pooled over the
    last L' frames. Reported per L': cosine to the L=map_len query descriptor, top-1
    agreement with the L=map_len query, and top-1 within L frames of the true place.
    ``noise`` is the norm of the perturbation added to each unit-norm query frame
    descriptor: strong, so that the hit rates are not all 1.
    """
    from jist_edge.benchmarks import search

    test_lens = sorted(set(int(v) for v in test_lens) | {int(map_len)})
    data = descriptors.RouteDescriptors(n_map, dim=dim, seq_len=map_len, p=p, seed=seed)
    place_map = search.ArrayMap(data.database, seq_len=map_len)
    exact = search.Searcher(place_map, exact=True)
    rng = np.random.default_rng(seed + 5)
    longest = max(max(test_lens), map_len)
    # query windows: the longest window ending at the same frame as a map window
    ends = []
    perturbed = []
    while len(ends) < n_queries:
        idx = int(rng.integers(0, data.n))
        frames, first = data.drive_of(idx)
        end = idx - first + map_len  # exclusive end of map window idx in its drive
        if end - longest < 0:
            continue
        window = frames[end - longest:end]
        noisy = window + np.float32(noise / np.sqrt(dim)) * rng.standard_normal(window.shape, dtype=np.float32)
        perturbed.append(noisy / np.linalg.norm(noisy, axis=1, keepdims=True))
        ends.append(idx)
    perturbed_arr = np.stack(perturbed).astype(np.float32)
    truth = np.asarray(ends)
    reference = seqgem(perturbed_arr[:, -map_len:], p)
    ref_top1 = exact.top1_batch(reference)
    rows = []
    for length in test_lens:
        q = seqgem(perturbed_arr[:, -length:], p)
        top1 = exact.top1_batch(q)
        cos = np.sum(q * reference, axis=1) / (np.linalg.norm(q, axis=1) * np.linalg.norm(reference, axis=1))
        one = np.ascontiguousarray(perturbed_arr[0, -length:])
        rows.append({
            "seq_len": int(length),
            "seqgem": summarize(time_runs(lambda: seqgem(one, p), runs, warmup=3)),
            "cosine_to_map_len": {"mean": float(cos.mean()), "min": float(cos.min())},
            "top1_agreement_with_map_len": float(np.mean(top1 == ref_top1)),
            "top1_within_L_of_truth": float(np.mean(np.abs(top1 - truth) <= map_len)),
        })
    return {
        "map_seq_len": int(map_len),
        "map_size": int(n_map),
        "queries": int(n_queries),
        "descriptors": descriptors.KIND,
        "query_noise": float(noise),
        "rows": rows,
    }
