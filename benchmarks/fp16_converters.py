"""Why jist_edge.encoder.tensorrt.fp16_onnx converts the trunk alone: three FP16 encoders side by side.

    python -m jist_edge.benchmarks.fp16_converters BUNDLE

For the bundle's encoder, writes (in a temporary folder) the FP16 copy jist-edge builds
strongly typed engines from, and the two block-list conversions it does not use
(onnxconverter-common and onnxruntime.transformers, head nodes blocked), then prints per
file: conversion time, Cast count, output type, whether onnx.checker accepts it (TensorRT's
parser needs a sorted graph too), and cosine / max abs difference to FP32 in ONNX Runtime
on the CPU for 4 random frames. Say which weights the bundle has: random weights make
every descriptor almost parallel, so only the structure and the size of the error speak.
Host tool: needs onnx, onnxruntime and onnxconverter-common.
"""
import os
import sys
import tempfile
import time
import warnings
from typing import Any, Callable, Dict, List

import numpy as np


def _variants(src: str, out: str) -> Dict[str, Callable[[], Any]]:
    import onnx
    from onnxconverter_common import float16 as occ
    from onnxruntime.transformers import float16 as ortf

    from jist_edge.encoder.tensorrt.fp16_onnx import FP16_MAX, FP16_MIN_POSITIVE, make_fp16_encoder
    from jist_edge.encoder.tensorrt.fp32_layers import onnx_fp32_head

    head = onnx_fp32_head(onnx.load(src))

    def save(model: Any, name: str) -> str:
        onnx.save(model, os.path.join(out, name))
        return os.path.join(out, name)

    return {
        "jist-edge (trunk converted, head restored)":
            lambda: make_fp16_encoder(src, os.path.join(out, "trunk.onnx"))["path"],
        "onnxconverter-common node_block_list": lambda: save(occ.convert_float_to_float16(
            onnx.load(src), keep_io_types=True, node_block_list=head, min_positive_val=FP16_MIN_POSITIVE,
            max_finite_val=FP16_MAX), "occ.onnx"),
        "onnxruntime.transformers node_block_list": lambda: save(ortf.convert_float_to_float16(
            onnx.load(src), keep_io_types=True, node_block_list=head), "ort.onnx"),
    }


def _describe(path: str, frames: np.ndarray, want: np.ndarray) -> List[str]:
    import onnx
    import onnxruntime as ort

    model = onnx.load(path)
    casts = sum(1 for n in model.graph.node if n.op_type == "Cast")
    output = {1: "FP32", 10: "FP16"}.get(model.graph.output[0].type.tensor_type.elem_type, "?")
    try:
        onnx.checker.check_model(path)
        checker = "accepted"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        checker = "refused ({})".format(str(exc).splitlines()[0][:70])
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: frames})[0].astype(np.float32)
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    return ["{} Casts".format(casts), "output " + output, "checker " + checker,
            "cosine min {:.7f}".format(cos.min()), "max abs diff {:.3g}".format(float(np.abs(got - want).max()))]


def main(argv: Any = None) -> int:
    import onnxruntime as ort

    from jist_edge.bundle import load_bundle

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    bundle = load_bundle(args[0])
    frames = np.random.RandomState(0).standard_normal((4, 3, bundle.height, bundle.width)).astype(np.float32)
    reference = ort.InferenceSession(bundle.encoder_path, providers=["CPUExecutionProvider"])
    want = reference.run(None, {reference.get_inputs()[0].name: frames})[0]
    print("bundle {} at {}x{}, {} weights".format(bundle.bundle_id, bundle.height, bundle.width,
                                                  "RANDOM" if bundle.random_init else "trained"))
    with tempfile.TemporaryDirectory(prefix="jist-edge-fp16-") as out:
        for name, make in _variants(bundle.encoder_path, out).items():
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                path = make()
            seconds = time.perf_counter() - started
            print("{}: {:.1f} s; {}".format(name, seconds, "; ".join(_describe(path, frames, want))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
