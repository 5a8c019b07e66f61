"""The FP16 encoder for strongly typed TensorRT: an FP16 trunk, an untouched FP32 head.

A strongly typed network (TensorRT 10+, the only kind in 11) takes every precision from
the ONNX file. The FP16 engine is therefore built from a copy of ``encoder.onnx`` whose
ResNet trunk is FP16 and whose GeM/L2 head and I/O stay FP32: the same head that
``fp32_layers`` pins on the weakly typed path.

The trunk is converted by onnxconverter-common's ``convert_float_to_float16`` with
``keep_io_types=True`` and no block list, on the trunk alone (frames -> the trunk's
output tensor); the head's nodes and initializers are then put back unchanged behind
it. Why not the converter's ``node_block_list`` on the whole graph: in
onnxconverter-common 1.16 a blocked node's output still goes through an FP16 Cast
when the next node is blocked too (the 512-D Linear output was rounded to FP16 inside
the "FP32" head), the graph output came out FP16 despite ``keep_io_types``, and the
head's clip constants were rounded to FP16. ONNX Runtime's own
``transformers.float16`` rounds every blocked node's output through FP16 and leaves
the graph unsorted, which TensorRT's parser refuses. NVIDIA ModelOpt's AutoCast
pulls torch, onnxruntime-gpu and cupy (no Jetson wheels). Converting the trunk whole,
the converter's most used mode, leaves exactly two Casts: frames to FP16 and the trunk
output back to FP32.

Needs ``onnx`` and ``onnxconverter-common`` (the ``tensorrt`` extra), imported only here.
"""
import os
import warnings
from typing import Any, Dict, List, Set

from jist_edge.encoder.tensorrt.fp32_layers import onnx_head_region
from jist_edge.errors import JistEdgeError
from jist_edge.fileio import atomic_path

# Clamp only what FP16 cannot hold: its largest finite value and smallest subnormal
# (the converter's defaults, 1e4 and 1e-7, would also clip representable weights). The
# converter keeps signs: a weight below the smallest subnormal becomes it, not zero.
FP16_MAX = 65504.0
FP16_MIN_POSITIVE = 5.96e-08


def fp16_onnx_name(bundle_id: str) -> str:
    return "encoder-fp16-{}.onnx".format(bundle_id)


def _import_converter():
    try:
        import onnx
        from onnxconverter_common import float16
    except ImportError as exc:
        raise JistEdgeError(
            "an FP16 engine on strongly typed TensorRT (10+) is built from an FP16 copy of the encoder, "
            "made with onnx and onnxconverter-common ({}): pip install onnx onnxconverter-common "
            "(or build --precision fp32)".format(exc)
        )
    return onnx, float16


def split_head(model) -> Dict[str, Any]:
    """The trunk/head boundary of an encoder graph: {"tensor", "head": [names], "trunk": [names]}.

    Refuses a graph whose head reads anything from the trunk but its output tensor
    (the head could then not be kept whole in FP32).
    """
    region = onnx_head_region(model)
    if region is None:
        raise JistEdgeError("the encoder has no reduction (GeM/L2 head) to keep in FP32")
    tensor, head_names = region
    head = set(head_names)
    produced = set()  # type: Set[str]
    initializers = set(i.name for i in model.graph.initializer)
    for node in model.graph.node:
        if node.name in head:
            produced.update(node.output)
    for node in model.graph.node:
        if node.name not in head:
            continue
        for name in node.input:
            if name and name != tensor and name not in produced and name not in initializers:
                raise JistEdgeError("the encoder's head node {} reads {} from the trunk; only {} may cross "
                                    "into the FP32 head".format(node.name, name, tensor))
    trunk = [n.name for n in model.graph.node if n.name not in head]
    return {"tensor": tensor, "head": head_names, "trunk": trunk}


def _subgraph_model(onnx, model, node_names: List[str], outputs: List[Any]):
    """A model of the named nodes of ``model`` with the initializers they read."""
    wanted = set(node_names)
    nodes = [n for n in model.graph.node if n.name in wanted]
    reads = set(name for n in nodes for name in n.input)
    graph = onnx.helper.make_graph(
        nodes, model.graph.name + "-part", list(model.graph.input), outputs,
        initializer=[i for i in model.graph.initializer if i.name in reads],
    )
    part = onnx.helper.make_model(graph, opset_imports=list(model.opset_import))
    part.ir_version = model.ir_version
    return part


def convert_encoder(model) -> Dict[str, Any]:
    """{"model": an ``onnx.ModelProto`` with an FP16 trunk and the original FP32 head and I/O,
    "head": the head's node names, "clamped": the converter's clamp reports, one per weight tensor
    and side with values outside FP16's range (below its smallest subnormal or above 65504)}."""
    onnx, float16 = _import_converter()
    parts = split_head(model)
    trunk_out = onnx.helper.make_tensor_value_info(parts["tensor"], onnx.TensorProto.FLOAT, None)
    trunk = _subgraph_model(onnx, model, parts["trunk"], [trunk_out])
    with warnings.catch_warnings(record=True) as caught:  # one UserWarning per clamped tensor
        warnings.simplefilter("always")
        trunk16 = float16.convert_float_to_float16(
            trunk, min_positive_val=FP16_MIN_POSITIVE, max_finite_val=FP16_MAX, keep_io_types=True)
    clamped = sum(1 for w in caught if "will be truncated" in str(w.message))
    head = set(parts["head"])
    head_nodes = [n for n in model.graph.node if n.name in head]
    reads = set(name for n in head_nodes for name in n.input)
    graph = onnx.helper.make_graph(
        list(trunk16.graph.node) + head_nodes, model.graph.name, list(model.graph.input),
        list(model.graph.output),
        initializer=list(trunk16.graph.initializer) + [i for i in model.graph.initializer if i.name in reads],
    )
    out = onnx.helper.make_model(graph, opset_imports=list(model.opset_import))
    out.ir_version = model.ir_version
    out.producer_name = "jist-edge fp16 (onnxconverter-common trunk, FP32 head)"
    onnx.checker.check_model(out)
    return {"model": out, "head": parts["head"], "clamped": clamped}


def make_fp16_encoder(encoder_path: str, out_path: str) -> Dict[str, Any]:
    """Write the FP16 copy of ``encoder_path`` to ``out_path`` (atomically); returns a summary."""
    onnx, _ = _import_converter()
    model = onnx.load(encoder_path)
    converted = convert_encoder(model)
    with atomic_path(out_path) as tmp:
        onnx.save(converted["model"], tmp)
    casts = [n for n in converted["model"].graph.node if n.op_type == "Cast"]
    return {
        "path": out_path,
        "bytes": os.path.getsize(out_path),
        "fp32_nodes": converted["head"],
        "casts": len(casts),
        "clamped": converted["clamped"],
        "converter": "onnxconverter-common " + _converter_version(),
    }


def _converter_version() -> str:
    try:
        import onnxconverter_common

        return str(getattr(onnxconverter_common, "__version__", "?"))
    except ImportError:
        return "?"
